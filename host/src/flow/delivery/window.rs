//! One sink's calls for one partition: which events it still owes, how
//! many calls are in flight, and what each finished call settled.
//!
//! Events wait here from the moment a batch is routed to the sink until the
//! sink has delivered them or they were given up on. What is owed and how
//! calls are formed from it is [`Owed`]'s; the window starts calls on the
//! sink's [`Lanes`] while fewer than its window are in flight (under
//! `ordering = "partition"` one at most, so events reach the sink in offset
//! order, as they always did), holds back a call the [`RateLimiter`] does
//! not allow yet, and takes finished calls back: [`settle`] decides what
//! each settled; delivered and given-up events are finalized in the
//! [`Finalizer`] (given-up ones after `on_failure` disposed of them), and
//! failed ones are retried, only those and in order, with backoff when a
//! call achieved nothing. While the member's fence is closed (cut off from
//! its group, see [`crate::kafka::fence`]) no call starts.

use super::adaptive::Adaptive;
use super::lanes::{Done, Job, Lanes};
use super::owed::{Call, Owed};
use super::rate::RateLimiter;
use super::settings::Settings;
use super::settle::settle;
use super::unit::Unit;
use crate::contract::Batch;
use crate::flow::component::{CallError, Sink};
use crate::flow::failure::{Blocked, FailureContext, FailureHandling};
use crate::flow::finalizer::Finalizer;
use crate::flow::retry::Backoff;
use crate::kafka::fence::Fence;
use crate::stats::{PipelineStats, SinkStats};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a window with events owed looks again at a closed fence.
const FENCE_RECHECK: Duration = Duration::from_millis(100);

/// The calls a window has formed and not taken back.
#[derive(Default)]
struct Calls {
    in_flight: FxHashMap<u64, Call>,
    /// A call held back by the rate limit until the given time.
    parked: Option<(Call, Instant)>,
    /// The number of the next call started.
    next: u64,
}

/// How hard the window pushes: its backoff after calls that achieved
/// nothing, and its adaptive number of calls.
struct Pace {
    backoff: Backoff,
    adaptive: Option<Adaptive>,
}

/// One sink's delivery state for one partition.
pub struct Window<S> {
    name: String,
    owed: Owed,
    calls: Calls,
    lanes: Lanes<S>,
    rate: Option<Arc<RateLimiter>>,
    /// The failure handling of the version that last ran a call.
    handling: FailureHandling,
    pace: Pace,
    blocked: Blocked<Arc<PipelineStats>>,
    /// Whether the partition waits on the sink's destination: events the
    /// sink answered `retry` for are queued again (counted in its
    /// `waiting` gauge).
    waiting: bool,
    sink_stats: Arc<SinkStats>,
    /// The member's fence, if it fences itself: no call starts while it
    /// is closed.
    fence: Option<Arc<Fence>>,
}

impl<S: Sink + Send + 'static> Window<S> {
    /// A window with nothing owed, for the sink `name` on `lanes`,
    /// delivering by `settings`, handling failures by `handling` until a
    /// call reports otherwise; `rate` is the sink's limit, shared by the
    /// pipeline's partitions.
    pub fn new(
        name: String,
        lanes: Lanes<S>,
        settings: Settings,
        handling: FailureHandling,
        rate: Option<Arc<RateLimiter>>,
        stats: &Arc<PipelineStats>,
        fence: Option<Arc<Fence>>,
    ) -> Self {
        let sink_stats = stats.sink(&name);
        let adaptive = settings
            .adaptive
            .then(|| Adaptive::new(settings.max_in_flight));
        let window = adaptive
            .as_ref()
            .map_or(settings.max_in_flight, Adaptive::window);
        sink_stats
            .window
            .fetch_add(window as i64, Ordering::Relaxed);
        Self {
            pace: Pace {
                backoff: Backoff::new(&handling.retry),
                adaptive,
            },
            name,
            owed: Owed::new(settings),
            calls: Calls::default(),
            lanes,
            rate,
            handling,
            blocked: Blocked::new(stats.clone()),
            waiting: false,
            sink_stats,
            fence,
        }
    }

    /// Makes sure the sink's first instance is live.
    pub fn ensure_live(&mut self) -> Result<(), CallError> {
        self.lanes.ensure_live()
    }

    /// Takes on the events of `batch` at `idx` (`None`: all of them).
    pub fn owe(&mut self, batch: &Arc<Batch>, idx: Option<Vec<usize>>, now: Instant) {
        self.owed.owe(Unit::new(batch, idx, now));
    }

    /// Starts every call that may go now. An inline call (one instance,
    /// on the worker's thread) runs to its end here, and its result is
    /// returned to be taken back with [`Self::finish`]. Returns an error
    /// only if a lane's thread cannot be started.
    pub fn pump(&mut self, now: Instant) -> std::io::Result<Option<Done>> {
        if self.fenced(now) {
            return Ok(None);
        }
        while self.calls.in_flight.len() < self.window() {
            let call = match self.calls.parked.take() {
                Some((call, at)) if at > now => {
                    self.calls.parked = Some((call, at));
                    return Ok(None);
                }
                Some((call, _)) => call,
                None => match self.owed.form(now, &self.sink_stats) {
                    Some(call) => call,
                    None => return Ok(None),
                },
            };
            if let Some(rate) = &self.rate {
                if let Err(at) = rate.take(call.batch.len(), now) {
                    self.calls.parked = Some((call, at));
                    return Ok(None);
                }
            }
            let id = self.calls.next;
            self.calls.next += 1;
            let job = Job {
                call: id,
                batch: call.batch.clone(),
                retrying: call.retrying,
            };
            self.calls.in_flight.insert(id, call);
            self.sink_stats.in_flight.fetch_add(1, Ordering::Relaxed);
            if let Some(done) = self.lanes.start(job)? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    /// Takes a finished call back: settles what it settled, disposes of
    /// what is given up, and queues what is retried. Returns `false` if the
    /// worker was stopped before dead letters were acknowledged.
    pub fn finish(&mut self, done: Done, cx: &FailureContext<'_>, fin: &mut Finalizer) -> bool {
        self.lanes.free(done.lane);
        let Some(call) = self.calls.in_flight.remove(&done.call) else {
            tracing::error!(sink = %self.name, call = done.call, "a call finished twice; ignored");
            return true;
        };
        self.sink_stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if done.handling.retry != self.handling.retry {
            self.pace.backoff = Backoff::new(&done.handling.retry);
        }
        self.handling = done.handling;
        let now = Instant::now();
        let events = &call.batch;
        let s = settle(
            &self.name,
            &call.tries,
            done.result,
            &self.handling,
            call.isolate,
            now,
        );
        self.sink_stats
            .delivered
            .fetch_add(s.delivered.len() as u64, Ordering::Relaxed);
        self.adapt(done.elapsed, s.pushed_back, now);
        if !cx.give_up(self.handling.policy, events, &s.given_up) {
            return false;
        }
        for j in s.settled() {
            self.owed.release(events, j);
            fin.settled(events.offset(j));
        }
        if let Some((j, f)) = &s.first_failed {
            cx.stats.retries.fetch_add(1, Ordering::Relaxed);
            let offset = events.offset(*j);
            tracing::warn!(sink = %self.name, offset, failed = s.retried.len(),
                attempt = f.attempts, reason = %f.reason, "sink did not deliver; retrying");
            if !self.handling.gives_up_events() && s.spent {
                self.blocked.block(offset, f);
            }
        }
        if s.waiting {
            self.set_waiting(true);
        }
        let failed = Unit::retried(events, &s.retried, now);
        let again = match call.rest {
            Some(rest) if failed.len() > 0 => Some(failed.concat(rest)),
            Some(rest) => Some(rest),
            None if failed.len() > 0 => Some(failed),
            None => None,
        };
        match again {
            Some(unit) => {
                // Progress earns an immediate next call; only a call that
                // achieved nothing backs off.
                let due = match s.settled().next() {
                    None => now + self.pace.backoff.next_delay(),
                    Some(_) => now,
                };
                self.owed.retry(unit, due, s.isolate);
            }
            None => {
                self.pace.backoff.reset();
                if self.owed.no_retries() {
                    self.blocked.unblock();
                    self.set_waiting(false);
                }
            }
        }
        true
    }
}

impl<S> Window<S> {
    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the worker may read another batch for this sink. When it
    /// may not, the partition's queue fills and the consumer pauses it.
    pub fn has_room(&self) -> bool {
        self.owed.has_room()
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.calls.in_flight.len()
    }

    /// Whether everything owed is settled: nothing waits, is retried, held
    /// back or in flight.
    #[cfg(test)]
    pub fn settled(&self) -> bool {
        self.owed.is_empty() && self.calls.parked.is_none() && self.calls.in_flight.is_empty()
    }

    /// When something becomes due that [`Self::pump`] should look at: a
    /// retry, the end of a batching wait, or the rate limit's release.
    pub fn next_due(&self) -> Option<Instant> {
        let now = Instant::now();
        if self.fenced(now) && !(self.owed.is_empty() && self.calls.parked.is_none()) {
            return Some(now + FENCE_RECHECK);
        }
        let parked = self.calls.parked.as_ref().map(|(_, at)| *at);
        self.owed.next_due().into_iter().chain(parked).min()
    }

    /// Whether the member's fence keeps calls from starting at `now`.
    fn fenced(&self, now: Instant) -> bool {
        self.fence.as_ref().is_some_and(|f| !f.open(now))
    }

    /// The calls that may be in flight now.
    fn window(&self) -> usize {
        let max = self.owed.settings().max_in_flight;
        self.pace.adaptive.as_ref().map_or(max, Adaptive::window)
    }

    /// Counts the partition in, or out of, the sink's `waiting` gauge.
    fn set_waiting(&mut self, on: bool) {
        if self.waiting != on {
            self.waiting = on;
            let delta = if on { 1 } else { -1 };
            self.sink_stats.waiting.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Lets an adaptive window learn from a call that took `elapsed` and
    /// was or was not `pushed_back`.
    fn adapt(&mut self, elapsed: Duration, pushed_back: bool, now: Instant) {
        if let Some(a) = &mut self.pace.adaptive {
            let before = a.window();
            a.observe(elapsed, pushed_back, now);
            let after = a.window();
            self.sink_stats
                .window
                .fetch_add(after as i64 - before as i64, Ordering::Relaxed);
        }
    }
}

impl<S> Drop for Window<S> {
    fn drop(&mut self) {
        let s = &self.sink_stats;
        s.window.fetch_sub(self.window() as i64, Ordering::Relaxed);
        s.in_flight
            .fetch_sub(self.calls.in_flight.len() as i64, Ordering::Relaxed);
        self.set_waiting(false);
    }
}

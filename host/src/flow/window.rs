//! One sink's calls for one partition: which events it still owes, which
//! may be offered now, how many calls are in flight, and what each finished
//! call settled.
//!
//! Events wait here from the moment a batch is routed to the sink until the
//! sink has delivered them or they were given up on. A call is formed from
//! the events that may go now:
//! - a retry that is due goes first: its events were offered before, and
//!   everything with which they must keep order waits behind them;
//! - under `ordering = "partition"` nothing new goes while a retry waits,
//!   and one call is in flight at most, so events reach the sink in offset
//!   order, as they always did;
//! - under `"key"` an event goes only if no earlier event with its key is
//!   still owed (in flight, or waiting for a retry), or in the same call
//!   after it;
//! - under `"unordered"` anything goes.
//!
//! With sink-side batching, new events wait until a call's worth has
//! gathered or the first of them has waited `max_wait_ms`. A rate limit
//! can hold a formed call back. When a call finishes, delivered events are
//! settled in the [`Finalizer`]; failed ones are retried (only those, in
//! order) until their budget is spent, and then the sink's `on_failure`
//! policy disposes of them, exactly as with one call at a time. A call that
//! fails as a whole and would be given up is first narrowed down to the
//! event that fails it.

use super::adaptive::Adaptive;
use super::component::Sink;
use super::dead_letter::Failure;
use super::failure::FailureContext;
use super::finalizer::Finalizer;
use super::lanes::{Done, Job, Lanes};
use super::rate::RateLimiter;
use super::retry::Backoff;
use crate::config::{BatchConfig, DeliveryOrdering, FailurePolicy, RetryConfig};
use crate::contract::{Batch, SinkVerdict};
use crate::stats::{PipelineStats, SinkStats};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events a sink owes, in offset order: some or all of one batch.
struct Unit {
    batch: Arc<Batch>,
    /// Indices into `batch`; `None` is all of it.
    idx: Option<Vec<usize>>,
    /// Tries so far per event; `None` is none yet.
    tries: Option<Vec<u32>>,
    /// Bytes of its events, as the batch counts them.
    bytes: usize,
    /// When it reached the sink's queue (for the batching wait).
    since: Instant,
}

impl Unit {
    fn len(&self) -> usize {
        self.idx.as_ref().map_or(self.batch.len(), Vec::len)
    }
    /// The batch index of its `k`-th event.
    fn at(&self, k: usize) -> usize {
        self.idx.as_ref().map_or(k, |idx| idx[k])
    }
    fn tries(&self, k: usize) -> u32 {
        self.tries.as_ref().map_or(0, |t| t[k])
    }
    /// Its events at positions `ks` (in order), as a unit of their own.
    fn part(&self, ks: &[usize]) -> Unit {
        let idx: Vec<usize> = ks.iter().map(|&k| self.at(k)).collect();
        Unit {
            bytes: idx.iter().map(|&i| self.batch.event_bytes(i)).sum(),
            tries: self
                .tries
                .as_ref()
                .map(|t| ks.iter().map(|&k| t[k]).collect()),
            batch: self.batch.clone(),
            idx: Some(idx),
            since: self.since,
        }
    }
}

/// Events to offer again once `due`.
struct Retry {
    unit: Unit,
    due: Instant,
    /// Offer them one at a time, to find the one that fails a whole call.
    isolate: bool,
}

/// A call formed, in flight or held back by the rate limit.
struct Call {
    /// Exactly the events offered, in order.
    batch: Arc<Batch>,
    /// Their tries before this call.
    tries: Vec<u32>,
    /// When narrowing down: the events behind the one offered alone.
    rest: Option<Unit>,
    isolate: bool,
    retrying: bool,
}

/// How new events are gathered into calls.
struct Gather {
    max_events: usize,
    max_bytes: usize,
    /// Sink-side batching: how long new events may wait for more.
    max_wait: Option<Duration>,
}

/// One sink's delivery state for one partition.
pub struct Window<S> {
    name: String,
    ordering: DeliveryOrdering,
    max_in_flight: usize,
    adaptive: Option<Adaptive>,
    gather: Gather,
    rate: Option<Arc<RateLimiter>>,
    lanes: Lanes<S>,
    /// The retry settings and policy of the version that last ran a call.
    retry: RetryConfig,
    policy: FailurePolicy,
    /// New events, in offset order.
    waiting: VecDeque<Unit>,
    waiting_events: usize,
    waiting_bytes: usize,
    retries: VecDeque<Retry>,
    /// Events in `retries`.
    retry_events: usize,
    /// A call held back by the rate limit until the given time.
    parked: Option<(Call, Instant)>,
    in_flight: FxHashMap<u64, Call>,
    /// Key mode: per key hash, how many of its events are in flight or
    /// waiting for a retry.
    held: FxHashMap<u64, u32>,
    /// Hashes keys with a per-process random seed: keys are input, and a
    /// chosen collision could only serialize events, never reorder them.
    hasher: std::collections::hash_map::RandomState,
    backoff: Backoff,
    blocked: bool,
    next_call: u64,
    stats: Arc<PipelineStats>,
    sink_stats: Arc<SinkStats>,
}

/// What [`Window::new`] needs.
pub struct WindowSetup<S> {
    /// The sink's instances.
    pub lanes: Lanes<S>,
    /// Its name.
    pub name: String,
    /// Its retry settings and policy at start.
    pub retry: RetryConfig,
    /// See [`Self::retry`].
    pub policy: FailurePolicy,
    /// Its delivery settings.
    pub ordering: DeliveryOrdering,
    /// See [`crate::config::ComponentConfig::max_in_flight`].
    pub max_in_flight: usize,
    /// Whether the window adapts.
    pub adaptive: bool,
    /// Its own batching, if set.
    pub batch: Option<crate::config::SinkBatchConfig>,
    /// The pipeline's batching: a call's bounds when the sink has none.
    pub pipeline_batch: BatchConfig,
    /// Its rate limit, shared by the pipeline's partitions.
    pub rate: Option<Arc<RateLimiter>>,
    /// The pipeline's counters.
    pub stats: Arc<PipelineStats>,
}

impl<S: Sink + Send + 'static> Window<S> {
    /// A window with nothing owed.
    pub fn new(w: WindowSetup<S>) -> Self {
        let gather = match &w.batch {
            Some(b) => Gather {
                max_events: b.max_events,
                max_bytes: b.max_bytes,
                max_wait: Some(Duration::from_millis(b.max_wait_ms)),
            },
            None => Gather {
                max_events: w.pipeline_batch.max_events,
                max_bytes: w.pipeline_batch.max_bytes,
                max_wait: None,
            },
        };
        let sink_stats = w.stats.sink(&w.name);
        let adaptive = w.adaptive.then(|| Adaptive::new(w.max_in_flight));
        let window = adaptive.as_ref().map_or(w.max_in_flight, Adaptive::window);
        sink_stats
            .window
            .fetch_add(window as i64, Ordering::Relaxed);
        Self {
            backoff: Backoff::new(&w.retry),
            name: w.name,
            ordering: w.ordering,
            max_in_flight: w.max_in_flight,
            adaptive,
            gather,
            rate: w.rate,
            lanes: w.lanes,
            retry: w.retry,
            policy: w.policy,
            waiting: VecDeque::new(),
            waiting_events: 0,
            waiting_bytes: 0,
            retries: VecDeque::new(),
            retry_events: 0,
            parked: None,
            in_flight: FxHashMap::default(),
            held: FxHashMap::default(),
            hasher: Default::default(),
            blocked: false,
            next_call: 0,
            stats: w.stats,
            sink_stats,
        }
    }

    /// Makes sure the sink's first instance is live.
    pub fn ensure_live(&mut self) -> Result<(), super::CallError> {
        self.lanes.ensure_live()
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes on the events of `batch` at `idx` (`None`: all of them).
    pub fn owe(&mut self, batch: &Arc<Batch>, idx: Option<Vec<usize>>, now: Instant) {
        let unit = Unit {
            bytes: match &idx {
                None => batch.bytes(),
                Some(idx) => idx.iter().map(|&i| batch.event_bytes(i)).sum(),
            },
            batch: batch.clone(),
            idx,
            tries: None,
            since: now,
        };
        if unit.len() == 0 {
            return;
        }
        self.waiting_events += unit.len();
        self.waiting_bytes += unit.bytes;
        self.waiting.push_back(unit);
    }

    /// Whether the worker may read another batch for this sink: fewer new
    /// events wait than a call's worth per call the window allows. When it
    /// may not, the partition's queue fills and the consumer pauses it.
    pub fn has_room(&self) -> bool {
        let calls = self.max_in_flight;
        self.waiting_events + self.retry_events < self.gather.max_events.saturating_mul(calls)
            && self.waiting_bytes < self.gather.max_bytes.saturating_mul(calls)
    }

    /// Whether failed events waiting for a retry already fill what the
    /// window may hold: then no new call starts, so that a destination
    /// that fails everything cannot make them pile up without bound (new
    /// calls would fail too, and the commit could not pass them anyway).
    fn retries_full(&self) -> bool {
        self.retry_events >= self.gather.max_events.saturating_mul(self.max_in_flight)
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether everything owed is settled: nothing waits, is retried, held
    /// back or in flight.
    #[cfg(test)]
    pub fn settled(&self) -> bool {
        self.waiting.is_empty()
            && self.retries.is_empty()
            && self.parked.is_none()
            && self.in_flight.is_empty()
    }

    /// When something becomes due that [`Self::pump`] should look at: a
    /// retry, the end of a batching wait, or the rate limit's release.
    pub fn next_due(&self) -> Option<Instant> {
        let retry = self.retries.iter().map(|r| r.due).min();
        let gathered = match (self.gather.max_wait, self.waiting.front()) {
            (Some(wait), Some(u)) => Some(u.since + wait),
            _ => None,
        };
        let parked = self.parked.as_ref().map(|(_, at)| *at);
        [retry, gathered, parked].into_iter().flatten().min()
    }

    /// Starts every call that may go now. Returns an error only if a
    /// lane's thread cannot be started.
    pub fn pump(&mut self, now: Instant) -> std::io::Result<()> {
        while self.in_flight.len() < self.window() {
            let call = match self.parked.take() {
                Some((call, at)) if at > now => {
                    self.parked = Some((call, at));
                    return Ok(());
                }
                Some((call, _)) => call,
                None => match self.form(now) {
                    Some(call) => call,
                    None => return Ok(()),
                },
            };
            if let Some(rate) = &self.rate {
                if let Err(at) = rate.take(call.batch.len(), now) {
                    self.parked = Some((call, at));
                    return Ok(());
                }
            }
            let id = self.next_call;
            self.next_call += 1;
            let job = Job {
                call: id,
                batch: call.batch.clone(),
                retrying: call.retrying,
            };
            self.in_flight.insert(id, call);
            self.sink_stats.in_flight.fetch_add(1, Ordering::Relaxed);
            self.lanes.start(job)?;
        }
        Ok(())
    }

    /// A finished inline call, if one waits.
    pub fn take_done(&mut self) -> Option<Done> {
        self.lanes.take_done()
    }

    /// Forms the next call that may go now, if any.
    fn form(&mut self, now: Instant) -> Option<Call> {
        if let Some(pos) = self.retries.iter().position(|r| r.due <= now) {
            let retry = self.retries.remove(pos)?;
            self.retry_events -= retry.unit.len();
            return Some(self.retry_call(retry));
        }
        if self.ordering == DeliveryOrdering::Partition && !self.retries.is_empty() {
            return None;
        }
        if self.retries_full() {
            return None;
        }
        let front = self.waiting.front()?;
        if let Some(wait) = self.gather.max_wait {
            let gathered = self.waiting_events >= self.gather.max_events
                || self.waiting_bytes >= self.gather.max_bytes
                || front.since + wait <= now;
            if !gathered {
                return None;
            }
        }
        self.new_call(now)
    }

    fn retry_call(&mut self, retry: Retry) -> Call {
        let unit = retry.unit;
        let (offered, rest) = if retry.isolate && unit.len() > 1 {
            let rest: Vec<usize> = (1..unit.len()).collect();
            (unit.part(&[0]), Some(unit.part(&rest)))
        } else {
            (unit, None)
        };
        let tries = (0..offered.len()).map(|k| offered.tries(k)).collect();
        Call {
            batch: batch_of(&offered),
            tries,
            rest,
            isolate: retry.isolate,
            retrying: true,
        }
    }

    /// A call of new events: as many as fit one call and may go, in order.
    fn new_call(&mut self, now: Instant) -> Option<Call> {
        let key_mode = self.ordering == DeliveryOrdering::Key;
        let (max_events, max_bytes) = (self.gather.max_events, self.gather.max_bytes);
        // Whole units are moved; a unit partly taken leaves what stays.
        let mut taken: Vec<Unit> = Vec::new();
        let (mut events, mut bytes) = (0usize, 0usize);
        let mut ours: FxHashSet<u64> = FxHashSet::default();
        let mut u = 0;
        let mut waited = Duration::ZERO;
        'units: while u < self.waiting.len() && events < max_events {
            let unit = &self.waiting[u];
            let fits_whole = events + unit.len() <= max_events
                && (bytes + unit.bytes <= max_bytes || events == 0);
            if fits_whole && !key_mode {
                let unit = self.waiting.remove(u)?;
                events += unit.len();
                bytes += unit.bytes;
                waited = waited.max(now.saturating_duration_since(unit.since));
                taken.push(unit);
                continue;
            }
            let mut picked = Vec::new();
            let mut full = false;
            for k in 0..unit.len() {
                if events + picked.len() >= max_events {
                    full = true;
                    break;
                }
                let i = unit.at(k);
                let size = unit.batch.event_bytes(i);
                if events + picked.len() > 0 && bytes + size > max_bytes {
                    full = true;
                    break;
                }
                if key_mode {
                    if let Some(key) = unit.batch.key(i) {
                        let h = self.hasher.hash_one(key);
                        if !ours.contains(&h) && self.held.get(&h).is_some_and(|&n| n > 0) {
                            continue;
                        }
                        ours.insert(h);
                        *self.held.entry(h).or_default() += 1;
                    }
                }
                bytes += size;
                picked.push(k);
            }
            if !picked.is_empty() {
                waited = waited.max(now.saturating_duration_since(unit.since));
                events += picked.len();
                if picked.len() == unit.len() {
                    let whole = self.waiting.remove(u)?;
                    taken.push(whole);
                    if full {
                        break 'units;
                    }
                    continue;
                }
                let part = unit.part(&picked);
                let mut left = Vec::with_capacity(unit.len() - picked.len());
                let mut p = picked.iter().peekable();
                for k in 0..unit.len() {
                    if p.peek() == Some(&&k) {
                        p.next();
                    } else {
                        left.push(k);
                    }
                }
                let rest = unit.part(&left);
                self.waiting[u] = rest;
                taken.push(part);
            }
            if full {
                break;
            }
            u += 1;
        }
        if taken.is_empty() {
            return None;
        }
        self.waiting_events -= events;
        self.waiting_bytes -= taken.iter().map(|t| t.bytes).sum::<usize>();
        self.sink_stats.record_wait(waited, events);
        let batch = match taken.as_slice() {
            [one] => batch_of(one),
            units => Arc::new(copy_events(units)),
        };
        Some(Call {
            tries: vec![0; batch.len()],
            batch,
            rest: None,
            isolate: false,
            retrying: false,
        })
    }

    /// Takes a finished call back: settles what it settled, disposes of
    /// what is given up, and queues what is retried. Returns `false` if the
    /// worker was stopped before dead letters were acknowledged.
    pub fn finish(&mut self, done: Done, cx: &FailureContext<'_>, fin: &mut Finalizer) -> bool {
        self.lanes.free(done.lane);
        let Some(call) = self.in_flight.remove(&done.call) else {
            tracing::error!(sink = %self.name, call = done.call, "a call finished twice; ignored");
            return true;
        };
        self.sink_stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if done.retry != self.retry {
            self.backoff = Backoff::new(&done.retry);
        }
        self.retry = done.retry;
        self.policy = done.policy;
        let now = Instant::now();
        let events = &call.batch;
        let n = events.len();
        let mut tries = call.tries;
        let mut delivered: Vec<usize> = Vec::new();
        let mut given_up: Vec<(usize, Failure)> = Vec::new();
        let mut still: Vec<usize> = Vec::new();
        let mut first_failed: Option<(usize, Failure)> = None;
        let mut isolate = call.isolate;
        let name = self.name.clone();
        let failure = |reason: String, attempts: u32| Failure {
            component: name.clone(),
            reason,
            attempts,
        };
        let gives_up_events = self.policy != FailurePolicy::Block;
        let budget = self.retry.attempts;
        let spent = |t: u32| t >= budget;
        let pushed_back;
        match done.result {
            Err(e) => {
                pushed_back = true;
                let reason = e.to_string();
                for t in tries.iter_mut() {
                    *t = t.saturating_add(1);
                }
                if n > 1 && gives_up_events && tries.iter().any(|&t| spent(t)) {
                    tracing::warn!(sink = %self.name, events = n,
                        "the whole call keeps failing; delivering one event at a time to find \
                         the one that fails it");
                    isolate = true;
                    tries.iter_mut().for_each(|t| *t = 0);
                }
                for (j, &t) in tries.iter().enumerate() {
                    if gives_up_events && spent(t) {
                        given_up.push((j, failure(reason.clone(), t)));
                    } else {
                        first_failed.get_or_insert_with(|| (j, failure(reason.clone(), t)));
                        still.push(j);
                    }
                }
            }
            Ok(verdicts) => {
                let mut verdicts = verdicts.into_iter();
                for (j, tried) in tries.iter_mut().enumerate() {
                    let (why, permanent) = match verdicts.next() {
                        Some(SinkVerdict::Delivered) => {
                            delivered.push(j);
                            continue;
                        }
                        Some(SinkVerdict::Retry(why)) => (why, false),
                        Some(SinkVerdict::Reject(why)) => (why, true),
                        None => ("the sink gave no verdict for the event".into(), false),
                    };
                    let t = tried.saturating_add(1);
                    *tried = t;
                    // A rejection is final: retrying it is pointless unless
                    // the policy is to block (an operator may fix the sink).
                    if gives_up_events && (spent(t) || permanent) {
                        given_up.push((j, failure(why, t)));
                    } else {
                        first_failed.get_or_insert_with(|| (j, failure(why, t)));
                        still.push(j);
                    }
                }
                pushed_back = !still.is_empty();
                self.sink_stats
                    .delivered
                    .fetch_add(delivered.len() as u64, Ordering::Relaxed);
            }
        }
        if let Some(a) = &mut self.adaptive {
            let before = a.window();
            a.observe(done.elapsed, pushed_back, now);
            let after = a.window();
            self.sink_stats
                .window
                .fetch_add(after as i64 - before as i64, Ordering::Relaxed);
        }
        if !given_up.is_empty() {
            if !cx.give_up(self.policy, events, &given_up) {
                return false;
            }
            // The event that fails on its own is found.
            isolate = false;
        }
        for &j in delivered.iter().chain(given_up.iter().map(|(j, _)| j)) {
            self.release(events, j);
            fin.settled(events.offset(j));
        }
        let settled = delivered.len() + given_up.len();
        if let Some((j, f)) = &first_failed {
            cx.stats.retries.fetch_add(1, Ordering::Relaxed);
            let offset = events.offset(*j);
            tracing::warn!(sink = %self.name, offset, failed = still.len(), attempt = f.attempts,
                reason = %f.reason, "sink did not deliver; retrying");
            if !gives_up_events && spent(f.attempts) && !self.blocked {
                self.blocked = true;
                self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                tracing::error!(component = %f.component, offset, attempts = f.attempts,
                    reason = %f.reason,
                    "partition BLOCKED (on_failure = block): nothing past this offset is \
                     committed; retrying until the component succeeds");
            }
        }
        let failed = Unit {
            bytes: 0,
            idx: Some(still.clone()),
            tries: Some(still.iter().map(|&j| tries[j]).collect()),
            batch: call.batch.clone(),
            since: now,
        };
        let again = match call.rest {
            Some(rest) if failed.len() > 0 => Some(concat(failed, rest)),
            Some(rest) => Some(rest),
            None if failed.len() > 0 => Some(failed),
            None => None,
        };
        match again {
            Some(unit) => {
                // Progress earns an immediate next call; only a call that
                // achieved nothing backs off.
                let due = if settled == 0 {
                    now + self.backoff.next_delay()
                } else {
                    now
                };
                self.retry_events += unit.len();
                self.retries.push_back(Retry { unit, due, isolate });
            }
            None => {
                self.backoff.reset();
                if self.blocked && self.retries.is_empty() {
                    self.unblock();
                }
            }
        }
        true
    }

    /// Key mode: event `j` of `batch` is settled, so its key's hold ends.
    fn release(&mut self, batch: &Batch, j: usize) {
        if self.ordering != DeliveryOrdering::Key {
            return;
        }
        let Some(key) = batch.key(j) else { return };
        let h = self.hasher.hash_one(key);
        if let Some(n) = self.held.get_mut(&h) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&h);
            }
        }
    }

    fn unblock(&mut self) {
        self.blocked = false;
        self.stats.blocked.fetch_sub(1, Ordering::Relaxed);
        tracing::info!(sink = %self.name, "partition unblocked");
    }
}

impl<S> Window<S> {
    /// The calls that may be in flight now.
    fn window(&self) -> usize {
        self.adaptive
            .as_ref()
            .map_or(self.max_in_flight, Adaptive::window)
    }
}

impl<S> Drop for Window<S> {
    fn drop(&mut self) {
        if self.blocked {
            self.stats.blocked.fetch_sub(1, Ordering::Relaxed);
        }
        let s = &self.sink_stats;
        s.window.fetch_sub(self.window() as i64, Ordering::Relaxed);
        s.in_flight
            .fetch_sub(self.in_flight.len() as i64, Ordering::Relaxed);
    }
}

/// The events of `unit` as a batch of exactly them: the batch itself when
/// the unit is all of it, else a copy.
fn batch_of(unit: &Unit) -> Arc<Batch> {
    let Some(idx) = &unit.idx else {
        return unit.batch.clone();
    };
    if idx.len() == unit.batch.len() {
        return unit.batch.clone();
    }
    match unit.batch.select(idx) {
        Ok(b) => Arc::new(b),
        // Cannot fail: a subset of a batch fits where the batch did.
        Err(_) => unit.batch.clone(),
    }
}

/// The events of `units`, in order, copied into one batch.
fn copy_events(units: &[Unit]) -> Batch {
    let mut batch = Batch::sized_like(&units[0].batch);
    for u in units {
        for k in 0..u.len() {
            // Cannot fail: a call holds at most a pipeline batch's or a sink
            // batch's events, both far below the limit.
            if batch.push_from(&u.batch, u.at(k)).is_err() {
                tracing::error!("a sink call outgrew a batch's positions");
            }
        }
    }
    batch
}

/// `a` then `b` as one unit (both in offset order, `a` before `b`).
fn concat(a: Unit, b: Unit) -> Unit {
    let tries = (0..a.len())
        .map(|k| a.tries(k))
        .chain((0..b.len()).map(|k| b.tries(k)))
        .collect();
    let since = a.since;
    let batch = copy_events(&[a, b]);
    Unit {
        bytes: batch.bytes(),
        batch: Arc::new(batch),
        idx: None,
        tries: Some(tries),
        since,
    }
}

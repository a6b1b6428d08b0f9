//! Fan-out to the sinks: each sink gets, once per batch, the events routed to
//! it. Failed events are retried in offset order; events a sink already
//! delivered are never sent to it again.
//!
//! Each sink keeps its own retry clock, so a sink backing off does not hold
//! back the others. Once an event has used up its sink's `retry.attempts`,
//! the sink's `on_failure` policy decides: `block` keeps retrying, while
//! `dead-letter` and `skip` give the event up.
//!
//! A whole call can fail (a trap, a deadline, an error for the batch). Giving
//! up the whole batch for it would punish the good events with the bad one,
//! so a sink that would give up on a failed call first narrows it down:
//! it delivers its pending events one at a time until the one that fails on
//! its own has spent its retries, then goes back to whole batches.

use super::component::{CallError, Sink};
use super::dead_letter::Failure;
use super::failure::{Blocked, FailureContext, Guarded};
use super::finalizer::Finalizer;
use super::retry::{sleep_until, Backoff};
use super::route::RoutedBatch;
use crate::contract::{Batch, SinkVerdict, Source};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One sink's progress through the current batch.
struct SinkState {
    /// Indices of the events it still owes, in offset order.
    pending: Vec<usize>,
    /// Tries per event index.
    tries: Vec<u32>,
    /// Delivering one event per call to find the one that fails the call.
    isolate: bool,
    backoff: Backoff,
    /// When it may be called again.
    due: Instant,
}

/// What one call settled.
#[derive(Default)]
struct Round {
    delivered: Vec<usize>,
    given_up: Vec<(usize, Failure)>,
    /// How many events failed and stay pending, and the first of them
    /// (for the log and the backoff).
    failed: usize,
    first_failed: Option<(usize, Failure)>,
}

impl Round {
    /// Records that event `i` failed: given up on, or still owed (then
    /// returns `true`). The failure is only built where it is kept.
    fn fail(&mut self, i: usize, give_up: bool, failure: impl FnOnce() -> Failure) -> bool {
        if give_up {
            self.given_up.push((i, failure()));
            return false;
        }
        self.failed += 1;
        if self.first_failed.is_none() {
            self.first_failed = Some((i, failure()));
        }
        true
    }
}

/// Delivers `batch` to every sink it is routed to, telling `finalizer` each
/// time a sink has delivered an event or given it up. Returns `false` if
/// the worker was stopped first; events not final then are simply not
/// committed.
pub fn deliver_all<S: Sink>(
    sinks: &mut [Guarded<S>],
    batch: &RoutedBatch,
    cx: &FailureContext<'_>,
    finalizer: &mut Finalizer,
) -> bool {
    let events = &batch.events;
    finalizer.owe(&batch.routes, sinks.len());
    let now = Instant::now();
    let mut states: Vec<SinkState> = sinks
        .iter()
        .enumerate()
        .map(|(s, sink)| SinkState {
            pending: (0..events.len())
                .filter(|&i| batch.routes[i].as_ref().is_none_or(|r| r.contains(&s)))
                .collect(),
            tries: vec![0; events.len()],
            isolate: false,
            backoff: Backoff::new(&sink.retry),
            due: now,
        })
        .collect();
    let mut blocked = Blocked::new(cx.stats);
    loop {
        let now = Instant::now();
        for (sink, state) in sinks.iter_mut().zip(states.iter_mut()) {
            if state.pending.is_empty() || state.due > now {
                continue;
            }
            if state.pending.iter().any(|&i| state.tries[i] > 0) {
                sink.switch_version(events.offset(state.pending[0]), true);
            }
            let round = deliver_round(sink, state, events, cx);
            let settled = round.delivered.len() + round.given_up.len();
            if !round.given_up.is_empty() {
                let materialized: Vec<_> = round
                    .given_up
                    .iter()
                    .map(|(i, _)| events.event(*i))
                    .collect();
                let letters: Vec<_> = materialized
                    .iter()
                    .zip(round.given_up.iter().map(|(_, f)| f))
                    .collect();
                if !cx.give_up(sink.policy, &letters) {
                    return false;
                }
                // The event that fails on its own is found.
                state.isolate = false;
            }
            for i in round
                .delivered
                .iter()
                .chain(round.given_up.iter().map(|(i, _)| i))
            {
                finalizer.settled(*i, events.offset(*i));
            }
            let Some((i, failure)) = &round.first_failed else {
                state.backoff.reset();
                continue;
            };
            cx.stats.retries.fetch_add(1, Ordering::Relaxed);
            let offset = events.offset(*i);
            tracing::warn!(sink = sink.guest.name(), offset, failed = round.failed, attempt = failure.attempts,
                reason = %failure.reason, "sink did not deliver; retrying");
            if !sink.gives_up_events() && sink.spent(failure.attempts) {
                blocked.block(offset, failure);
            }
            // Progress (something settled) earns an immediate next call;
            // only a round that achieved nothing backs off.
            if settled == 0 {
                state.due = Instant::now() + state.backoff.next_delay();
            }
        }
        let Some(next) = states
            .iter()
            .filter(|s| !s.pending.is_empty())
            .map(|s| s.due)
            .min()
        else {
            return true;
        };
        if !sleep_until(next, cx.stop) {
            return false;
        }
    }
}

/// One call of `sink` with the events it owes (or only the first of them,
/// when narrowing down a failing call), and the bookkeeping of its result.
fn deliver_round<S: Sink>(
    sink: &mut Guarded<S>,
    state: &mut SinkState,
    events: &Batch,
    cx: &FailureContext<'_>,
) -> Round {
    let offered = if state.isolate {
        1
    } else {
        state.pending.len()
    };
    let offer = &state.pending[..offered];
    let mut round = Round::default();
    let name = sink.guest.name().to_owned();
    let failure = |reason: String, tries: u32| Failure {
        component: name.clone(),
        reason,
        attempts: tries,
    };
    let mut still = Vec::with_capacity(state.pending.len());
    match call(&mut sink.guest, cx.source, events, offer) {
        Err(e) => {
            let reason = e.to_string();
            for &i in offer {
                state.tries[i] = state.tries[i].saturating_add(1);
            }
            if offer.len() > 1 && offer.iter().any(|&i| sink.gives_up(state.tries[i])) {
                tracing::warn!(sink = %name, events = offer.len(),
                    "the whole call keeps failing; delivering one event at a time to find \
                     the one that fails it");
                state.isolate = true;
                for &i in offer {
                    state.tries[i] = 0;
                }
            }
            for &i in offer {
                let tries = state.tries[i];
                if round.fail(i, sink.gives_up(tries), || failure(reason.clone(), tries)) {
                    still.push(i);
                }
            }
        }
        Ok(verdicts) => {
            for (&i, verdict) in offer.iter().zip(verdicts) {
                let (why, permanent) = match verdict {
                    SinkVerdict::Delivered => {
                        round.delivered.push(i);
                        continue;
                    }
                    SinkVerdict::Retry(why) => (why, false),
                    SinkVerdict::Reject(why) => (why, true),
                };
                let tries = state.tries[i].saturating_add(1);
                state.tries[i] = tries;
                // A rejection is final: retrying it is pointless unless the
                // policy is to block (an operator may fix the sink).
                let gives_up = sink.gives_up(tries) || (permanent && sink.gives_up_events());
                if round.fail(i, gives_up, || failure(why, tries)) {
                    still.push(i);
                }
            }
            cx.stats.add_delivered(&name, round.delivered.len() as u64);
        }
    }
    still.extend_from_slice(&state.pending[offered..]);
    state.pending = still;
    round
}

/// One call of `sink` with the events at `offer` (indices into `events`, in
/// order).
fn call<S: Sink>(
    sink: &mut S,
    source: &Source,
    events: &Batch,
    offer: &[usize],
) -> Result<Vec<SinkVerdict>, CallError> {
    if offer.len() == events.len() {
        return sink.deliver(source, events);
    }
    sink.deliver(source, &events.select(offer)?)
}

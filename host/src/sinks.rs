//! Fan-out to the sinks: each sink gets, once per batch, the events routed to
//! it. Failed events are retried in offset order until delivered; events a
//! sink already delivered are never sent to it again.

use crate::config::RetryConfig;
use crate::interceptors::RoutedBatch;
use crate::retry::Backoff;
use crate::runtime::bindings::{Event, SinkVerdict};
use crate::runtime::SinkGuest;
use crate::stats::PipelineStats;
use std::sync::atomic::{AtomicBool, Ordering};

/// Delivers `batch` to every sink it is routed to. `finalized` is called with
/// each event's offset once every sink routed to has delivered it. Returns
/// `false` if `stop` was set before everything was delivered; undelivered
/// events are then simply not finalized, so their offsets are not committed.
pub fn deliver_all(
    sinks: &mut [SinkGuest],
    batch: &RoutedBatch,
    retry: &RetryConfig,
    stop: &AtomicBool,
    stats: &PipelineStats,
    mut finalized: impl FnMut(i64),
) -> bool {
    let events = &batch.events;
    // How many sinks still owe each event a delivery.
    let mut owed: Vec<usize> = batch
        .routes
        .iter()
        .map(|r| r.as_ref().map_or(sinks.len(), Vec::len))
        .collect();
    // Each round offers every sink the events it still owes, so one sink
    // stuck on an event does not hold back the others' progress.
    let mut pending: Vec<Vec<usize>> = (0..sinks.len())
        .map(|s| {
            (0..events.len())
                .filter(|&i| batch.routes[i].as_ref().is_none_or(|r| r.contains(&s)))
                .collect()
        })
        .collect();
    let mut backoff = Backoff::new(retry);
    loop {
        let mut first_failure: Option<(usize, usize, String)> = None;
        for (s, sink) in sinks.iter_mut().enumerate() {
            if pending[s].is_empty() {
                continue;
            }
            let failed = deliver_once(sink, events, &pending[s], stats, &mut |i| {
                owed[i] -= 1;
                if owed[i] == 0 {
                    finalized(events[i].offset);
                }
            });
            if let Some((&i, reason)) = failed.0.first().zip(failed.1) {
                first_failure.get_or_insert((s, i, reason));
            }
            pending[s] = failed.0;
        }
        let Some((s, i, reason)) = first_failure else {
            return true;
        };
        stats.retries.fetch_add(1, Ordering::Relaxed);
        let e = &events[i];
        tracing::warn!(sink = sinks[s].name(), topic = %e.topic, partition = e.partition,
            offset = e.offset, failed = pending[s].len(), attempt = backoff.attempts() + 1,
            reason = %reason, "sink did not deliver; retrying (partition blocked at this offset)");
        if !backoff.wait(stop) {
            return false;
        }
    }
}

/// One call of `sink` with the events at `pending` (indices into `events`,
/// in order). Calls `delivered` per delivered index; returns the indices that
/// failed, in order, and the first failure's reason.
fn deliver_once(
    sink: &mut SinkGuest,
    events: &[Event],
    pending: &[usize],
    stats: &PipelineStats,
    delivered: &mut dyn FnMut(usize),
) -> (Vec<usize>, Option<String>) {
    // The common case, the whole batch, is passed without copying.
    let subset: Vec<Event>;
    let slice: &[Event] = if pending.len() == events.len() {
        events
    } else {
        subset = pending.iter().map(|&i| events[i].clone()).collect();
        &subset
    };
    match sink.deliver(slice) {
        Err(e) => (pending.to_vec(), Some(e.to_string())),
        Ok(verdicts) => {
            let mut failed = Vec::new();
            let mut reason = None;
            let mut count = 0u64;
            for (&i, verdict) in pending.iter().zip(verdicts) {
                match verdict {
                    SinkVerdict::Delivered => {
                        count += 1;
                        delivered(i);
                    }
                    SinkVerdict::Retry(why) | SinkVerdict::Reject(why) => {
                        reason.get_or_insert(why);
                        failed.push(i);
                    }
                }
            }
            stats.add_delivered(sink.name(), count);
            (failed, reason)
        }
    }
}

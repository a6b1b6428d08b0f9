//! The interceptor chain: each interceptor sees the batch the previous one
//! left, once per batch, and answers keep / drop / replace and optionally a
//! route per event.

use crate::config::RetryConfig;
use crate::retry::Backoff;
use crate::runtime::bindings::{Action, Event, InterceptorVerdict};
use crate::runtime::{GuestError, InterceptorGuest};
use crate::stats::PipelineStats;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which sinks an event goes to: `None` means all of them, `Some` lists sink
/// indices in configuration order.
pub type Route = Option<Vec<usize>>;

/// A batch on its way to the sinks: events and, in parallel, their routes.
#[derive(Debug, Default)]
pub struct RoutedBatch {
    /// Surviving events, in offset order.
    pub events: Vec<Event>,
    /// Route of each event in `events`.
    pub routes: Vec<Route>,
}

/// Runs `batch` through `chain`. Events an interceptor drops (or routes to
/// no sink) are passed to `dropped`, which finalizes them. A failing
/// interceptor is retried with backoff until it succeeds (the `block`
/// policy); returns `None` if `stop` is set first.
pub fn run_chain(
    chain: &mut [InterceptorGuest],
    sink_names: &[String],
    batch: Vec<Event>,
    retry: &RetryConfig,
    stop: &AtomicBool,
    stats: &PipelineStats,
    mut dropped: impl FnMut(i64),
) -> Option<RoutedBatch> {
    let mut routed = RoutedBatch {
        routes: vec![None; batch.len()],
        events: batch,
    };
    for guest in chain.iter_mut() {
        let Some(first) = routed.events.first() else {
            break;
        };
        let mut backoff = Backoff::new(retry);
        let verdicts = loop {
            let result = guest
                .process(&routed.events)
                .and_then(|v| resolve_routes(guest.name(), v, sink_names));
            match result {
                Ok(v) => break v,
                Err(e) => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, topic = %first.topic, partition = first.partition,
                        offset = first.offset, attempt = backoff.attempts() + 1,
                        "interceptor failed; retrying the batch (partition blocked)");
                    if !backoff.wait(stop) {
                        return None;
                    }
                }
            }
        };
        let mut next = RoutedBatch::default();
        for ((mut event, route), (verdict, new_route)) in
            routed.events.into_iter().zip(routed.routes).zip(verdicts)
        {
            let route = new_route.or(route);
            let drop_it = match verdict.action {
                Action::Drop => true,
                Action::Keep => false,
                Action::Replace(r) => {
                    event.timestamp = r.timestamp;
                    event.key = r.key;
                    event.value = r.value;
                    event.headers = r.headers;
                    false
                }
            };
            if drop_it || route.as_ref().is_some_and(Vec::is_empty) {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                dropped(event.offset);
            } else {
                next.events.push(event);
                next.routes.push(route);
            }
        }
        routed = next;
    }
    Some(routed)
}

/// Maps each verdict's sink names to indices; an unknown name breaks the
/// contract and fails the call.
fn resolve_routes(
    component: &str,
    verdicts: Vec<InterceptorVerdict>,
    sink_names: &[String],
) -> Result<Vec<(InterceptorVerdict, Route)>, GuestError> {
    verdicts
        .into_iter()
        .map(|mut v| {
            let route = match v.route.take() {
                None => None,
                Some(names) => Some(
                    names
                        .iter()
                        .map(|n| {
                            sink_names.iter().position(|s| s == n).ok_or_else(|| {
                                GuestError::Contract {
                                    name: component.to_owned(),
                                    message: format!(
                                        "routed an event to `{n}`, which is not a sink of this \
                                         pipeline (sinks: {})",
                                        sink_names.join(", ")
                                    ),
                                }
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|mut sinks| {
                            // A sink named twice still delivers once; counting
                            // it twice would leave the event owed forever.
                            sinks.sort_unstable();
                            sinks.dedup();
                            sinks
                        })?,
                ),
            };
            Ok((v, route))
        })
        .collect()
}

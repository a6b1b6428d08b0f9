//! The interceptor chain: each interceptor sees the batch the previous one
//! left, once per batch, and answers keep / drop / replace and optionally a
//! route per event.

use super::component::{CallError, Interceptor};
use super::dead_letter::Failure;
use super::failure::{Blocked, FailureContext, Guarded};
use super::finalizer::Finalizer;
use super::retry::Backoff;
use super::route::{Route, RoutedBatch};
use crate::config::FailurePolicy;
use crate::contract::{replace, Action, Event, InterceptorVerdict};
use std::sync::atomic::Ordering;

/// An interceptor routed an event to a sink the pipeline does not have.
#[derive(Debug, thiserror::Error)]
#[error(
    "component `{component}` broke the contract: routed an event to `{sink}`, which is not a \
     sink of this pipeline (sinks: {sinks})"
)]
struct UnknownSink {
    component: String,
    sink: String,
    sinks: String,
}

/// Runs `batch` through `chain`. Events an interceptor drops (or routes to
/// no sink), and events it gave up on under `dead-letter` or `skip`, are
/// final at once and reported to `finalizer`. Returns `None` if the worker
/// was stopped first.
///
/// A failing call is retried with the interceptor's backoff. Once its
/// attempts are spent, `block` keeps retrying; any other policy first narrows
/// the failure down by calling the interceptor one event at a time, so that
/// only the events it fails on by themselves are dead-lettered, skipped or
/// (`fail-open`) passed on unchanged.
pub fn run_chain<I: Interceptor>(
    chain: &mut [Guarded<I>],
    sink_names: &[String],
    batch: Vec<Event>,
    cx: &FailureContext<'_>,
    finalizer: &mut Finalizer,
) -> Option<RoutedBatch> {
    let mut routed = RoutedBatch {
        routes: vec![None; batch.len()],
        events: batch,
    };
    for guest in chain.iter_mut() {
        if routed.events.is_empty() {
            break;
        }
        let verdicts = match call_retrying(guest, &routed.events, sink_names, cx)? {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(failure) if routed.events.len() == 1 => vec![Err(failure)],
            Err(_) => {
                tracing::warn!(
                    interceptor = guest.guest.name(),
                    events = routed.events.len(),
                    "the whole call keeps failing; processing one event at a time to find the \
                     events it fails on"
                );
                let mut one_by_one = Vec::with_capacity(routed.events.len());
                for e in routed.events.chunks(1) {
                    // `process` checked that one event got one verdict.
                    let r = call_retrying(guest, e, sink_names, cx)?;
                    one_by_one.push(r.map(|v| v.into_iter().next()).transpose()?);
                }
                one_by_one
            }
        };
        let mut given_up: Vec<(Event, Failure)> = Vec::new();
        let mut next = RoutedBatch::default();
        for ((mut event, route), verdict) in
            routed.events.into_iter().zip(routed.routes).zip(verdicts)
        {
            let (verdict, new_route) = match verdict {
                Ok(v) => v,
                Err(failure) if guest.policy == FailurePolicy::FailOpen => {
                    tracing::warn!(interceptor = %failure.component, offset = event.offset,
                        reason = %failure.reason, "interceptor failed; event passed on unchanged \
                        (on_failure = fail-open)");
                    cx.stats.failed_open.fetch_add(1, Ordering::Relaxed);
                    next.events.push(event);
                    next.routes.push(route);
                    continue;
                }
                Err(failure) => {
                    given_up.push((event, failure));
                    continue;
                }
            };
            let route = new_route.or(route);
            let drop_it = match verdict.action {
                Action::Drop => true,
                Action::Keep => false,
                Action::Replace(r) => {
                    replace(&mut event, r);
                    false
                }
            };
            if drop_it || route.as_ref().is_some_and(Vec::is_empty) {
                finalizer.dropped(event.offset);
            } else {
                next.events.push(event);
                next.routes.push(route);
            }
        }
        if !given_up.is_empty() {
            let letters: Vec<_> = given_up.iter().map(|(e, f)| (e, f)).collect();
            if !cx.give_up(guest.policy, &letters) {
                return None;
            }
            for (e, _) in &given_up {
                finalizer.given_up(e.offset);
            }
        }
        routed = next;
    }
    Some(routed)
}

/// Calls `guest` on `events` until it succeeds or, under a policy that gives
/// up, its attempts are spent (`Err`). `None` if stopped first.
fn call_retrying<I: Interceptor>(
    guest: &mut Guarded<I>,
    events: &[Event],
    sink_names: &[String],
    cx: &FailureContext<'_>,
) -> Option<Result<Vec<(InterceptorVerdict, Route)>, Failure>> {
    let mut backoff = Backoff::new(&guest.retry);
    let mut blocked = Blocked::new(cx.stats);
    let first = events.first()?;
    for tries in 1.. {
        let result = guest
            .guest
            .process(cx.source, events)
            .and_then(|v| resolve_routes(guest.guest.name(), v, sink_names));
        let e = match result {
            Ok(v) => return Some(Ok(v)),
            Err(e) => e,
        };
        let failure = Failure {
            component: guest.guest.name().to_owned(),
            reason: e.to_string(),
            attempts: tries,
        };
        if guest.gives_up(tries) {
            return Some(Err(failure));
        }
        cx.stats.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, offset = first.offset, events = events.len(), attempt = tries,
            "interceptor failed; retrying the batch");
        if guest.spent(tries) {
            blocked.block(first, &failure);
        }
        if !backoff.wait(cx.stop) {
            return None;
        }
        guest.switch_version(first.offset, true);
    }
    None
}

/// Maps each verdict's sink names to indices; an unknown name breaks the
/// contract and fails the call.
fn resolve_routes(
    component: &str,
    verdicts: Vec<InterceptorVerdict>,
    sink_names: &[String],
) -> Result<Vec<(InterceptorVerdict, Route)>, CallError> {
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
                                CallError::from(UnknownSink {
                                    component: component.to_owned(),
                                    sink: n.clone(),
                                    sinks: sink_names.join(", "),
                                })
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

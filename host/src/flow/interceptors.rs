//! The interceptor chain: each interceptor sees the batch the previous one
//! left, once per batch, and answers keep / drop / replace and optionally a
//! route per event.

use super::component::{CallError, Interceptor, Unavailable};
use super::failure::{Blocked, Failure, FailureContext, Guarded};
use super::finalizer::Finalizer;
use super::retry::Backoff;
use super::route::{Route, RoutedBatch};
use crate::config::FailurePolicy;
use crate::contract::{Action, Batch, InterceptorVerdict, Record};
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
    batch: Batch,
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
                for i in 0..routed.events.len() {
                    let one = match routed.events.select(&[i]) {
                        Ok(one) => one,
                        Err(e) => {
                            one_by_one.push(Err(too_large(guest, e)));
                            continue;
                        }
                    };
                    let r = call_retrying(guest, &one, sink_names, cx)?;
                    one_by_one.push(r.map(|v| v.into_iter().next()).transpose()?);
                }
                one_by_one
            }
        };
        routed = apply_verdicts(guest, routed, verdicts, cx, finalizer)?;
    }
    Some(routed)
}

/// A verdict for one event, or why the interceptor gave it up.
type Outcome = Result<(InterceptorVerdict, Route), Failure>;

/// What is left of `routed` after one interceptor's `verdicts`. When every
/// event is kept as it is, the batch goes on untouched; otherwise the kept
/// and replaced events are copied into a new one.
fn apply_verdicts<I: Interceptor>(
    guest: &Guarded<I>,
    routed: RoutedBatch,
    verdicts: Vec<Outcome>,
    cx: &FailureContext<'_>,
    finalizer: &mut Finalizer,
) -> Option<RoutedBatch> {
    let unchanged = verdicts.iter().all(|v| {
        matches!(v, Ok((verdict, route))
            if matches!(verdict.action, Action::Keep) && route.as_ref().is_none_or(|r| !r.is_empty()))
    });
    if unchanged {
        let routes = (routed.routes.into_iter().zip(verdicts))
            .map(|(route, v)| v.ok().and_then(|(_, r)| r).or(route))
            .collect();
        return Some(RoutedBatch {
            events: routed.events,
            routes,
        });
    }
    let events = &routed.events;
    let mut given_up: Vec<(usize, Failure)> = Vec::new();
    let mut next = RoutedBatch {
        events: Batch::with_capacity(events.len(), events.bytes()),
        routes: Vec::with_capacity(events.len()),
    };
    for (i, (route, verdict)) in routed.routes.into_iter().zip(verdicts).enumerate() {
        let offset = events.offset(i);
        let (verdict, new_route) = match verdict {
            Ok(v) => v,
            Err(failure) if guest.handling.policy == FailurePolicy::FailOpen => {
                tracing::warn!(interceptor = %failure.component, offset,
                    reason = %failure.reason, "interceptor failed; event passed on unchanged \
                    (on_failure = fail-open)");
                cx.stats.failed_open.fetch_add(1, Ordering::Relaxed);
                match next.events.push_from(events, i) {
                    Ok(()) => next.routes.push(route),
                    Err(e) => given_up.push((i, too_large(guest, e))),
                }
                continue;
            }
            Err(failure) => {
                given_up.push((i, failure));
                continue;
            }
        };
        let route = new_route.or(route);
        let pushed = match verdict.action {
            Action::Reject(reason) => {
                given_up.push((
                    i,
                    Failure {
                        component: guest.guest.name().to_owned(),
                        reason,
                        attempts: 1,
                    },
                ));
                continue;
            }
            Action::Drop => None,
            _ if route.as_ref().is_some_and(Vec::is_empty) => None,
            Action::Keep => Some(next.events.push_from(events, i)),
            Action::Replace(r) => Some(next.events.push(Record {
                offset,
                timestamp: r.timestamp,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: r.headers.iter().map(|h| (h.name.as_bytes(), &h.value[..])),
            })),
        };
        match pushed {
            None => finalizer.dropped(offset),
            Some(Ok(())) => next.routes.push(route),
            Some(Err(e)) => given_up.push((i, too_large(guest, e))),
        }
    }
    if !given_up.is_empty() {
        if !cx.give_up(guest.handling.policy, events, &given_up) {
            return None;
        }
        for (i, _) in &given_up {
            finalizer.given_up(events.offset(*i));
        }
    }
    Some(next)
}

/// An event the interceptor's output made too large to hand on.
fn too_large<I: Interceptor>(guest: &Guarded<I>, e: crate::contract::TooLarge) -> Failure {
    Failure {
        component: guest.guest.name().to_owned(),
        reason: e.to_string(),
        attempts: 1,
    }
}

/// Calls `guest` on `events` until it succeeds or, under a policy that gives
/// up, its attempts are spent (`Err`). `None` if stopped first.
fn call_retrying<I: Interceptor>(
    guest: &mut Guarded<I>,
    events: &Batch,
    sink_names: &[String],
    cx: &FailureContext<'_>,
) -> Option<Result<Vec<(InterceptorVerdict, Route)>, Failure>> {
    let mut backoff = Backoff::new(&guest.handling.retry);
    let mut blocked = Blocked::new(cx.stats);
    let first = *events.offsets().first()?;
    // Calls that failed for the events' sake; an outage of a service the
    // interceptor depends on is not one.
    let mut failed = 0;
    for tries in 1.. {
        let result = guest
            .guest
            .process(cx.source, events)
            .and_then(|v| resolve_routes(guest.guest.name(), v, sink_names));
        let e = match result {
            Ok(v) => {
                blocked.unblock();
                return Some(Ok(v));
            }
            Err(e) => e,
        };
        let outage = e.is::<Unavailable>();
        failed += u32::from(!outage);
        let failure = Failure {
            component: guest.guest.name().to_owned(),
            reason: e.to_string(),
            attempts: tries,
        };
        if !outage && guest.handling.gives_up(failed) {
            return Some(Err(failure));
        }
        cx.stats.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, offset = first, events = events.len(), attempt = tries,
            "interceptor failed; retrying the batch");
        if guest.handling.spent(tries) {
            blocked.block(first, &failure);
        }
        if !backoff.wait(cx.stop) {
            return None;
        }
        guest.switch_version(first, true);
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

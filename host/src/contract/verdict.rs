//! What a guest decided for each event of a batch, as the flow uses it: one
//! verdict per event, in batch order.
//!
//! Guests answer compactly (contract 0.4.0): an interceptor with one action
//! byte per event (or none, to keep them all) plus the few replacements and
//! routes, a sink with only the events it did not deliver. Building a
//! record per event cost Python and JavaScript guests microseconds per
//! event; expanding the compact answer here costs the host nanoseconds.
//! The expansion also checks that the answer fits the batch, so that a
//! guest that miscounts fails its call instead of finalizing the wrong
//! events.

use super::bindings::{Failure, FailureKind, Replacement, Verdicts};

/// What happens to one event at an interceptor.
#[derive(Clone, Debug)]
pub enum Action {
    /// Pass it on unchanged.
    Keep,
    /// Drop it deliberately: it reaches no sink and its offset may be
    /// committed.
    Drop,
    /// Pass this content on instead of the original.
    Replace(Replacement),
    /// Give it to the interceptor's failure policy, for this reason
    /// (through the `rejection` import, since contract 0.4.1).
    Reject(String),
}

/// An interceptor's decision for one event.
#[derive(Clone, Debug)]
pub struct InterceptorVerdict {
    /// What to do with the event.
    pub action: Action,
    /// The sinks that receive it by name, when the interceptor changed its
    /// routing.
    pub route: Option<Vec<String>>,
}

/// A sink's outcome for one event.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkVerdict {
    /// Durably handed over; the offset may be committed.
    Delivered,
    /// A transient failure: send it again later. The string says why.
    Retry(String),
    /// A permanent failure: apply the sink's failure policy.
    Reject(String),
}

/// The action byte that keeps an event (`verdicts.actions`).
pub const KEEP: u8 = 0;
/// The action byte that drops an event.
pub const DROP: u8 = 1;
/// The action byte that replaces an event with the next replacement.
pub const REPLACE: u8 = 2;

/// Marks the events an interceptor rejected during the call (by position,
/// each once, each in the batch: the host side of the import checked),
/// whatever their action byte said.
pub fn apply_rejections(verdicts: &mut [InterceptorVerdict], rejected: Vec<(usize, String)>) {
    for (event, reason) in rejected {
        if let Some(v) = verdicts.get_mut(event) {
            v.action = Action::Reject(reason);
        }
    }
}

/// One verdict per event of a batch of `len` from an interceptor's compact
/// answer, or what about the answer does not fit the batch.
pub fn interceptor_verdicts(
    answer: Verdicts,
    len: usize,
) -> Result<Vec<InterceptorVerdict>, String> {
    let Verdicts {
        actions,
        replacements,
        routes,
    } = answer;
    if !actions.is_empty() && actions.len() != len {
        return Err(format!(
            "answered {} actions for a batch of {len} (one per event, or none to keep \
             every event)",
            actions.len()
        ));
    }
    let mut replacements = replacements.into_iter();
    let mut verdicts = Vec::with_capacity(len);
    for (i, &byte) in actions.iter().enumerate() {
        let action = match byte {
            KEEP => Action::Keep,
            DROP => Action::Drop,
            REPLACE => Action::Replace(replacements.next().ok_or_else(|| {
                format!("event {i}'s action is replace (2), but the replacements ran out")
            })?),
            other => {
                return Err(format!(
                    "event {i}'s action is {other}; an action is 0 (keep), 1 (drop) or 2 \
                     (replace)"
                ))
            }
        };
        verdicts.push(InterceptorVerdict {
            action,
            route: None,
        });
    }
    let extra = replacements.len();
    if extra > 0 {
        return Err(format!(
            "answered {extra} more replacement(s) than actions that replace (2)"
        ));
    }
    if actions.is_empty() {
        verdicts.resize_with(len, || InterceptorVerdict {
            action: Action::Keep,
            route: None,
        });
    }
    let mut next = 0;
    for route in routes {
        let event = in_order(route.event, next, len, "route")?;
        verdicts[event].route = Some(route.sinks);
        next = event + 1;
    }
    Ok(verdicts)
}

/// One verdict per event of a batch of `len` from the events a sink did
/// not deliver, or what about them does not fit the batch.
pub fn sink_verdicts(failures: Vec<Failure>, len: usize) -> Result<Vec<SinkVerdict>, String> {
    let mut verdicts = vec![SinkVerdict::Delivered; len];
    let mut next = 0;
    for failure in failures {
        let event = in_order(failure.event, next, len, "failure")?;
        verdicts[event] = match failure.kind {
            FailureKind::Retry => SinkVerdict::Retry(failure.reason),
            FailureKind::Reject => SinkVerdict::Reject(failure.reason),
        };
        next = event + 1;
    }
    Ok(verdicts)
}

/// `event` as an index, when it is in a batch of `len` and comes after the
/// previous entry (`next` is the first index still allowed).
fn in_order(event: u32, next: usize, len: usize, what: &str) -> Result<usize, String> {
    let i = event as usize;
    if i >= len {
        return Err(format!(
            "a {what} names event {event} in a batch of {len} (events count from 0)"
        ));
    }
    if i < next {
        return Err(format!(
            "a {what} names event {event} after event {}; list each event at most once, \
             in increasing order",
            next - 1
        ));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::bindings::Route;

    fn replacement(value: &[u8]) -> Replacement {
        Replacement {
            timestamp: None,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    fn answer(
        actions: &[u8],
        replacements: Vec<Replacement>,
        routes: &[(u32, &[&str])],
    ) -> Verdicts {
        Verdicts {
            actions: actions.to_vec(),
            replacements,
            routes: routes
                .iter()
                .map(|(event, sinks)| Route {
                    event: *event,
                    sinks: sinks.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
        }
    }

    fn failure(event: u32, kind: FailureKind, reason: &str) -> Failure {
        Failure {
            event,
            kind,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn no_actions_keeps_every_event_with_the_routes_given() {
        let v = interceptor_verdicts(answer(&[], vec![], &[(1, &["a"])]), 3).expect("fits");
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|v| matches!(v.action, Action::Keep)));
        assert_eq!(v[0].route, None);
        assert_eq!(v[1].route, Some(vec!["a".to_owned()]));
        assert_eq!(v[2].route, None);
    }

    #[test]
    fn replacements_go_to_the_replaced_events_in_order() {
        let v = interceptor_verdicts(
            answer(
                &[REPLACE, DROP, KEEP, REPLACE],
                vec![replacement(b"x"), replacement(b"y")],
                &[],
            ),
            4,
        )
        .expect("fits");
        let value = |a: &Action| match a {
            Action::Replace(r) => r.value.clone(),
            _ => None,
        };
        assert_eq!(value(&v[0].action), Some(b"x".to_vec()));
        assert!(matches!(v[1].action, Action::Drop));
        assert!(matches!(v[2].action, Action::Keep));
        assert_eq!(value(&v[3].action), Some(b"y".to_vec()));
    }

    #[test]
    fn an_answer_that_does_not_fit_the_batch_is_refused_with_what_is_wrong() {
        let refused = |a: Verdicts, len| interceptor_verdicts(a, len).expect_err("refused");
        assert!(refused(answer(&[KEEP], vec![], &[]), 2).contains("1 actions for a batch of 2"));
        assert!(refused(answer(&[7], vec![], &[]), 1).contains("event 0's action is 7"));
        assert!(refused(answer(&[REPLACE], vec![], &[]), 1).contains("replacements ran out"));
        assert!(refused(answer(&[KEEP], vec![replacement(b"x")], &[]), 1)
            .contains("1 more replacement"));
        assert!(
            refused(answer(&[], vec![replacement(b"x")], &[]), 1).contains("1 more replacement")
        );
        assert!(
            refused(answer(&[], vec![], &[(2, &[])]), 2).contains("names event 2 in a batch of 2")
        );
        assert!(refused(answer(&[], vec![], &[(1, &[]), (1, &[])]), 2)
            .contains("event 1 after event 1"));
    }

    #[test]
    fn a_sink_delivers_every_event_it_does_not_name() {
        let v = sink_verdicts(
            vec![
                failure(1, FailureKind::Retry, "busy"),
                failure(2, FailureKind::Reject, "bad"),
            ],
            4,
        )
        .expect("fits");
        assert_eq!(
            v,
            [
                SinkVerdict::Delivered,
                SinkVerdict::Retry("busy".into()),
                SinkVerdict::Reject("bad".into()),
                SinkVerdict::Delivered,
            ]
        );
        assert_eq!(
            sink_verdicts(vec![], 2).expect("fits"),
            [SinkVerdict::Delivered, SinkVerdict::Delivered]
        );
    }

    #[test]
    fn a_sink_failure_outside_the_batch_or_out_of_order_is_refused() {
        let out = sink_verdicts(vec![failure(5, FailureKind::Retry, "")], 5).expect_err("refused");
        assert!(
            out.contains("failure names event 5 in a batch of 5"),
            "{out}"
        );
        let twice = sink_verdicts(
            vec![
                failure(3, FailureKind::Retry, ""),
                failure(0, FailureKind::Retry, ""),
            ],
            5,
        )
        .expect_err("refused");
        assert!(twice.contains("event 0 after event 3"), "{twice}");
    }
}

//! What a finished sink call settled: which of its events were delivered,
//! which are given up on, and which are offered again.
//!
//! This is the one place that reads a sink's answer, and it is a pure
//! function of the answer, the events' tries and the failure handling, so
//! that the rules are tested on their own: an event counts as delivered
//! only on a `delivered` verdict; a retried event is never final; a
//! rejection is final unless the policy is to block; and a call that fails
//! as a whole and would give events up is first narrowed down, one event at
//! a time, to the event that fails it.

use crate::contract::SinkVerdict;
use crate::flow::component::CallError;
use crate::flow::failure::{Failure, FailureHandling};

/// What one finished call settled. Positions are into the call's events.
#[derive(Debug, Default)]
pub struct Settlement {
    /// Events the sink delivered.
    pub delivered: Vec<usize>,
    /// Events given up on (`on_failure` disposes of them), each with why.
    pub given_up: Vec<(usize, Failure)>,
    /// Events to offer again, in order, each with its tries so far.
    pub retried: Vec<(usize, u32)>,
    /// Why the first retried event failed (for the log, and to see whether
    /// a `block` sink has spent its budget).
    pub first_failed: Option<(usize, Failure)>,
    /// Whether the retry offers its events one at a time, to find the one
    /// that fails a whole call.
    pub isolate: bool,
    /// Whether the sink pushed back: the call failed, or left events to
    /// retry (an adaptive window shrinks).
    pub pushed_back: bool,
}

impl Settlement {
    /// Events that are final, delivered first, then given up: their
    /// offsets may be finalized and, in key order, their keys released.
    pub fn settled(&self) -> impl Iterator<Item = usize> + '_ {
        let given_up = self.given_up.iter().map(|(j, _)| *j);
        self.delivered.iter().copied().chain(given_up)
    }
}

/// Settles a call of sink `sink` whose events had been tried `tries` times
/// before it (one per event, in order) and that answered `result`, under
/// `handling`. `isolate` says whether the call was offering one event of a
/// failing call on its own.
pub fn settle(
    sink: &str,
    tries: &[u32],
    result: Result<Vec<SinkVerdict>, CallError>,
    handling: &FailureHandling,
    isolate: bool,
) -> Settlement {
    let failure = |reason: String, attempts: u32| Failure {
        component: sink.to_owned(),
        reason,
        attempts,
    };
    let mut s = Settlement {
        isolate,
        ..Settlement::default()
    };
    let mut tries: Vec<u32> = tries.iter().map(|t| t.saturating_add(1)).collect();
    // Per event: why it was not delivered and whether that is final
    // whatever its budget (a rejection).
    let outcomes: Vec<Option<(String, bool)>> = match result {
        Err(e) => {
            s.pushed_back = true;
            let n = tries.len();
            if n > 1 && handling.gives_up_events() && tries.iter().any(|&t| handling.spent(t)) {
                tracing::warn!(
                    sink,
                    events = n,
                    "the whole call keeps failing; delivering one event at a time to find \
                     the one that fails it"
                );
                s.isolate = true;
                tries.iter_mut().for_each(|t| *t = 0);
            }
            let reason = e.to_string();
            vec![Some((reason, false)); n]
        }
        Ok(verdicts) => {
            let mut verdicts = verdicts.into_iter();
            (0..tries.len())
                .map(|_| match verdicts.next() {
                    Some(SinkVerdict::Delivered) => None,
                    Some(SinkVerdict::Retry(why)) => Some((why, false)),
                    Some(SinkVerdict::Reject(why)) => Some((why, true)),
                    None => Some(("the sink gave no verdict for the event".into(), false)),
                })
                .collect()
        }
    };
    for (j, (outcome, &t)) in outcomes.into_iter().zip(&tries).enumerate() {
        let Some((why, permanent)) = outcome else {
            s.delivered.push(j);
            continue;
        };
        // A rejection is final: retrying it is pointless unless the policy
        // is to block (an operator may fix the sink).
        if handling.gives_up_events() && (handling.spent(t) || permanent) {
            s.given_up.push((j, failure(why, t)));
        } else {
            s.first_failed.get_or_insert_with(|| (j, failure(why, t)));
            s.retried.push((j, t));
        }
    }
    s.pushed_back |= !s.retried.is_empty();
    if !s.given_up.is_empty() {
        // The event that fails on its own is found.
        s.isolate = false;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FailurePolicy, RetryConfig};

    fn handling(policy: FailurePolicy, attempts: u32) -> FailureHandling {
        FailureHandling {
            retry: RetryConfig {
                attempts,
                ..RetryConfig::default()
            },
            policy,
        }
    }

    fn retry(why: &str) -> SinkVerdict {
        SinkVerdict::Retry(why.into())
    }

    fn reject(why: &str) -> SinkVerdict {
        SinkVerdict::Reject(why.into())
    }

    fn given_up(s: &Settlement) -> Vec<usize> {
        s.given_up.iter().map(|(j, _)| *j).collect()
    }

    #[test]
    fn only_delivered_verdicts_count_as_delivered() {
        let h = handling(FailurePolicy::DeadLetter, 5);
        let verdicts = vec![
            SinkVerdict::Delivered,
            retry("busy"),
            SinkVerdict::Delivered,
        ];
        let s = settle("s", &[0, 0, 0], Ok(verdicts), &h, false);
        assert_eq!(s.delivered, vec![0, 2]);
        assert_eq!(s.retried, vec![(1, 1)]);
        assert!(s.given_up.is_empty());
        assert_eq!(s.settled().collect::<Vec<_>>(), vec![0, 2]);
        let (j, f) = s.first_failed.as_ref().expect("a failure");
        assert_eq!((*j, f.reason.as_str(), f.attempts), (1, "busy", 1));
        assert!(s.pushed_back);
    }

    #[test]
    fn a_retried_event_is_never_final_under_block() {
        let h = handling(FailurePolicy::Block, 2);
        let s = settle("s", &[7], Ok(vec![retry("down")]), &h, false);
        assert!(s.delivered.is_empty() && s.given_up.is_empty());
        assert_eq!(s.retried, vec![(0, 8)]);
        assert_eq!(s.settled().count(), 0);
    }

    #[test]
    fn missing_verdicts_are_retried_not_delivered() {
        let h = handling(FailurePolicy::Skip, 5);
        let s = settle("s", &[0, 0, 0], Ok(vec![SinkVerdict::Delivered]), &h, false);
        assert_eq!(s.delivered, vec![0]);
        assert_eq!(s.retried, vec![(1, 1), (2, 1)]);
        let (_, f) = s.first_failed.as_ref().expect("a failure");
        assert_eq!(f.reason, "the sink gave no verdict for the event");
    }

    #[test]
    fn a_rejection_is_final_unless_the_policy_blocks() {
        let verdicts = || vec![reject("bad"), SinkVerdict::Delivered];
        let skip = settle(
            "s",
            &[0, 0],
            Ok(verdicts()),
            &handling(FailurePolicy::Skip, 5),
            false,
        );
        assert_eq!(given_up(&skip), vec![0]);
        assert_eq!(skip.settled().collect::<Vec<_>>(), vec![1, 0]);
        assert!(!skip.pushed_back);
        let h = handling(FailurePolicy::Block, 5);
        let block = settle("s", &[0, 0], Ok(verdicts()), &h, false);
        assert!(block.given_up.is_empty());
        assert_eq!(block.retried, vec![(0, 1)]);
    }

    #[test]
    fn an_event_is_given_up_when_its_budget_is_spent() {
        let h = handling(FailurePolicy::DeadLetter, 3);
        let s = settle("s", &[1, 2], Ok(vec![retry("a"), retry("b")]), &h, false);
        assert_eq!(s.retried, vec![(0, 2)]);
        assert_eq!(given_up(&s), vec![1]);
        let (_, f) = &s.given_up[0];
        assert_eq!(
            (f.component.as_str(), f.reason.as_str(), f.attempts),
            ("s", "b", 3)
        );
    }

    #[test]
    fn a_whole_call_failing_past_its_budget_is_narrowed_down() {
        let h = handling(FailurePolicy::Skip, 2);
        let s = settle("s", &[1, 1, 1], Err("timeout".into()), &h, false);
        // Nothing is given up yet: each event is offered alone, afresh.
        assert!(s.isolate);
        assert!(s.given_up.is_empty() && s.delivered.is_empty());
        assert_eq!(s.retried, vec![(0, 0), (1, 0), (2, 0)]);
        assert!(s.pushed_back);
    }

    #[test]
    fn the_event_failing_alone_is_given_up_and_narrowing_ends() {
        let h = handling(FailurePolicy::Skip, 2);
        let s = settle("s", &[1], Err("poison".into()), &h, true);
        assert_eq!(given_up(&s), vec![0]);
        assert!(!s.isolate);
        // Still narrowing while the event alone has budget left.
        let s = settle("s", &[0], Err("poison".into()), &h, true);
        assert!(s.isolate);
        assert_eq!(s.retried, vec![(0, 1)]);
    }

    #[test]
    fn a_whole_call_failing_under_block_keeps_counting_tries() {
        let h = handling(FailurePolicy::Block, 2);
        let s = settle("s", &[4, 4], Err("down".into()), &h, false);
        assert!(!s.isolate);
        assert_eq!(s.retried, vec![(0, 5), (1, 5)]);
        let (_, f) = s.first_failed.as_ref().expect("a failure");
        assert!(h.spent(f.attempts));
    }
}

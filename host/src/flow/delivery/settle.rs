//! What a finished sink call settled: which of its events were delivered,
//! which are given up on, and which are offered again.
//!
//! This is the one place that reads a sink's answer, and it is a pure
//! function of the answer, the events' tries, the time and the failure
//! handling, so that the rules are tested on their own:
//! - an event counts as delivered only on a `delivered` verdict;
//! - a retried event is never final;
//! - a rejection is final unless the policy is to block;
//! - an event the sink answered `retry` for (its destination is down) is
//!   given up only once `retry.max_elapsed_ms` has passed since the first
//!   such answer, however many calls that took;
//! - a call that fails as a whole (or leaves an event without a verdict)
//!   spends `retry.attempts`, and when it would give events up it is first
//!   narrowed down, one event at a time, to the event that fails it.

use crate::contract::SinkVerdict;
use crate::flow::component::CallError;
use crate::flow::failure::{Failure, FailureHandling, Tries};
use std::time::Instant;

/// What one finished call settled. Positions are into the call's events.
#[derive(Debug, Default)]
pub struct Settlement {
    /// Events the sink delivered.
    pub delivered: Vec<usize>,
    /// Events given up on (`on_failure` disposes of them), each with why.
    pub given_up: Vec<(usize, Failure)>,
    /// Events to offer again, in order, each with its tries so far.
    pub retried: Vec<(usize, Tries)>,
    /// Why the first retried event failed (for the log).
    pub first_failed: Option<(usize, Failure)>,
    /// Whether the first retried event has used up its budget: under
    /// `block`, which retries it anyway, the partition is then blocked.
    pub spent: bool,
    /// Whether an event is retried because the sink answered `retry`: the
    /// partition waits on the sink's destination.
    pub waiting: bool,
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

/// Why one event was not delivered.
#[derive(Clone)]
enum Miss {
    /// The sink rejected it: final whatever its budget.
    Rejected(String),
    /// The sink answered `retry`: timed by `retry.max_elapsed_ms`.
    Transient(String),
    /// The call failed, or gave no verdict for it: counted (already)
    /// against `retry.attempts`.
    Failed(String),
}

/// Settles a call of sink `sink` whose events had `tries` before it (one
/// per event, in order) and that answered `result` at `now`, under
/// `handling`. `isolate` says whether the call was offering one event of a
/// failing call on its own.
pub fn settle(
    sink: &str,
    tries: &[Tries],
    result: Result<Vec<SinkVerdict>, CallError>,
    handling: &FailureHandling,
    isolate: bool,
    now: Instant,
) -> Settlement {
    let mut s = Settlement {
        isolate,
        ..Settlement::default()
    };
    let mut tries: Vec<Tries> = tries
        .iter()
        .map(|t| Tries {
            count: t.count.saturating_add(1),
            ..*t
        })
        .collect();
    let misses = match result {
        Err(e) => {
            s.pushed_back = true;
            tries.iter_mut().for_each(|t| t.failed_calls += 1);
            let spent = tries.iter().any(|t| handling.spent(t.failed_calls));
            if tries.len() > 1 && handling.gives_up_events() && spent {
                tracing::warn!(
                    sink,
                    events = tries.len(),
                    "the whole call keeps failing; delivering one event at a time to find \
                     the one that fails it"
                );
                s.isolate = true;
                // Each event gets its whole budget alone.
                tries.iter_mut().for_each(|t| t.failed_calls = 0);
            }
            let reason = e.to_string();
            vec![Some(Miss::Failed(reason)); tries.len()]
        }
        Ok(verdicts) => {
            let mut verdicts = verdicts.into_iter();
            let mut misses = Vec::with_capacity(tries.len());
            for t in &mut tries {
                misses.push(match verdicts.next() {
                    Some(SinkVerdict::Delivered) => None,
                    Some(SinkVerdict::Retry(why)) => Some(Miss::Transient(why)),
                    Some(SinkVerdict::Reject(why)) => Some(Miss::Rejected(why)),
                    None => {
                        t.failed_calls += 1;
                        Some(Miss::Failed(
                            "the sink gave no verdict for the event".into(),
                        ))
                    }
                });
            }
            misses
        }
    };
    for (j, (miss, mut t)) in misses.into_iter().zip(tries).enumerate() {
        let (why, spent) = match miss {
            None => {
                s.delivered.push(j);
                continue;
            }
            // A rejection is final: retrying it is pointless unless the
            // policy is to block (an operator may fix the sink).
            Some(Miss::Rejected(why)) => (why, true),
            Some(Miss::Transient(why)) => {
                s.waiting = true;
                let since = *t.retrying_since.get_or_insert(now);
                (why, handling.waited_out(since, now))
            }
            Some(Miss::Failed(why)) => (why, handling.spent(t.failed_calls)),
        };
        let failure = Failure {
            component: sink.to_owned(),
            reason: why,
            attempts: t.count,
        };
        if handling.gives_up_events() && spent {
            s.given_up.push((j, failure));
        } else {
            if s.first_failed.is_none() {
                s.first_failed = Some((j, failure));
                s.spent = spent;
            }
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
    use std::time::Duration;

    fn handling(policy: FailurePolicy, attempts: u32) -> FailureHandling {
        FailureHandling {
            retry: RetryConfig {
                attempts,
                max_elapsed_ms: 60_000,
                ..RetryConfig::default()
            },
            policy,
        }
    }

    /// Tried `n` times before, every one a failed call.
    fn failed(n: u32) -> Tries {
        Tries {
            count: n,
            failed_calls: n,
            retrying_since: None,
        }
    }

    /// Tried `n` times before, answered `retry` since `since`.
    fn retrying(n: u32, since: Instant) -> Tries {
        Tries {
            count: n,
            failed_calls: 0,
            retrying_since: Some(since),
        }
    }

    fn fresh(n: usize) -> Vec<Tries> {
        vec![Tries::default(); n]
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

    fn retried(s: &Settlement) -> Vec<(usize, u32)> {
        s.retried.iter().map(|(j, t)| (*j, t.count)).collect()
    }

    #[test]
    fn only_delivered_verdicts_count_as_delivered() {
        let h = handling(FailurePolicy::DeadLetter, 5);
        let now = Instant::now();
        let verdicts = vec![
            SinkVerdict::Delivered,
            retry("busy"),
            SinkVerdict::Delivered,
        ];
        let s = settle("s", &fresh(3), Ok(verdicts), &h, false, now);
        assert_eq!(s.delivered, vec![0, 2]);
        assert_eq!(retried(&s), vec![(1, 1)]);
        assert!(s.given_up.is_empty());
        assert_eq!(s.settled().collect::<Vec<_>>(), vec![0, 2]);
        let (j, f) = s.first_failed.as_ref().expect("a failure");
        assert_eq!((*j, f.reason.as_str(), f.attempts), (1, "busy", 1));
        assert!(s.pushed_back && s.waiting && !s.spent);
    }

    #[test]
    fn a_retried_event_is_never_final_under_block() {
        let h = handling(FailurePolicy::Block, 2);
        let now = Instant::now();
        let long_ago = now - Duration::from_secs(3600);
        let s = settle(
            "s",
            &[retrying(7, long_ago)],
            Ok(vec![retry("down")]),
            &h,
            false,
            now,
        );
        assert!(s.delivered.is_empty() && s.given_up.is_empty());
        assert_eq!(retried(&s), vec![(0, 8)]);
        assert_eq!(s.settled().count(), 0);
        // Its time is up: the partition is blocked, not the event given up.
        assert!(s.spent);
    }

    #[test]
    fn missing_verdicts_are_retried_not_delivered() {
        let h = handling(FailurePolicy::Skip, 5);
        let now = Instant::now();
        let s = settle(
            "s",
            &fresh(3),
            Ok(vec![SinkVerdict::Delivered]),
            &h,
            false,
            now,
        );
        assert_eq!(s.delivered, vec![0]);
        assert_eq!(retried(&s), vec![(1, 1), (2, 1)]);
        let (_, f) = s.first_failed.as_ref().expect("a failure");
        assert_eq!(f.reason, "the sink gave no verdict for the event");
        // A sink that leaves an event out spends the attempts budget.
        assert_eq!(s.retried[0].1.failed_calls, 1);
        assert!(!s.waiting);
    }

    #[test]
    fn a_rejection_is_final_unless_the_policy_blocks() {
        let verdicts = || vec![reject("bad"), SinkVerdict::Delivered];
        let now = Instant::now();
        let skip_handling = handling(FailurePolicy::Skip, 5);
        let skip = settle("s", &fresh(2), Ok(verdicts()), &skip_handling, false, now);
        assert_eq!(given_up(&skip), vec![0]);
        assert_eq!(skip.settled().collect::<Vec<_>>(), vec![1, 0]);
        assert!(!skip.pushed_back);
        let h = handling(FailurePolicy::Block, 5);
        let block = settle("s", &fresh(2), Ok(verdicts()), &h, false, now);
        assert!(block.given_up.is_empty());
        assert_eq!(retried(&block), vec![(0, 1)]);
    }

    #[test]
    fn a_failed_call_gives_an_event_up_when_its_attempts_are_spent() {
        let h = handling(FailurePolicy::DeadLetter, 3);
        let now = Instant::now();
        let s = settle("s", &[failed(2)], Err("trap".into()), &h, true, now);
        assert_eq!(given_up(&s), vec![0]);
        let (_, f) = &s.given_up[0];
        assert_eq!(
            (f.component.as_str(), f.reason.as_str(), f.attempts),
            ("s", "trap", 3)
        );
        let s = settle("s", &[failed(1)], Err("trap".into()), &h, true, now);
        assert!(s.given_up.is_empty());
        assert_eq!(s.retried[0].1.failed_calls, 2);
    }

    /// An outage is not poison: however many calls a `retry` answer took,
    /// the event waits until `max_elapsed_ms` has passed since the first.
    #[test]
    fn a_retry_answer_is_given_up_only_after_max_elapsed() {
        let h = handling(FailurePolicy::DeadLetter, 3);
        let now = Instant::now();
        let recent = now - Duration::from_secs(59);
        let s = settle(
            "s",
            &[retrying(50, recent)],
            Ok(vec![retry("refused")]),
            &h,
            false,
            now,
        );
        assert!(s.given_up.is_empty(), "gave an event up within its time");
        assert_eq!(retried(&s), vec![(0, 51)]);
        assert_eq!(s.retried[0].1.retrying_since, Some(recent));
        assert!(s.waiting && !s.spent);
        let old = now - Duration::from_secs(60);
        let s = settle(
            "s",
            &[retrying(2, old)],
            Ok(vec![retry("refused")]),
            &h,
            false,
            now,
        );
        assert_eq!(given_up(&s), vec![0]);
        assert_eq!(s.given_up[0].1.attempts, 3);
    }

    #[test]
    fn the_first_retry_answer_starts_the_clock() {
        let h = handling(FailurePolicy::Skip, 1);
        let now = Instant::now();
        // One failed call already spent the attempts budget; a `retry`
        // answer is timed, not counted.
        let s = settle("s", &[failed(1)], Ok(vec![retry("503")]), &h, false, now);
        assert!(s.given_up.is_empty());
        assert_eq!(s.retried[0].1.retrying_since, Some(now));
    }

    #[test]
    fn a_whole_call_failing_past_its_budget_is_narrowed_down() {
        let h = handling(FailurePolicy::Skip, 2);
        let now = Instant::now();
        let s = settle("s", &[failed(1); 3], Err("timeout".into()), &h, false, now);
        // Nothing is given up yet: each event is offered alone, afresh.
        assert!(s.isolate);
        assert!(s.given_up.is_empty() && s.delivered.is_empty());
        let budgets: Vec<u32> = s.retried.iter().map(|(_, t)| t.failed_calls).collect();
        assert_eq!(budgets, vec![0, 0, 0]);
        assert_eq!(retried(&s), vec![(0, 2), (1, 2), (2, 2)]);
        assert!(s.pushed_back);
    }

    #[test]
    fn the_event_failing_alone_is_given_up_and_narrowing_ends() {
        let h = handling(FailurePolicy::Skip, 2);
        let now = Instant::now();
        let s = settle("s", &[failed(1)], Err("poison".into()), &h, true, now);
        assert_eq!(given_up(&s), vec![0]);
        assert!(!s.isolate);
        // Still narrowing while the event alone has budget left.
        let s = settle("s", &[failed(0)], Err("poison".into()), &h, true, now);
        assert!(s.isolate);
        assert_eq!(retried(&s), vec![(0, 1)]);
    }

    #[test]
    fn a_whole_call_failing_under_block_keeps_counting_tries() {
        let h = handling(FailurePolicy::Block, 2);
        let now = Instant::now();
        let s = settle("s", &[failed(4); 2], Err("down".into()), &h, false, now);
        assert!(!s.isolate);
        assert_eq!(retried(&s), vec![(0, 5), (1, 5)]);
        assert!(s.spent && !s.waiting);
    }
}

//! The flow's logic, driven through a partition [`Worker`] with fake
//! components: owed counts across fan-out and routes, retries that resend
//! only what a sink has not accepted, narrowing a failing call down to
//! single events, each `on_failure` policy, and a property test of the
//! commit rule over random verdicts.

use super::fakes::{
    batch, deliver, events, offsets, verdict, FakeDeadLetters, FakeInterceptor, FakeSink,
};
use super::partition::{Stages, Worker};
use super::DeadLetters;
use crate::config::PipelineConfig;
use crate::contract::{Action, Event, Replacement, SinkVerdict, Source};
use crate::kafka::{PartitionShared, Publisher};
use crate::stats::PipelineStats;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

fn pipeline() -> PipelineConfig {
    toml::from_str(
        "name = \"p\"\ntopics = [\"t\"]\ngroup_id = \"g\"\nsink = []\n\
         retry = { attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 2 }",
    )
    .expect("pipeline config")
}

/// A worker on partition `t`/0 over the given fakes, with what it shares.
struct Harness {
    worker: Worker<FakeInterceptor, FakeSink>,
    shared: Arc<PartitionShared>,
    stats: Arc<PipelineStats>,
}

fn harness(
    interceptors: Vec<FakeInterceptor>,
    sinks: Vec<FakeSink>,
    dead_letter: Option<Arc<FakeDeadLetters>>,
    publisher: Publisher,
) -> Harness {
    let shared = publisher.shared().clone();
    let stats = Arc::new(PipelineStats::default());
    let stages = Stages {
        interceptors,
        sinks,
        dead_letter: dead_letter.map(|d| d as Arc<dyn DeadLetters>),
        rates: Vec::new(),
        fence: None,
    };
    let source = Source {
        topic: "t".into(),
        partition: 0,
    };
    Harness {
        worker: Worker::new(&pipeline(), stages, source, publisher, stats.clone()),
        shared,
        stats,
    }
}

impl Harness {
    /// Hands `b` to the worker and runs until the sinks settled it.
    fn run(&mut self, b: crate::contract::Batch) -> bool {
        self.worker.process(b) && self.worker.settle()
    }
}

fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn calls(log: &Arc<Mutex<Vec<Vec<i64>>>>) -> Vec<Vec<i64>> {
    log.lock().expect("calls").clone()
}

/// Rejects offset 1, delivers the rest.
fn rejects_offset_1(batch: &[Event]) -> Result<Vec<SinkVerdict>, super::CallError> {
    Ok(batch
        .iter()
        .map(|e| match e.offset {
            1 => SinkVerdict::Reject("bad".into()),
            _ => SinkVerdict::Delivered,
        })
        .collect())
}

#[test]
fn fan_out_and_routes_owe_each_event_to_its_sinks() {
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let router = FakeInterceptor::new("router", "", |batch| {
        Ok(batch
            .iter()
            .map(|e| match e.offset {
                0 => verdict(Action::Keep, Some(&["a"])),
                1 => verdict(Action::Keep, Some(&["a", "b", "a"])),
                2 => verdict(Action::Keep, None),
                _ => verdict(Action::Keep, Some(&[])),
            })
            .collect())
    });
    let a = FakeSink::new("a", "", deliver);
    let seen = shared.clone();
    let mut first = true;
    let b = FakeSink::new("b", "", move |batch| {
        if std::mem::take(&mut first) {
            // `a` has delivered 0, 1 and 2; only 0 is owed by no one else.
            assert_eq!(seen.committable(), Some(1));
            return Ok(batch
                .iter()
                .map(|_| SinkVerdict::Retry("later".into()))
                .collect());
        }
        deliver(batch)
    });
    let (a_calls, b_calls) = (a.log(), b.log());
    let mut h = harness(vec![router], vec![a, b], None, publisher);
    assert!(h.run(batch(&[0, 1, 2, 3])));
    assert_eq!(calls(&a_calls), [vec![0, 1, 2]]);
    assert_eq!(calls(&b_calls), [vec![1, 2], vec![1, 2]]);
    assert_eq!(h.shared.committable(), Some(4));
    assert_eq!(count(&h.stats.dropped), 1, "routed to no sink");
    assert_eq!(count(&h.stats.finalized), 4);
    assert_eq!(h.stats.delivered().get("b"), Some(&2));
}

#[test]
fn a_retry_resends_only_what_the_sink_did_not_accept_in_order() {
    let mut first = true;
    let sink = FakeSink::new("s", "", move |batch| {
        if !std::mem::take(&mut first) {
            return deliver(batch);
        }
        Ok(batch
            .iter()
            .map(|e| match e.offset % 2 {
                0 => SinkVerdict::Delivered,
                _ => SinkVerdict::Retry("busy".into()),
            })
            .collect())
    });
    let log = sink.log();
    let mut h = harness(vec![], vec![sink], None, Publisher::new());
    assert!(h.run(batch(&[10, 11, 12, 13, 14])));
    assert_eq!(calls(&log), [vec![10, 11, 12, 13, 14], vec![11, 13]]);
    assert_eq!(h.shared.committable(), Some(15));
    assert_eq!(count(&h.stats.retries), 1);
}

#[test]
fn a_failing_call_is_narrowed_to_the_event_that_fails_it() {
    let sink = FakeSink::new(
        "s",
        "on_failure = \"skip\"\nretry = { attempts = 1, initial_backoff_ms = 1, max_backoff_ms = 1 }",
        |batch| match batch.iter().any(|e| e.offset == 2) {
            true => Err("poison".into()),
            false => deliver(batch),
        },
    );
    let log = sink.log();
    let mut h = harness(vec![], vec![sink], None, Publisher::new());
    assert!(h.run(batch(&[0, 1, 2, 3])));
    // The whole call, then one event at a time until the poison is found
    // and skipped, then whole batches again.
    assert_eq!(
        calls(&log),
        [vec![0, 1, 2, 3], vec![0], vec![1], vec![2], vec![3]]
    );
    assert_eq!(count(&h.stats.skipped), 1);
    assert_eq!(h.shared.committable(), Some(4));
}

#[test]
fn block_holds_the_partition_at_the_failing_event() {
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let stop = shared.clone();
    let seen: Arc<Mutex<Vec<Option<i64>>>> = Arc::default();
    let seen_by_sink = seen.clone();
    let sink = FakeSink::new("s", "on_failure = \"block\"", move |batch| {
        let mut seen = seen_by_sink.lock().expect("seen");
        seen.push(stop.committable());
        if seen.len() >= 6 {
            stop.stop.store(true, Ordering::Release);
        }
        rejects_offset_1(batch)
    });
    let log = sink.log();
    let mut h = harness(vec![], vec![sink], None, publisher);
    assert!(!h.run(batch(&[0, 1, 2])), "stopped while blocked");
    let calls = calls(&log);
    assert_eq!(calls[0], [0, 1, 2]);
    assert!(calls[1..].iter().all(|c| c == &[1]), "{calls:?}");
    // 0 is final; 1 never is, so neither is 2, delivered behind it.
    let seen = seen.lock().expect("seen");
    assert!(seen[1..].iter().all(|c| *c == Some(1)), "{seen:?}");
    assert_eq!(h.shared.committable(), Some(1));
    assert_eq!(count(&h.stats.blocked), 1, "blocked while the worker lives");
    assert_eq!(count(&h.stats.skipped) + count(&h.stats.dead_lettered), 0);
    assert_eq!(h.worker.finalizer().in_flight(), 2);
    let Harness { worker, stats, .. } = h;
    drop(worker);
    assert_eq!(
        count(&stats.blocked),
        0,
        "the gauge drops when the worker stops"
    );
}

#[test]
fn a_destination_failing_everything_does_not_pile_up_retries() {
    let sink = FakeSink::new(
        "s",
        "on_failure = \"block\"\nmax_in_flight = 2\nordering = \"unordered\"",
        |batch| {
            Ok(batch
                .iter()
                .map(|_| SinkVerdict::Retry("down".into()))
                .collect())
        },
    );
    let log = sink.log();
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let mut h = harness(vec![], vec![sink], None, publisher);
    for k in 0..8i64 {
        let offsets: Vec<i64> = (k * 500..(k + 1) * 500).collect();
        assert!(h.worker.process(batch(&offsets)));
    }
    let stop = shared.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.stop.store(true, Ordering::Release);
    });
    assert!(!h.worker.settle(), "stopped while the sink is down");
    stopper.join().expect("stopper");
    // Two calls of 500 in flight, then their events wait for retries: a
    // third call may start while the first is being retried, but no more.
    let highest = calls(&log).iter().flatten().copied().max();
    assert!(highest < Some(1500), "new calls went on: up to {highest:?}");
    assert!(calls(&log).len() > 10, "retries went on");
    assert_eq!(shared.committable(), None);
}

#[test]
fn a_rate_limit_spaces_the_calls() {
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let stats = Arc::new(PipelineStats::default());
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let rate = crate::config::Rate::Events(2000.0);
    let stages = Stages {
        interceptors: Vec::<FakeInterceptor>::new(),
        sinks: vec![sink],
        dead_letter: None,
        rates: vec![Some(Arc::new(super::RateLimiter::new(rate)))],
        fence: None,
    };
    let source = Source {
        topic: "t".into(),
        partition: 0,
    };
    let mut worker = Worker::new(&pipeline(), stages, source, publisher, stats);
    let started = std::time::Instant::now();
    for k in 0..9i64 {
        let offsets: Vec<i64> = (k * 500..(k + 1) * 500).collect();
        assert!(worker.process(batch(&offsets)));
    }
    assert!(worker.settle());
    // A second's worth (2000 events) goes at once, the next call on credit;
    // the 2000 events after it wait out 2000 events/s.
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
    assert_eq!(calls(&log).len(), 9);
    assert_eq!(shared.committable(), Some(4500));
}

#[test]
fn skip_gives_a_rejected_event_up_at_once() {
    let sink = rejecting_one("skip");
    let log = sink.log();
    let mut h = harness(vec![], vec![sink], None, Publisher::new());
    assert!(h.run(batch(&[0, 1, 2])));
    assert_eq!(calls(&log), [vec![0, 1, 2]], "a rejection is not retried");
    assert_eq!(count(&h.stats.skipped), 1);
    assert_eq!(h.shared.committable(), Some(3));
}

/// A sink under `on_failure` that rejects offset 1 and delivers the rest.
fn rejecting_one(on_failure: &str) -> FakeSink {
    FakeSink::new(
        "s",
        &format!("on_failure = \"{on_failure}\""),
        rejects_offset_1,
    )
}

#[test]
fn a_dead_letter_finalizes_only_once_acknowledged() {
    // Not acknowledged (the worker is stopped while waiting): nothing of
    // that call is final, not even what the sink delivered beside it; it
    // is all read and delivered again, which at-least-once allows.
    let dlq = Arc::new(FakeDeadLetters::default());
    dlq.refuse.store(true, Ordering::Release);
    let mut h = harness(
        vec![],
        vec![rejecting_one("dead-letter")],
        Some(dlq.clone()),
        Publisher::new(),
    );
    assert!(!h.run(batch(&[0, 1, 2])));
    assert_eq!(h.shared.committable(), None);
    assert_eq!(h.worker.finalizer().in_flight(), 3);
    assert_eq!(count(&h.stats.dead_lettered), 0);

    // Acknowledged: final, with the failure in the letter.
    let dlq = Arc::new(FakeDeadLetters::default());
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let seen = shared.clone();
    *dlq.on_write.lock().expect("on_write") = Some(Box::new(move |letters| {
        assert_eq!(letters, [1]);
        let c = seen.committable();
        assert!(c.is_none_or(|c| c <= 1), "1 final before the ack: {c:?}");
    }));
    let mut h = harness(
        vec![],
        vec![rejecting_one("dead-letter")],
        Some(dlq.clone()),
        publisher,
    );
    assert!(h.run(batch(&[0, 1, 2])));
    assert_eq!(h.shared.committable(), Some(3));
    assert_eq!(*dlq.acked.lock().expect("acked"), [("s".to_string(), 1, 1)]);
    assert_eq!(count(&h.stats.dead_lettered), 1);
}

#[test]
fn fail_open_passes_the_event_on_unchanged() {
    let interceptor = FakeInterceptor::new("i", "on_failure = \"fail-open\"", |batch| match batch
        .iter()
        .any(|e| e.offset == 1)
    {
        true => Err("cannot parse".into()),
        false => Ok(batch
            .iter()
            .map(|_| {
                let replaced = Replacement {
                    timestamp: None,
                    key: None,
                    value: Some(b"changed".to_vec()),
                    headers: Vec::new(),
                };
                verdict(Action::Replace(replaced), None)
            })
            .collect()),
    });
    let got: Arc<Mutex<Vec<Event>>> = Arc::default();
    let into = got.clone();
    let sink = FakeSink::new("s", "", move |batch| {
        into.lock().expect("got").extend_from_slice(batch);
        deliver(batch)
    });
    let ilog = interceptor.log();
    let mut h = harness(vec![interceptor], vec![sink], None, Publisher::new());
    assert!(h.run(batch(&[0, 1, 2])));
    // Twice whole (attempts = 2), then one by one; 1 fails twice alone.
    assert_eq!(
        calls(&ilog),
        [
            vec![0, 1, 2],
            vec![0, 1, 2],
            vec![0],
            vec![1],
            vec![1],
            vec![2]
        ]
    );
    let got = got.lock().expect("got");
    assert_eq!(offsets(&got), [0, 1, 2]);
    assert_eq!(got[0].value.as_deref(), Some(&b"changed"[..]));
    assert_eq!(
        got[1].value.as_deref(),
        Some(&b"1"[..]),
        "passed on unchanged"
    );
    assert_eq!(count(&h.stats.failed_open), 1);
    assert_eq!(h.shared.committable(), Some(3));
}

#[test]
fn interceptor_drops_finalize_at_once_and_bad_routes_are_dead_lettered() {
    let interceptor = FakeInterceptor::new("i", "on_failure = \"dead-letter\"", |batch| {
        Ok(batch
            .iter()
            .map(|e| match e.offset {
                0 => verdict(Action::Drop, None),
                1 => verdict(Action::Keep, Some(&["nowhere"])),
                _ => verdict(Action::Keep, None),
            })
            .collect())
    });
    let dlq = Arc::new(FakeDeadLetters::default());
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let mut h = harness(
        vec![interceptor],
        vec![sink],
        Some(dlq.clone()),
        Publisher::new(),
    );
    assert!(h.run(batch(&[0])));
    assert_eq!(h.shared.committable(), Some(1), "dropped: final at once");
    assert_eq!(count(&h.stats.dropped), 1);
    assert!(h.run(batch(&[1, 2])));
    // The route names no sink: the call breaks the contract, is retried,
    // then narrowed, and only 1 is given up.
    assert_eq!(*dlq.acked.lock().expect("acked"), [("i".to_string(), 1, 2)]);
    assert_eq!(calls(&log), [vec![2]]);
    assert_eq!(h.shared.committable(), Some(3));
}

#[test]
fn an_interceptor_rejects_single_events_to_its_failure_policy() {
    let interceptor = FakeInterceptor::new("decode", "on_failure = \"dead-letter\"", |batch| {
        Ok(batch
            .iter()
            .map(|e| match e.offset {
                1 => verdict(Action::Reject("offset 1: unknown schema id 9".into()), None),
                _ => verdict(Action::Keep, None),
            })
            .collect())
    });
    let dlq = Arc::new(FakeDeadLetters::default());
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let mut h = harness(
        vec![interceptor],
        vec![sink],
        Some(dlq.clone()),
        Publisher::new(),
    );
    assert!(h.run(batch(&[0, 1, 2])));
    // One call: a rejection is an answer, not a failed call to narrow.
    assert_eq!(
        *dlq.acked.lock().expect("acked"),
        [("decode".to_string(), 1, 1)]
    );
    assert_eq!(calls(&log), [vec![0, 2]]);
    assert_eq!(h.shared.committable(), Some(3));
}

#[test]
fn an_outage_is_retried_past_the_attempts_and_never_given_up() {
    // The registry is down for 6 calls, three times `retry.attempts`.
    let mut down = 6;
    let interceptor =
        FakeInterceptor::new("decode", "on_failure = \"dead-letter\"", move |batch| {
            if down > 0 {
                down -= 1;
                return Err(Box::new(crate::flow::Unavailable("registry down".into())));
            }
            Ok(batch.iter().map(|_| verdict(Action::Keep, None)).collect())
        });
    let interceptor_log = interceptor.log();
    let dlq = Arc::new(FakeDeadLetters::default());
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let mut h = harness(
        vec![interceptor],
        vec![sink],
        Some(dlq.clone()),
        Publisher::new(),
    );
    assert!(h.run(batch(&[0, 1])));
    assert!(
        dlq.acked.lock().expect("acked").is_empty(),
        "nothing given up"
    );
    // Whole batches every time: an outage is not narrowed down to events.
    assert!(calls(&interceptor_log).iter().all(|c| c == &[0, 1]));
    assert_eq!(calls(&interceptor_log).len(), 7);
    assert_eq!(calls(&log), [vec![0, 1]]);
    assert_eq!(h.shared.committable(), Some(2));
}

#[test]
fn out_of_order_offsets_stop_the_worker_before_any_call() {
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let mut h = harness(vec![], vec![sink], None, Publisher::new());
    assert!(h.run(batch(&[5, 6])));
    assert!(!h.run(batch(&[6, 7])));
    assert_eq!(calls(&log), [vec![5, 6]]);
    assert_eq!(h.shared.committable(), Some(7));
}

mod commit_rule {
    //! Random verdict sequences through random interceptor chains and sink
    //! fan-outs. A model, kept by the fakes from what they answered and
    //! what the dead-letter topic acknowledged, says which events are
    //! final; at every call, the committed offset must not pass an event
    //! the model does not hold final, and at the end it must be exactly the
    //! contiguous watermark.

    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    /// What an interceptor does with one event.
    #[derive(Debug, Clone)]
    struct Plan {
        drop: bool,
        replace: bool,
        /// Sink indices to route to (`None`: leave the route as it is).
        route: Option<Vec<usize>>,
        /// Calls containing this event that fail before one succeeds.
        fails: u32,
    }

    #[derive(Debug, Clone)]
    struct InterceptorSpec {
        policy: &'static str,
        plans: Vec<Plan>,
    }

    #[derive(Debug, Clone)]
    struct SinkSpec {
        policy: &'static str,
        /// Per event: verdicts before `Delivered` (`true` = reject).
        refusals: Vec<Vec<bool>>,
        /// Calls (by index) that fail whole.
        failing_calls: Vec<usize>,
        /// Its delivery settings (config lines).
        delivery: &'static str,
    }

    /// Delivery settings a sink is tried with: one call at a time, several
    /// in flight in key order or none, and sink-side batching.
    const DELIVERY: [&str; 4] = [
        "",
        "max_in_flight = 4\nordering = \"key\"",
        "max_in_flight = 3\nordering = \"unordered\"",
        "batch = { max_events = 4, max_wait_ms = 1 }",
    ];

    /// What interceptor `.0` answered for the event at offset `.1`: whether
    /// it dropped it, and the route it set.
    type Answers = HashMap<(usize, i64), (bool, Option<Vec<usize>>)>;

    #[derive(Default)]
    struct Model {
        offsets: Vec<i64>,
        interceptors: Vec<String>,
        sinks: Vec<String>,
        /// `(interceptor, offset)` → (dropped, route it set).
        verdicts: Answers,
        delivered: HashSet<(usize, i64)>,
        violations: Vec<String>,
    }

    impl Model {
        fn is_final(&self, offset: i64, dead: &HashSet<(String, i64)>) -> bool {
            let mut route: Option<Vec<usize>> = None;
            for (i, name) in self.interceptors.iter().enumerate() {
                if dead.contains(&(name.clone(), offset)) {
                    return true;
                }
                if let Some((dropped, r)) = self.verdicts.get(&(i, offset)) {
                    if *dropped {
                        return true;
                    }
                    if r.is_some() {
                        route = r.clone();
                    }
                    if route.as_ref().is_some_and(Vec::is_empty) {
                        return true;
                    }
                }
            }
            let owed = route.unwrap_or_else(|| (0..self.sinks.len()).collect());
            owed.iter().all(|&s| {
                self.delivered.contains(&(s, offset))
                    || dead.contains(&(self.sinks[s].clone(), offset))
            })
        }

        /// One past the last offset of the final prefix, as the commit must be.
        fn watermark(&self, dead: &HashSet<(String, i64)>) -> Option<i64> {
            let mut w = None;
            for &o in &self.offsets {
                if !self.is_final(o, dead) {
                    break;
                }
                w = Some(o + 1);
            }
            w
        }
    }

    /// `(component, offset)` of every dead letter acknowledged so far.
    fn given_up(dlq: &FakeDeadLetters) -> HashSet<(String, i64)> {
        let acked = dlq.acked.lock().expect("acked");
        acked.iter().map(|(c, o, _)| (c.clone(), *o)).collect()
    }

    /// Checks the commit rule now.
    fn check(model: &Mutex<Model>, dlq: &FakeDeadLetters, shared: &PartitionShared, at: &str) {
        // Committable first: sinks with calls in flight run this on their
        // own threads while the worker finalizes, and the model only grows,
        // so a committable read before it can never pass it wrongly.
        let committable = shared.committable();
        let dead = given_up(dlq);
        let mut m = model.lock().expect("model");
        let watermark = m.watermark(&dead);
        if committable > watermark {
            m.violations.push(format!(
                "{at}: committable {committable:?} passes the final prefix {watermark:?}"
            ));
        }
    }

    fn plan(sinks: usize) -> impl Strategy<Value = Plan> {
        (
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.4, prop::collection::vec(0..sinks, 0..=sinks)),
            prop_oneof![6 => Just(0u32), 1 => Just(1u32), 1 => Just(3u32), 1 => Just(5u32)],
        )
            .prop_map(|(drop, replace, route, fails)| Plan {
                drop,
                replace,
                route,
                fails,
            })
    }

    fn scenario(
    ) -> impl Strategy<Value = (Vec<i64>, Vec<usize>, Vec<InterceptorSpec>, Vec<SinkSpec>)> {
        (1usize..20, 1usize..=3).prop_flat_map(|(n, sinks)| {
            let offsets = prop::collection::vec(1i64..4, n).prop_map(|steps| {
                steps
                    .iter()
                    .scan(0i64, |o, s| {
                        *o += s;
                        Some(*o)
                    })
                    .collect::<Vec<_>>()
            });
            let batches = prop::collection::vec(1usize..6, 1..6);
            let interceptors = prop::collection::vec(
                (
                    prop::sample::select(vec!["block", "dead-letter", "fail-open"]),
                    prop::collection::vec(plan(sinks), n),
                )
                    .prop_map(|(policy, plans)| InterceptorSpec { policy, plans }),
                0..=2,
            );
            let sink_specs = prop::collection::vec(
                (
                    prop::sample::select(vec!["block", "dead-letter"]),
                    prop::collection::vec(prop::collection::vec(any::<bool>(), 0..3), n),
                    prop::collection::vec(0usize..8, 0..3),
                    prop::sample::select(DELIVERY.to_vec()),
                )
                    .prop_map(|(policy, refusals, failing_calls, delivery)| {
                        SinkSpec {
                            policy,
                            refusals,
                            failing_calls,
                            delivery,
                        }
                    }),
                sinks,
            );
            (offsets, batches, interceptors, sink_specs)
        })
    }

    fn run(
        offsets: Vec<i64>,
        batch_sizes: Vec<usize>,
        interceptors: Vec<InterceptorSpec>,
        sinks: Vec<SinkSpec>,
    ) -> Result<(), TestCaseError> {
        let index: HashMap<i64, usize> = offsets.iter().enumerate().map(|(i, &o)| (o, i)).collect();
        let model = Arc::new(Mutex::new(Model {
            offsets: offsets.clone(),
            interceptors: (0..interceptors.len()).map(|i| format!("i{i}")).collect(),
            sinks: (0..sinks.len()).map(|s| format!("s{s}")).collect(),
            ..Model::default()
        }));
        let dlq = Arc::new(FakeDeadLetters::default());
        let publisher = Publisher::new();
        let shared = publisher.shared().clone();
        let sink_names: Vec<String> = (0..sinks.len()).map(|s| format!("s{s}")).collect();
        {
            let (model, dlq2, shared) = (model.clone(), dlq.clone(), shared.clone());
            let dlq_ref = Arc::downgrade(&dlq);
            *dlq2.on_write.lock().expect("on_write") = Some(Box::new(move |_| {
                if let Some(d) = dlq_ref.upgrade() {
                    check(&model, &d, &shared, "dead letter");
                }
            }));
        }
        let fakes_i: Vec<FakeInterceptor> = interceptors
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let (model, dlq, shared) = (model.clone(), dlq.clone(), shared.clone());
                let index = index.clone();
                let names = sink_names.clone();
                let mut remaining: Vec<u32> = spec.plans.iter().map(|p| p.fails).collect();
                let plans = spec.plans.clone();
                FakeInterceptor::new(
                    &format!("i{i}"),
                    &format!("on_failure = \"{}\"", spec.policy),
                    move |batch| {
                        check(&model, &dlq, &shared, "interceptor call");
                        let idx: Vec<usize> = batch.iter().map(|e| index[&e.offset]).collect();
                        if idx.iter().any(|&k| remaining[k] > 0) {
                            for &k in &idx {
                                remaining[k] = remaining[k].saturating_sub(1);
                            }
                            return Err("scripted failure".into());
                        }
                        let mut m = model.lock().expect("model");
                        Ok(batch
                            .iter()
                            .zip(&idx)
                            .map(|(e, &k)| {
                                let p = &plans[k];
                                m.verdicts.insert((i, e.offset), (p.drop, p.route.clone()));
                                let route: Option<Vec<&str>> = p
                                    .route
                                    .as_ref()
                                    .map(|r| r.iter().map(|&s| names[s].as_str()).collect());
                                let action = if p.drop {
                                    Action::Drop
                                } else if p.replace {
                                    Action::Replace(Replacement {
                                        timestamp: Some(e.offset),
                                        key: None,
                                        value: Some(b"replaced".to_vec()),
                                        headers: Vec::new(),
                                    })
                                } else {
                                    Action::Keep
                                };
                                verdict(action, route.as_deref())
                            })
                            .collect())
                    },
                )
            })
            .collect();
        let fakes_s: Vec<FakeSink> = sinks
            .iter()
            .enumerate()
            .map(|(s, spec)| {
                let (model, dlq, shared) = (model.clone(), dlq.clone(), shared.clone());
                let index = index.clone();
                let mut refusals = spec.refusals.clone();
                let failing = spec.failing_calls.clone();
                let key_order = spec.delivery.contains("\"key\"");
                let mut call = 0usize;
                // Offered and not delivered yet, per key: in key order, an
                // event may be offered only after these, or with them.
                let mut outstanding: HashMap<Vec<u8>, Vec<i64>> = HashMap::new();
                FakeSink::new(
                    &format!("s{s}"),
                    &format!("on_failure = \"{}\"\n{}", spec.policy, spec.delivery),
                    move |batch| {
                        check(&model, &dlq, &shared, "sink call");
                        let offsets: Vec<i64> = batch.iter().map(|e| e.offset).collect();
                        let mut sorted = offsets.clone();
                        sorted.sort_unstable();
                        sorted.dedup();
                        assert_eq!(sorted, offsets, "a sink got a batch out of order");
                        if key_order {
                            let dead = given_up(&dlq);
                            // Events without a key (replaced ones here) have
                            // no order to keep.
                            for e in batch.iter().filter(|e| e.key.is_some()) {
                                let key = e.key.clone().unwrap_or_default();
                                let out = outstanding.entry(key).or_default();
                                out.retain(|o| !dead.contains(&(format!("s{s}"), *o)));
                                for &o in out.iter().filter(|&&o| o < e.offset) {
                                    if !offsets.contains(&o) {
                                        model.lock().expect("model").violations.push(format!(
                                            "sink s{s}: event {} overtook {o} of its key",
                                            e.offset
                                        ));
                                    }
                                }
                                if !out.contains(&e.offset) {
                                    out.push(e.offset);
                                }
                            }
                        }
                        call += 1;
                        if failing.contains(&(call - 1)) {
                            return Err("scripted call failure".into());
                        }
                        let mut m = model.lock().expect("model");
                        Ok(batch
                            .iter()
                            .map(|e| {
                                let k = index[&e.offset];
                                if refusals[k].is_empty() {
                                    m.delivered.insert((s, e.offset));
                                    if let Some(out) =
                                        outstanding.get_mut(&e.key.clone().unwrap_or_default())
                                    {
                                        out.retain(|&o| o != e.offset);
                                    }
                                    return SinkVerdict::Delivered;
                                }
                                match refusals[k].remove(0) {
                                    true => SinkVerdict::Reject("scripted".into()),
                                    false => SinkVerdict::Retry("scripted".into()),
                                }
                            })
                            .collect())
                    },
                )
            })
            .collect();
        let mut h = harness(fakes_i, fakes_s, Some(dlq.clone()), publisher);
        let all = events(&offsets);
        let mut rest = &all[..];
        let mut sizes = batch_sizes.iter().cycle();
        while !rest.is_empty() {
            let take = (*sizes.next().unwrap_or(&1)).min(rest.len());
            let (batch, tail) = rest.split_at(take);
            rest = tail;
            let batch = crate::contract::Batch::from_events(batch).expect("small");
            // Batches are handed in without waiting for the sinks, so that
            // sinks with calls in flight have several batches at once.
            prop_assert!(h.worker.process(batch), "the worker stopped");
            check(&model, &dlq, &shared, "after a batch");
        }
        prop_assert!(h.worker.settle(), "the worker stopped");
        let dead = given_up(&dlq);
        let last = offsets.last().copied().unwrap_or(0);
        let m = model.lock().expect("model");
        prop_assert!(m.violations.is_empty(), "{:?}", m.violations);
        for &o in &offsets {
            prop_assert!(m.is_final(o, &dead), "event {o} never became final");
        }
        prop_assert_eq!(shared.committable(), Some(last + 1));
        prop_assert_eq!(h.worker.finalizer().in_flight(), 0);
        prop_assert_eq!(count(&h.stats.finalized), offsets.len() as u64);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn the_committed_offset_is_always_the_contiguous_watermark(
            (offsets, batches, interceptors, sinks) in scenario(),
        ) {
            run(offsets, batches, interceptors, sinks)?;
        }
    }
}

/// A member cut off from its group starts no sink call while its fence is
/// closed, holds what it owes, and delivers it once contact returns; the
/// offset is not published past what was delivered.
#[test]
fn a_closed_fence_starts_no_call_until_contact_returns() {
    use crate::kafka::fence::{Contact, Fence, Watch};
    use std::time::{Duration, Instant};
    let limit = Duration::from_millis(300);
    let fence = Arc::new(Fence::new(limit));
    let mut watch = Watch::new(limit);
    let contact = |rebalances| Contact {
        idle: Some(Duration::ZERO),
        steady: true,
        rebalances,
    };
    watch.observe(&fence, contact(1), Instant::now());
    let sink = FakeSink::new("s", "", deliver);
    let log = sink.log();
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let stages = Stages {
        interceptors: Vec::<FakeInterceptor>::new(),
        sinks: vec![sink],
        dead_letter: None,
        rates: Vec::new(),
        fence: Some(fence.clone()),
    };
    let source = Source {
        topic: "t".into(),
        partition: 0,
    };
    let stats = Arc::new(PipelineStats::default());
    let mut worker = Worker::new(&pipeline(), stages, source, publisher, stats);
    assert!(worker.process(batch(&[0, 1])) && worker.settle());
    assert_eq!(calls(&log), [vec![0, 1]]);
    // No contact for longer than the limit: the fence closes by itself.
    std::thread::sleep(limit + Duration::from_millis(50));
    assert!(worker.process(batch(&[2, 3])));
    std::thread::sleep(Duration::from_millis(150));
    assert!(worker.process(batch(&[4])));
    assert_eq!(calls(&log), [vec![0, 1]], "a call started while fenced");
    assert_eq!(shared.committable(), Some(2));
    // Contact returns and holds over two readings with no rebalance.
    let now = Instant::now();
    watch.observe(&fence, contact(1), now);
    assert!(!fence.open(now), "reopened on the first reading");
    let later = now + Duration::from_millis(400);
    watch.observe(&fence, contact(1), later);
    assert!(fence.open(Instant::now()));
    assert!(worker.settle());
    assert_eq!(calls(&log).concat(), [0, 1, 2, 3, 4]);
    assert_eq!(shared.committable(), Some(5));
}

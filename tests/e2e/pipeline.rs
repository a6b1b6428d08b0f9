//! 100,000 events across 4 partitions through the filter interceptor and two
//! file sinks, against the embedded mock cluster and a real tansu broker
//! process: every kept event reaches each sink exactly once, in partition
//! order, and the committed offsets equal the end offsets.

use crate::support::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const EVENTS: usize = 100_000;
const PARTITIONS: i32 = 4;

fn run_100k(broker: Broker, label: &str) {
    let work = Workdir::new();
    let topic = "e2e-events";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, topic, PARTITIONS, EVENTS, |_| false);

    let config = work.config(
        &bootstrap,
        topic,
        "e2e-group",
        format!(
            "{}{}{}",
            drop_debug(),
            file_sink("a", "file_sink", ", sync = false"),
            file_sink("b", "file_sink", ", sync = false"),
        ),
    );

    let started = Instant::now();
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let committed = wait_committed(
        &mut flumen,
        &bootstrap,
        "e2e-group",
        topic,
        PARTITIONS,
        Duration::from_secs(240),
        |c| c == &produced.end,
    );
    let elapsed = started.elapsed();
    // Read-ahead is capped at 1,000 events per partition: the consumer must
    // have paused partitions (and resumed them) to get through 25,000 each.
    let log = flumen.log_text();
    let pauses = log.matches("partition paused").count();
    let resumes = log.matches("partition resumed").count();
    assert!(
        pauses > 0 && resumes > 0,
        "{label}: no pause/resume: {pauses}/{resumes}"
    );
    let status = flumen.terminate();
    assert!(status.success(), "flumen exit status {status}");

    let kept = produced.kept();
    let expected: BTreeSet<(i32, i64)> = kept.iter().copied().collect();
    for sink in ["a", "b"] {
        let lines = read_sink(&work.out, sink);
        let distinct: BTreeSet<(i32, i64)> = lines.iter().copied().collect();
        assert_eq!(
            lines.len(),
            distinct.len(),
            "{label}: sink {sink} has duplicates"
        );
        assert_eq!(
            distinct, expected,
            "{label}: sink {sink} output differs from the kept events"
        );
        assert_in_order(&lines, sink);
    }
    eprintln!(
        "{label}: produced {EVENTS}, kept {} (dropped {}), each sink wrote {} exactly once, \
         committed {committed:?} = end offsets, in {elapsed:.1?} (incl. group join); \
         partitions paused {pauses} times",
        kept.len(),
        EVENTS - kept.len(),
        kept.len()
    );
}

#[test]
fn hundred_thousand_events_mock_cluster() {
    run_100k(Broker::mock(), "mock cluster");
}

#[test]
fn hundred_thousand_events_tansu() {
    run_100k(Broker::tansu(), "tansu");
}

//! A sink that rejects an event blocks its partition there: nothing past it
//! is committed, other partitions go on. After a restart with the sink fixed,
//! the host redelivers from the blocked offset: at-least-once, by counting.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

const EVENTS: usize = 4_000;
const PARTITIONS: i32 = 4;
/// The event index that carries the poison; it lands in partition 1.
const POISON: usize = 2_001;

fn reject_blocks_then_restart_redelivers(broker: Broker, label: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let topic = "e2e-reject";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, topic, PARTITIONS, EVENTS, |i| i == POISON);
    let (poison_partition, poison_offset) = produced.index[&POISON];

    let write_config = |reject: &str| {
        let config = dir.path().join("flumen.toml");
        PipelineToml {
            bootstrap: bootstrap.clone(),
            topic: topic.into(),
            group: "reject-group".into(),
            out: out.clone(),
            components: format!(
                "{}{}",
                file_sink("all", "file_sink", ", sync = false"),
                file_sink("picky", "reject_sink", reject),
            ),
        }
        .write(&config);
        config
    };

    // Run 1: the picky sink rejects the poison event.
    let config = write_config(", reject = \"POISON\"");
    let mut flumen = Flumen::run(&config, &dir.path().join("run1.log"));
    let mut expected_blocked = produced.end.clone();
    expected_blocked.insert(poison_partition, poison_offset);
    wait_committed(
        &mut flumen,
        &bootstrap,
        "reject-group",
        topic,
        PARTITIONS,
        Duration::from_secs(120),
        |c| c == &expected_blocked,
    );
    // Stay blocked: a later success must never move the commit past it.
    std::thread::sleep(Duration::from_secs(2));
    let status = flumen.terminate();
    assert!(status.success(), "run 1 exit status {status}");
    let after_run1 = committed(&bootstrap, "reject-group", topic, PARTITIONS);
    assert_eq!(
        after_run1, expected_blocked,
        "{label}: committed past the rejected event"
    );
    let picky1 = read_sink(&out, "picky");
    assert!(
        !picky1.contains(&(poison_partition, poison_offset)),
        "the rejected event was written"
    );
    let all1 = read_sink(&out, "all").len();

    // Run 2: the sink is fixed; the host resumes from the blocked offset.
    let config = write_config("");
    let mut flumen = Flumen::run(&config, &dir.path().join("run2.log"));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "reject-group",
        topic,
        PARTITIONS,
        Duration::from_secs(120),
        |c| c == &produced.end,
    );
    let status = flumen.terminate();
    assert!(status.success(), "run 2 exit status {status}");

    // Count: every event reached both sinks at least once; only the blocked
    // partition's events from the rejected offset on may appear twice.
    for sink in ["all", "picky"] {
        let lines = read_sink(&out, sink);
        let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        for l in &lines {
            *counts.entry(*l).or_default() += 1;
        }
        for key in produced.events.keys() {
            assert!(
                counts.contains_key(key),
                "{label}: {sink} lost event {key:?}"
            );
        }
        let dups: Vec<_> = counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(k, _)| *k)
            .collect();
        assert!(
            dups.iter()
                .all(|&(p, o)| p == poison_partition && o >= poison_offset),
            "{label}: {sink} has unexpected duplicates {dups:?}"
        );
        eprintln!(
            "{label}: sink {sink}: {} lines for {} events, {} redelivered after the restart",
            lines.len(),
            EVENTS,
            dups.len()
        );
    }
    eprintln!(
        "{label}: run 1 committed {after_run1:?} (blocked at partition {poison_partition} offset \
         {poison_offset}); `all` wrote {all1} lines in run 1; run 2 committed {:?}",
        produced.end
    );
}

#[test]
fn rejected_event_blocks_commit_until_restart_mock_cluster() {
    reject_blocks_then_restart_redelivers(Broker::mock(), "mock cluster");
}

#[test]
fn rejected_event_blocks_commit_until_restart_tansu() {
    reject_blocks_then_restart_redelivers(Broker::tansu(), "tansu");
}

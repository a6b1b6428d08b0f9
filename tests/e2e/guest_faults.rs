//! A sink that traps mid-stream — by panicking, by reading outside its
//! memory, by executing `unreachable` — fails the call; the host retries the
//! batch on a fresh instance, and nothing is lost or written twice. And
//! instances are recycled after `limits.max_calls_per_instance` calls.

use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;

const TOPIC: &str = "e2e-trap";
const GROUP: &str = "trap-group";
const PARTITIONS: i32 = 2;
const EVENTS: usize = 2_000;

#[test]
fn panicking_sink_is_replaced_and_loses_nothing() {
    trapping_sink_is_replaced("panic", "unreachable");
}

#[test]
fn out_of_bounds_sink_is_replaced_and_loses_nothing() {
    trapping_sink_is_replaced("oob", "out of bounds memory access");
}

#[test]
fn unreachable_sink_is_replaced_and_loses_nothing() {
    trapping_sink_is_replaced("unreachable", "unreachable");
}

fn trapping_sink_is_replaced(kind: &str, trap_message: &str) {
    let broker = Broker::mock();
    broker.create_topic(TOPIC, PARTITIONS);
    let bootstrap = broker.bootstrap();
    // Event 1001 (partition 1) makes the sink trap once.
    let produced = produce(&bootstrap, TOPIC, PARTITIONS, EVENTS, |i| i == 1001);
    let (trap_partition, trap_offset) = produced.index[&1001];

    let work = Workdir::new();
    let config = work.config(
        &bootstrap,
        TOPIC,
        GROUP,
        file_sink(
            "s",
            "reject_sink",
            &format!(", trap = \"POISON\", trap_kind = \"{kind}\""),
        ),
    );
    let log = run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        GROUP,
        TOPIC,
        &produced.end,
        Duration::from_secs(60),
    );

    // The panic's message goes to the guest's stderr, which the sandbox does
    // not forward yet; the host reports the trap itself.
    assert!(
        log.contains("trapped") && log.contains(trap_message),
        "{log}"
    );
    // One instance per partition at start, plus the one replacing the
    // trapped instance (not counting the start-up check's, partition -1).
    let started = log
        .lines()
        .filter(|l| l.contains("instance started") && !l.contains("partition=-1"))
        .count();
    assert_eq!(
        started,
        PARTITIONS as usize + 1,
        "instances started:\n{log}"
    );
    assert!(work.out.join(format!(".trapped-{trap_partition}")).exists());

    let lines = read_sink(&work.out, "s");
    let distinct: BTreeSet<(i32, i64)> = lines.iter().copied().collect();
    assert_eq!(lines.len(), distinct.len(), "duplicates after the trap");
    let all: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(distinct, all, "events lost after the trap");
    assert_in_order(&lines, "s");
    eprintln!(
        "trap ({kind}): sink trapped at partition {trap_partition} offset {trap_offset}; {started} instances \
         started; {} of {EVENTS} events written exactly once; committed = end offsets",
        lines.len()
    );
}

#[test]
fn instances_are_recycled_after_max_calls() {
    let broker = Broker::mock();
    broker.create_topic(TOPIC, 1);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, TOPIC, 1, EVENTS, |_| false);
    let work = Workdir::new();
    let sink = format!(
        "{}limits = {{ max_calls_per_instance = 2 }}\n",
        file_sink("s", "reject_sink", "")
    );
    let config = work.config(&bootstrap, TOPIC, GROUP, sink);
    let log = run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        GROUP,
        TOPIC,
        &produced.end,
        Duration::from_secs(60),
    );
    let started = log
        .lines()
        .filter(|l| l.contains("instance started") && !l.contains("partition=-1"))
        .count();
    let lines = read_sink(&work.out, "s");
    assert_eq!(lines.len(), EVENTS, "every event exactly once");
    // EVENTS in batches of at most 500: at least EVENTS/500 calls, so at
    // least half as many instances (the last may not have been replaced).
    let calls_min = EVENTS / 500;
    assert!(
        started >= calls_min / 2,
        "{started} instances for at least {calls_min} calls:\n{log}"
    );
    eprintln!("recycling: {started} instances served {EVENTS} events (2 calls each)");
}

//! A sink that traps (panics) mid-stream: the call fails, the host retries
//! the batch on a fresh instance, and nothing is lost or written twice.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const TOPIC: &str = "e2e-trap";
const GROUP: &str = "trap-group";
const PARTITIONS: i32 = 2;
const EVENTS: usize = 2_000;

#[test]
fn trapping_sink_is_replaced_and_loses_nothing() {
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
        file_sink("s", "reject_sink", ", trap = \"POISON\""),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    wait_committed(
        &mut flumen,
        &bootstrap,
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &produced.end,
    );
    let log = flumen.log_text();
    let status = flumen.terminate();
    assert!(status.success(), "exit status {status}");

    // The panic's message goes to the guest's stderr, which the sandbox does
    // not forward yet; the host reports the trap itself.
    assert!(
        log.contains("trapped") && log.contains("unreachable"),
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
        "trap: sink trapped at partition {trap_partition} offset {trap_offset}; {started} instances \
         started; {} of {EVENTS} events written exactly once; committed = end offsets",
        lines.len()
    );
}

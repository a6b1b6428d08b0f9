//! The give-up policies not covered by the fault suite's table (whose every
//! row must lose nothing): an interceptor under `dead-letter`, and a sink
//! under `skip`, which deliberately finalizes events it never delivered.

use crate::support::*;
use rdkafka::message::Message;
use std::collections::BTreeSet;
use std::time::Duration;

const TOPIC: &str = "e2e-policies";
const DLQ: &str = "e2e-policies-dlq";
const GROUP: &str = "policies-group";
const PARTITIONS: i32 = 4;
const EVENTS: usize = 8_000;

fn mark(i: usize) -> Option<&'static str> {
    if i % 101 == 3 {
        Some("FAILME")
    } else if i % 103 == 7 {
        Some("POISON")
    } else {
        None
    }
}

#[test]
fn interceptor_dead_letters_and_sink_skips() {
    let broker = Broker::mock();
    broker.create_topic(TOPIC, PARTITIONS);
    broker.create_topic(DLQ, 1);
    let bootstrap = broker.bootstrap();
    let produced = produce_marked(&bootstrap, TOPIC, PARTITIONS, EVENTS, mark);
    let marked = |m: &str| -> BTreeSet<(i32, i64)> {
        (0..EVENTS)
            .filter(|&i| mark(i) == Some(m))
            .map(|i| produced.index[&i])
            .collect()
    };
    let (failing, poison) = (marked("FAILME"), marked("POISON"));

    let work = Workdir::new();
    let components = format!(
        r#"
[pipeline.dead_letter]
topic = "{DLQ}"

[kafka.producer_options]
"compression.type" = "zstd"

[[pipeline.interceptor]]
name = "router"
component = "{}"
config = {{ fail = "FAILME" }}
on_failure = "dead-letter"
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 50 }}
{}on_failure = "skip"
"#,
        guest("router").display(),
        file_sink("s", "reject_sink", ", reject = \"POISON\"")
    );
    let config = work.config(&bootstrap, TOPIC, GROUP, components);
    let log = run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        GROUP,
        TOPIC,
        &produced.end,
        Duration::from_secs(90),
    );

    // The sink wrote everything but the two marked sets, each once.
    let lines = read_sink(&work.out, "s");
    let written: BTreeSet<(i32, i64)> = lines.iter().copied().collect();
    assert_eq!(lines.len(), written.len(), "duplicates");
    let expected: BTreeSet<(i32, i64)> = produced
        .events
        .keys()
        .filter(|k| !failing.contains(k) && !poison.contains(k))
        .copied()
        .collect();
    assert_eq!(written, expected);

    // The interceptor's failures are in the dead-letter topic, exactly.
    let dead = read_topic(&bootstrap, DLQ, 1, failing.len(), Duration::from_secs(20));
    let dead_pos: BTreeSet<(i32, i64)> = dead
        .iter()
        .map(|m| {
            assert_eq!(header(m, "flumen.component"), "router");
            assert!(header(m, "flumen.error").contains("matches `fail`"));
            assert_eq!(header(m, "flumen.attempts"), "2");
            assert!(m.payload().is_some_and(|v| v.ends_with(b" FAILME")));
            (
                header(m, "flumen.original.partition").parse().unwrap_or(-1),
                header(m, "flumen.original.offset").parse().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        dead.len(),
        failing.len(),
        "one dead letter per failed event"
    );
    assert_eq!(dead_pos, failing);

    // The sink's rejections were skipped: counted and logged, one by one.
    let skipped = log.matches("event skipped (on_failure = skip)").count();
    assert_eq!(skipped, poison.len(), "every rejected event skipped once");
    eprintln!(
        "policies: {} events; interceptor dead-lettered {} (after narrowing its failing batches \
         down), sink skipped {}; the sink wrote the other {} exactly once; committed = end",
        EVENTS,
        failing.len(),
        poison.len(),
        written.len()
    );
}

//! Interceptor verdicts beyond keep/drop, end to end: routing to named sinks,
//! routing to no sink, replacing an event, tombstones and keyless events
//! passing untouched, and a route to an unknown sink blocking its partition.

use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;

const TOPIC: &str = "e2e-routing";
const GROUP: &str = "routing-group";
const PARTITIONS: i32 = 2;
const EVENTS: usize = 1_000;

/// What the test's event `i` is: routed to `a` (half of those naming it
/// twice), to `b`, to no sink,
/// replaced (to both sinks), or plain (to both sinks; every 50th a tombstone
/// without key).
fn record(i: usize) -> Record {
    let (route, value): (Option<&str>, Option<String>) = match i % 5 {
        0 if i.is_multiple_of(10) => (Some("a"), Some(format!("seq={i}"))),
        // The same sink named twice: still delivered (and finalized) once.
        0 => (Some("a,a"), Some(format!("seq={i}"))),
        1 => (Some("b"), Some(format!("seq={i}"))),
        2 => (Some(""), Some(format!("seq={i}"))),
        3 => (None, Some(format!("upper:seq={i}"))),
        _ if i % 50 == 4 => (None, None),
        _ => (None, Some(format!("seq={i}"))),
    };
    Record {
        partition: (i % PARTITIONS as usize) as i32,
        key: value.as_ref().map(|_| format!("k{i}").into_bytes()),
        value: value.map(String::into_bytes),
        headers: route
            .map(|r| vec![("route".to_owned(), r.as_bytes().to_vec())])
            .unwrap_or_default(),
    }
}

#[test]
fn routes_replacements_and_unknown_sinks() {
    let broker = Broker::mock();
    broker.create_topic(TOPIC, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let records: Vec<Record> = (0..EVENTS).map(record).collect();
    let acked = produce_records(&bootstrap, TOPIC, &records);

    let work = Workdir::new();
    let config = work.config(
        &bootstrap,
        TOPIC,
        GROUP,
        format!(
            "\n[[pipeline.interceptor]]\nname = \"router\"\ncomponent = \"{}\"\n{}{}",
            guest("router").display(),
            file_sink("a", "file_sink", ", sync = false"),
            file_sink("b", "file_sink", ", sync = false"),
        ),
    );

    let mut end = std::collections::BTreeMap::new();
    for &(p, o) in &acked {
        let e = end.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    wait_committed(
        &mut flumen,
        &bootstrap,
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &end,
    );

    let expect = |sink_gets: &dyn Fn(usize) -> bool| -> BTreeSet<(i32, i64)> {
        (0..EVENTS)
            .filter(|&i| sink_gets(i))
            .map(|i| acked[i])
            .collect()
    };
    let to_a = expect(&|i| matches!(i % 5, 0 | 3 | 4));
    let to_b = expect(&|i| matches!(i % 5, 1 | 3 | 4));
    for (sink, expected) in [("a", &to_a), ("b", &to_b)] {
        let lines = read_sink_json(&work.out, sink);
        let got: Vec<(i32, i64)> = lines
            .iter()
            .map(|v| {
                (
                    v["partition"].as_i64().unwrap_or(-1) as i32,
                    v["offset"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let distinct: BTreeSet<_> = got.iter().copied().collect();
        assert_eq!(got.len(), distinct.len(), "sink {sink}: duplicates");
        assert_eq!(&distinct, expected, "sink {sink}: wrong events");
        assert_in_order(&got, sink);
        for v in &lines {
            let offset = (
                v["partition"].as_i64().unwrap_or(-1) as i32,
                v["offset"].as_i64().unwrap_or(-1),
            );
            let i = acked
                .iter()
                .position(|a| *a == offset)
                .expect("known offset");
            match i % 5 {
                3 => {
                    assert_eq!(v["value"], format!("UPPER:SEQ={i}"), "replaced value");
                    assert!(
                        v["headers"].as_array().is_some_and(|h| h
                            .iter()
                            .any(|h| h["name"] == "replaced" && h["value"] == "yes")),
                        "replacement headers: {v}"
                    );
                }
                _ if i % 50 == 4 => {
                    assert!(v["value"].is_null() && v["key"].is_null(), "tombstone: {v}");
                }
                _ => assert_eq!(v["value"], format!("seq={i}")),
            }
        }
    }

    // A route to a sink the pipeline does not have breaks the contract: the
    // partition blocks there, the others are unaffected.
    let bad = produce_records(
        &bootstrap,
        TOPIC,
        &[Record {
            partition: 0,
            key: None,
            value: Some(b"lost?".to_vec()),
            headers: vec![("route".into(), b"nope".to_vec())],
        }],
    )[0];
    let good = produce_records(
        &bootstrap,
        TOPIC,
        &[record(5)].map(|mut r| {
            r.partition = 1;
            r
        }),
    )[0];
    let mut expected = end.clone();
    expected.insert(bad.0, bad.1);
    expected.insert(good.0, good.1 + 1);
    wait_committed(
        &mut flumen,
        &bootstrap,
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &expected,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(committed(&bootstrap, GROUP, TOPIC, PARTITIONS), expected);
    let log = flumen.log_text();
    assert!(
        log.contains("routed an event to `nope`, which is not a sink of this pipeline"),
        "{log}"
    );
    let status = flumen.terminate();
    assert!(status.success(), "exit status {status}");
    eprintln!(
        "routing: {EVENTS} events; sink a got {} and sink b {} exactly as routed; {} routed to no \
         sink; unknown route blocked partition {} at offset {}",
        to_a.len(),
        to_b.len(),
        EVENTS / 5,
        bad.0,
        bad.1
    );
}

//! The Kafka sink guest in a pipeline, writing through the host's producer
//! to another topic of the same cluster (librdkafka's mock cluster, so that
//! produce requests can be made to fail).
//!
//! The claim under test: an event's offset is committed only after the
//! broker acknowledged its copy. While every produce request fails, nothing
//! is committed; once they pass again, every event is on the target topic
//! (at least once) in its source partition, and the offsets are committed.

use crate::support::*;
use rdkafka::message::{Headers, Message};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;
const EVENTS: usize = 3_000;

fn kafka_sink(target: &str, grant: &str) -> String {
    format!(
        r#"
[[pipeline.sink]]
name = "copy"
component = "{}"
config = {{ topic = "{target}", partition = "same" }}
kafka_produce = ["{grant}"]
# A short deadline, so that unacknowledged records come back as retries
# within the test's patience.
limits = {{ call_timeout_ms = 2000 }}

# The copies are written compressed; the test's reader decompresses them.
[kafka.producer_options]
"compression.type" = "lz4"
"#,
        guest("kafka_sink").display()
    )
}

#[test]
fn commits_only_acknowledged_copies_and_loses_none_through_a_produce_outage() {
    let broker = Broker::mock();
    let (source, target) = ("ks-in", "ks-out");
    broker.create_topic(source, PARTITIONS);
    broker.create_topic(target, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, source, PARTITIONS, EVENTS, |_| false);

    // Every produce request fails (a retriable error, as when the target's
    // replicas are down) until the errors are cleared below.
    let mock = broker.mock_cluster();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 1_000_000],
    );

    let work = Workdir::new();
    let admin = free_port();
    let config = work.config(
        &bootstrap,
        source,
        "ks-group",
        format!(
            "{}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            kafka_sink(target, target)
        ),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    // The sink's records time out at its call deadline and come back as
    // retries; give it a few rounds of that.
    while flumen.log_text().matches("kind=\"transient\"").count() < 3 {
        assert!(flumen.alive(), "flumen exited:\n{}", flumen.log_text());
        assert!(
            Instant::now() < deadline,
            "no produce failure reported:\n{}",
            tail(&flumen.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let during = committed(&bootstrap, "ks-group", source, PARTITIONS);
    assert!(
        during.values().all(|&o| o <= 0),
        "committed while no copy was acknowledged: {during:?}"
    );

    mock.clear_request_errors(RDKafkaApiKey::Produce);
    wait_committed(
        &mut flumen,
        &bootstrap,
        "ks-group",
        source,
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &produced.end,
    );
    let (status, metrics) = http(admin, "GET", "/metrics");
    assert_eq!(status, 200);
    let log = flumen.log_text();
    assert!(flumen.terminate().success(), "{}", tail(&log, 40));
    let produced_records = |outcome: &str| {
        metric(
            &metrics,
            "flumen_kafka_produced_records_total",
            &[("component", "copy"), ("outcome", outcome)],
        )
        .unwrap_or_else(|| panic!("no {outcome} count in:\n{metrics}"))
    };
    let (acked, transient) = (produced_records("acked"), produced_records("transient"));
    assert!(transient >= 1.0, "the outage was not counted: {transient}");

    // Every event's copy, identified by its value, in its source partition
    // with its key and headers. Copies sent again after a timeout may land
    // twice (at-least-once), never zero times.
    let copies = read_topic(
        &bootstrap,
        target,
        PARTITIONS,
        EVENTS,
        Duration::from_secs(30),
    );
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for m in &copies {
        let text = String::from_utf8_lossy(m.payload().expect("a value"));
        let i: usize = text
            .strip_prefix("seq=")
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected value {text:?}"));
        assert_eq!(
            m.partition(),
            produced.index[&i].0,
            "event {i} copied to another partition"
        );
        let level = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "level"));
        assert!(level.is_some(), "event {i} lost its headers");
        *seen.entry(i).or_default() += 1;
    }
    let missing: Vec<usize> = (0..EVENTS).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // Every acknowledged record is on the topic; a record given up as
    // transient may also have landed.
    assert!(
        acked >= EVENTS as f64 && acked <= copies.len() as f64,
        "{acked} acknowledged, {} copies",
        copies.len()
    );
    let twice = seen.values().filter(|&&n| n > 1).count();
    println!(
        "{EVENTS} events: {} copies on `{target}`, {twice} written more than once; \
         {acked} records acknowledged, {transient} given up as transient during the outage",
        copies.len()
    );
}

#[test]
fn refuses_to_start_when_a_granted_topic_does_not_exist() {
    let broker = Broker::mock();
    broker.create_topic("ks-src", 1);
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let config = work.config(
        &bootstrap,
        "ks-src",
        "ks-missing",
        kafka_sink("no-such-topic", "no-such-topic"),
    );
    let (ok, _, stderr) = flumen_in(
        &work.path(""),
        &["run", "--config", &config.display().to_string()],
        &[],
    );
    assert!(!ok, "started without the topic:\n{stderr}");
    assert!(
        stderr.contains("component `copy`: kafka_produce: topic `no-such-topic` does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_reload_granting_a_missing_topic_is_rejected_and_the_running_sink_goes_on() {
    let broker = Broker::mock();
    let (source, target) = ("ks-reload-in", "ks-reload-out");
    broker.create_topic(source, 1);
    broker.create_topic(target, 1);
    let bootstrap = broker.bootstrap();
    let mut produced = produce(&bootstrap, source, 1, 100, |_| false);
    let work = Workdir::new();
    let config = work.config(&bootstrap, source, "ks-reload", kafka_sink(target, target));
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let committed_to = |flumen: &mut Flumen, end: &BTreeMap<i32, i64>| {
        wait_committed(
            flumen,
            &bootstrap,
            "ks-reload",
            source,
            1,
            Duration::from_secs(60),
            |c| c == end,
        )
    };
    committed_to(&mut flumen, &produced.end);

    // The config file changes (flumen watches it): the sink is to write to
    // a topic that does not exist.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace(target, "ks-reload-missing")).expect("config");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !flumen.log_text().contains("reload REJECTED") {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = flumen.log_text();
    assert!(
        log.contains("kafka_produce: topic `ks-reload-missing` does not exist"),
        "{}",
        tail(&log, 30)
    );

    // The running version still writes to the old topic.
    produced.merge(produce(&bootstrap, source, 1, 50, |_| false));
    committed_to(&mut flumen, &produced.end);
    assert!(flumen.terminate().success());
    let copies = read_topic(&bootstrap, target, 1, 150, Duration::from_secs(20));
    assert_eq!(
        copies.len(),
        150,
        "every event copied once to the old topic"
    );
}

//! The s3 sink guest against a real S3 API (SeaweedFS, signatures
//! checked): every event lands in exactly one object, named by its offsets,
//! in each format; large objects go up in parts; wrong credentials and a
//! missing bucket stop the start with the cause named; a store that is down
//! is waited for, losing nothing. `s3_exactly_once` holds the
//! exactly-once proofs.

use crate::support::*;
use std::time::Duration;

#[test]
fn stores_every_event_once_in_objects_named_by_offset() {
    let store = SeaweedFs::start();
    store.create_bucket("events");
    store.create_bucket("large");
    store.create_bucket("columns");
    let broker = Broker::tansu();
    let topic = "e2e-s3";
    broker.create_topic(topic, 2);
    let bootstrap = broker.bootstrap();
    // 2 partitions of 4,000 events of 1000 bytes: 4 MB each.
    let acked = produce_records(&bootstrap, topic, &records(8_000, 2, 1_000));
    let work = Workdir::new();
    let sinks = [
        // Objects of 700 events, gzip, under a date folder.
        s3_sink(
            &store,
            "events",
            r#", key = "raw/%{topic}/dt=%Y-%m-%d/%{partition}/%{start_offset}-%{end_offset}.jsonl.gz", compression = "gzip""#,
            "batch = { max_events = 700, max_wait_ms = 500 }",
        ),
        // Few, large objects, zstd.
        s3_sink(
            &store,
            "large",
            r#", compression = "zstd""#,
            "batch = { max_events = 100000, max_bytes = 33554432, max_wait_ms = 3000 }",
        )
        .replace("name = \"s3\"", "name = \"s3-zstd\""),
        // Parquet, snappy.
        s3_sink(
            &store,
            "columns",
            r#", format = "parquet""#,
            "batch = { max_events = 1500, max_wait_ms = 500 }",
        )
        .replace("name = \"s3\"", "name = \"s3-parquet\""),
    ]
    .concat();
    let config = work.config(&bootstrap, topic, "s3-group", sinks);
    let log = run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        "s3-group",
        topic,
        &end_offsets(acked.iter().copied()),
        Duration::from_secs(120),
    );
    for bucket in ["events", "large", "columns"] {
        let counts = bucket_counts(&store, bucket);
        let (lost, dup) = lost_and_duplicated(&acked, &counts);
        assert_eq!(
            (lost, dup, counts.len()),
            (0, 0, acked.len()),
            "bucket {bucket}; log:\n{}",
            tail(&log, 30)
        );
    }
    // The values arrived whole, in each format.
    let sample = |bucket: &str| {
        let (key, body) = store.objects(bucket).into_iter().next().expect("an object");
        object_lines(&key, &body)[0]["value"].clone()
    };
    for bucket in ["events", "large", "columns"] {
        let v = sample(bucket);
        assert!(
            v.as_str()
                .is_some_and(|v| v.starts_with("{\"i\":") && v.len() == 1_000),
            "{bucket}: {v}"
        );
    }
    let keys: Vec<String> = store
        .objects("events")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.len() >= 12, "objects of at most 700 events: {keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("raw/{topic}/dt=20")) && k.ends_with(".jsonl.gz")),
        "{keys:?}"
    );
}

#[test]
fn uploads_large_objects_in_parts() {
    let store = SeaweedFs::start();
    store.create_bucket("parts");
    let broker = Broker::tansu();
    let topic = "e2e-s3-parts";
    broker.create_topic(topic, 1);
    let bootstrap = broker.bootstrap();
    // 12 MB in one partition; objects of up to 12 MB go up in 5 MiB parts.
    let acked = produce_records(&bootstrap, topic, &records(12_000, 1, 1_000));
    let work = Workdir::new();
    let sink = s3_sink(
        &store,
        "parts",
        ", multipart_bytes = 5242880, part_bytes = 5242880",
        "batch = { max_events = 100000, max_bytes = 12000000, max_wait_ms = 3000 }",
    );
    let config = work.config(&bootstrap, topic, "s3-parts", sink);
    let log = run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        "s3-parts",
        topic,
        &end_offsets(acked.iter().copied()),
        Duration::from_secs(120),
    );
    let objects = store.objects("parts");
    let counts = bucket_counts(&store, "parts");
    assert_eq!(
        lost_and_duplicated(&acked, &counts),
        (0, 0),
        "log:\n{}",
        tail(&log, 30)
    );
    let largest = objects.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    assert!(
        largest > 5 << 20,
        "an object above multipart_bytes (largest {largest} bytes): {:?}",
        objects
            .iter()
            .map(|(k, b)| (k, b.len()))
            .collect::<Vec<_>>()
    );
}

/// The store goes away mid-run (SIGKILL) and comes back 4 seconds later:
/// the sink's calls fail as retryable, nothing is committed past what is
/// stored, and once it is back every event is there once.
#[test]
fn waits_out_a_store_outage() {
    let mut store = SeaweedFs::start();
    store.create_bucket("outage");
    let broker = Broker::mock();
    let topic = "e2e-s3-outage";
    broker.create_topic(topic, 2);
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let sink = s3_sink(
        &store,
        "outage",
        ", timeout_ms = 2000",
        "batch = { max_events = 200, max_wait_ms = 100 }",
    );
    let config = work.config(&bootstrap, topic, "s3-outage", sink);
    let mut acked = produce_records(&bootstrap, topic, &records(2_000, 2, 300));
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let first = end_offsets(acked.iter().copied());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "s3-outage",
        topic,
        2,
        Duration::from_secs(60),
        |c| *c == first,
    );
    store.kill();
    acked.extend(produce_records(&bootstrap, topic, &records(2_000, 2, 300)));
    std::thread::sleep(Duration::from_secs(4));
    let during = committed(&bootstrap, "s3-outage", topic, 2);
    assert_eq!(
        during, first,
        "nothing is committed while the store is down"
    );
    store.restart();
    let end = end_offsets(acked.iter().copied());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "s3-outage",
        topic,
        2,
        Duration::from_secs(120),
        |c| *c == end,
    );
    let log = flumen.log_text();
    flumen.kill();
    assert!(
        log.contains("retry") || log.contains("Retry"),
        "the failed calls are retried: {}",
        tail(&log, 20)
    );
    let counts = bucket_counts(&store, "outage");
    assert_eq!(lost_and_duplicated(&acked, &counts), (0, 0));
}

/// `flumen check` initializes the sink, which asks the store: a wrong
/// secret and a missing bucket are refused with the cause and the fix.
#[test]
fn names_wrong_credentials_and_missing_buckets() {
    let store = SeaweedFs::start();
    store.create_bucket("present");
    let broker = Broker::mock();
    let work = Workdir::new();
    let check = |bucket: &str, secret: &str| {
        let sink = s3_sink(&store, bucket, "", "").replace(S3_SECRET_KEY, secret);
        let config = work.config(&broker.bootstrap(), "t", "g", sink);
        let (ok, text) = flumen_output(&["check", "--config", &config.display().to_string()], &[]);
        (ok, text)
    };
    let (ok, text) = check("present", S3_SECRET_KEY);
    assert!(ok, "the right key passes check: {text}");
    let authority = store.endpoint.trim_start_matches("http://");
    assert!(
        text.contains(&format!(
            "grants  env AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; http {authority}"
        )),
        "check shows the grant: {text}"
    );
    // exactly_once with a call that could outlast the fence's margin (the
    // tests' 3 s session, 0.5 s heartbeats, 30 s calls): refused, with
    // the fix.
    let sink = s3_sink(&store, "present", ", exactly_once = true", "");
    let config = work.config(&broker.bootstrap(), "t", "g", sink);
    let (ok, text) = flumen_output(&["check", "--config", &config.display().to_string()], &[]);
    assert!(
        !ok && text
            .contains("must end its sink calls before the group can give its partitions away")
            && text.contains("Lower limits.call_timeout_ms to at most 500"),
        "{text}"
    );
    // exactly_once next to a setting that could leave events out: warned
    // (and the store's conditional writes checked, which SeaweedFS has).
    let sink = s3_sink(
        &store,
        "present",
        ", exactly_once = true",
        "on_failure = \"skip\"\nlimits = { call_timeout_ms = 500 }",
    );
    let config = work.config(&broker.bootstrap(), "t", "g", sink);
    let (ok, text) = flumen_output(&["check", "--config", &config.display().to_string()], &[]);
    assert!(
        ok && text.contains("warning: sink `s3` (exactly_once): on_failure = \"skip\""),
        "{text}"
    );
    // Two cuts of the same events would get two keys: refused.
    let sink = s3_sink(
        &store,
        "present",
        ", exactly_once = true, key = \"%{topic}/%{partition}/%{start_offset}-%{end_offset}\"",
        "limits = { call_timeout_ms = 500 }",
    );
    let config = work.config(&broker.bootstrap(), "t", "g", sink);
    let (ok, text) = flumen_output(&["check", "--config", &config.display().to_string()], &[]);
    assert!(
        !ok && text.contains("exactly_once needs `key` without %{end_offset}"),
        "{text}"
    );
    let (ok, text) = check("present", "wrong-secret");
    assert!(
        !ok && text.contains("the secret key does not match access key")
            && text.contains("AWS_SECRET_ACCESS_KEY"),
        "{text}"
    );
    let (ok, text) = check("absent-bucket", S3_SECRET_KEY);
    assert!(
        !ok && text.contains("bucket `absent-bucket` does not exist"),
        "{text}"
    );
    let sink = s3_sink(&store, "present", "", "").replace(S3_ACCESS_KEY, "AKIAUNKNOWN");
    let config = work.config(&broker.bootstrap(), "t", "g", sink);
    let (ok, text) = flumen_output(&["check", "--config", &config.display().to_string()], &[]);
    assert!(
        !ok && text.contains("does not know access key `AKIAUNKNOWN`"),
        "{text}"
    );
}

//! Odd events flow through untouched: no key, no value, empty key and value,
//! no headers, a header with an empty value, hundreds of headers, a 256 KiB
//! header, a 512 KiB value, bytes that are not UTF-8 in key, value and header
//! values, and a header *name* that is not UTF-8 (which rdkafka's own header
//! iterator would panic on). Each reaches the sink byte for byte, through an
//! interceptor, and every offset is committed.

use crate::support::*;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const TOPIC: &str = "e2e-odd";
const GROUP: &str = "odd-group";

/// Pseudo-random bytes, mostly not valid UTF-8.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 0x80
        })
        .collect()
}

fn records() -> Vec<Record> {
    let r = |key: Option<&[u8]>, value: Option<&[u8]>, headers: Vec<(String, Vec<u8>)>| Record {
        partition: 0,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers,
    };
    vec![
        r(None, Some(b"no key"), vec![]),
        r(Some(b"tombstone"), None, vec![]),
        r(None, None, vec![]),
        r(Some(b""), Some(b""), vec![]),
        r(Some(&[0xc3, 0x28]), Some(&[0xff, 0x00, 0xfe]), vec![]),
        r(Some(b"k"), Some(b"v"), vec![("empty".into(), vec![])]),
        r(
            Some(b"many"),
            Some(b"v"),
            (0..300)
                .map(|i| (format!("h{i}"), vec![b'x'; i % 7]))
                .collect(),
        ),
        r(
            Some(b"big-header"),
            Some(b"v"),
            vec![("blob".into(), noise(256 << 10, 7))],
        ),
        r(Some(b"big-value"), Some(&noise(512 << 10, 11)), vec![]),
        r(
            Some("ünïcødé".as_bytes()),
            Some("✓ text".as_bytes()),
            vec![("ключ".into(), "значение".as_bytes().to_vec())],
        ),
    ]
}

/// Writes one record whose header name is not UTF-8 to partition 1, through
/// librdkafka's C API (rdkafka's Rust API only takes `&str` names).
fn produce_bad_header_name(bootstrap: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let headers = OwnedHeaders::new();
    let name: &[u8] = &[b'n', 0xff, b'!'];
    let value: &[u8] = &[0xfe, 0x01];
    // SAFETY: `as_borrowed` is a reference whose address is the native
    // headers pointer (that is how rdkafka implements it); the name and value
    // buffers outlive the call, which copies them.
    let err = unsafe {
        let hdrs = headers.as_borrowed() as *const _ as *mut rdkafka::bindings::rd_kafka_headers_t;
        rdkafka::bindings::rd_kafka_header_add(
            hdrs,
            name.as_ptr().cast(),
            name.len() as isize,
            value.as_ptr().cast(),
            value.len() as isize,
        )
    };
    assert_eq!(
        err,
        rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
    );
    let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(TOPIC)
        .partition(1)
        .key(b"bad-name".as_slice())
        .payload(b"v".as_slice())
        .headers(headers);
    producer.send(record).map_err(|(e, _)| e).expect("send");
    producer.flush(Duration::from_secs(30)).expect("flush");
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The file sink's rendering of bytes: a string if UTF-8, else base64 under
/// `<field>_base64`.
fn rendered(obj: &Value, field: &str, bytes: Option<&[u8]>) -> bool {
    match bytes {
        None => obj[field].is_null(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => obj[field] == s,
            Err(_) => obj[&format!("{field}_base64")] == base64(b).as_str(),
        },
    }
}

fn odd_events_flow_untouched(broker: Broker) {
    broker.create_topic(TOPIC, 2);
    let bootstrap = broker.bootstrap();
    let records = records();
    let positions = produce_records(&bootstrap, TOPIC, &records);
    produce_bad_header_name(&bootstrap);

    let work = Workdir::new();
    let router = format!(
        "[[pipeline.interceptor]]\nname = \"router\"\ncomponent = \"{}\"\n",
        guest("router").display()
    );
    let config = work.config(
        &bootstrap,
        TOPIC,
        GROUP,
        format!("{router}{}", file_sink("s", "file_sink", "")),
    );
    let end = BTreeMap::from([(0, records.len() as i64), (1, 1)]);
    run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        GROUP,
        TOPIC,
        &end,
        Duration::from_secs(60),
    );

    let lines = read_sink_json(&work.out, "s");
    assert_eq!(lines.len(), records.len() + 1, "one line per event");
    let by_pos: BTreeMap<(i64, i64), &Value> = lines
        .iter()
        .map(|l| {
            (
                (
                    l["partition"].as_i64().unwrap_or(-1),
                    l["offset"].as_i64().unwrap_or(-1),
                ),
                l,
            )
        })
        .collect();
    for (r, (p, o)) in records.iter().zip(&positions) {
        let line = by_pos[&(i64::from(*p), *o)];
        assert!(
            rendered(line, "key", r.key.as_deref()),
            "key of {o}: {line}"
        );
        assert!(rendered(line, "value", r.value.as_deref()), "value of {o}");
        let headers = line["headers"].as_array().expect("headers");
        assert_eq!(headers.len(), r.headers.len(), "header count of {o}");
        for (h, (name, value)) in headers.iter().zip(&r.headers) {
            assert_eq!(h["name"], name.as_str());
            assert!(rendered(h, "value", Some(value)), "header {name} of {o}");
        }
    }
    let bad = by_pos[&(1, 0)];
    let h = &bad["headers"][0];
    assert_eq!(
        h["name"], "n\u{fffd}!",
        "name converted lossily, not a panic"
    );
    assert!(
        rendered(h, "value", Some(&[0xfe, 0x01])),
        "value kept: {bad}"
    );
    eprintln!(
        "odd events: {} events (largest value 512 KiB, largest header 256 KiB, 300 headers, \
         non-UTF-8 bytes everywhere) reached the sink byte for byte",
        lines.len()
    );
}

#[test]
fn odd_events_flow_untouched_mock() {
    odd_events_flow_untouched(Broker::mock());
}

#[test]
fn odd_events_flow_untouched_tansu() {
    odd_events_flow_untouched(Broker::tansu());
}

/// A record batch that cannot be decompressed (it claims zstd and holds
/// garbage), between good events on one partition, beside a healthy one:
/// the first partition stops at the bad batch, nothing is skipped or
/// committed past it, and flumen names the topic, partition and offset in
/// its log, `/ready` and `/metrics`, while the other partition flows on.
#[test]
fn an_undecodable_batch_stops_its_partition_loudly() {
    let broker = Broker::mock();
    let bootstrap = broker.bootstrap();
    broker.create_topic("t", 2);
    let good = |partition: i32, n: usize| {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                partition,
                key: None,
                value: Some(format!("good {i}").into_bytes()),
                headers: Vec::new(),
            })
            .collect();
        produce_records(&bootstrap, "t", &records);
    };
    good(0, 100);
    good(1, 100);
    produce_raw_batch(&bootstrap, "t", 0, 4, 5, b"these bytes are not zstd at all");
    good(0, 100);
    good(1, 100);

    let work = Workdir::new();
    let admin = free_port();
    let config = work.config(
        &bootstrap,
        "t",
        "undecodable",
        format!(
            "{}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            file_sink("s", "file_sink", "")
        ),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    // Partition 1 is read to its end; partition 0 up to the bad batch.
    wait_committed(
        &mut flumen,
        &bootstrap,
        "undecodable",
        "t",
        2,
        Duration::from_secs(60),
        |c| c.get(&0) == Some(&100) && c.get(&1) == Some(&200),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let wanted = "partition t[0] cannot be read at offset 100";
    while !flumen.log_text().contains(wanted) {
        assert!(
            std::time::Instant::now() < deadline,
            "not reported:\n{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (status, body) = http(admin, "GET", "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("e2e: t[0]@100"), "{body}");
    let (_, text) = http(admin, "GET", "/metrics");
    assert_eq!(
        metric(
            &text,
            "flumen_partition_unreadable_offset",
            &[("topic", "t"), ("partition", "0")]
        ),
        Some(100.0),
        "{text}"
    );
    // Still stopped there a while later: nothing skipped, nothing committed past.
    std::thread::sleep(Duration::from_secs(3));
    let committed = committed(&bootstrap, "undecodable", "t", 2);
    assert_eq!(committed.get(&0), Some(&100));
    let lines = read_sink(&work.out, "s");
    assert_eq!(lines.iter().filter(|(p, _)| *p == 0).count(), 100);
    assert_eq!(lines.iter().filter(|(p, _)| *p == 1).count(), 200);
    assert!(flumen.terminate().success());
}

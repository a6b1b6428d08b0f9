//! Typed events: Schema Registry framed Avro and JSON Schema, produced by
//! Confluent's own serializers into tansu, decoded by the `schema_decode`
//! interceptor through the host's registry client, and compared field by
//! field with what Confluent's deserializers return for the same bytes.
//! Undecodable events go to the dead-letter topic with their reason and
//! original bytes; a registry outage holds events back without giving any
//! up.

use crate::support::*;
use rdkafka::Message;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

const PARTITIONS: i32 = 2;
const DLQ: &str = "sr-dead";

/// `(topic, partition, offset)` of an event.
type At = (String, i32, i64);

/// A pipeline reading `topics` through `schema_decode` (granted the
/// registry if `granted`) into a file sink, dead-lettering what it rejects.
fn config(
    work: &Workdir,
    broker: &str,
    registry: &str,
    topics: &[&str],
    granted: bool,
) -> std::path::PathBuf {
    let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
    let path = work.path("flumen.toml");
    let out = work.path("out");
    std::fs::create_dir_all(&out).expect("out dir");
    let text = format!(
        r#"
[kafka]
bootstrap_servers = "{broker}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500 }}

[schema_registry]
urls = ["{registry}"]
timeout_ms = 2000

[[pipeline]]
name = "typed"
topics = [{topics}]
group_id = "typed"
batch = {{ max_events = 200, max_wait_ms = 20 }}
commit = {{ interval_ms = 200 }}
retry = {{ attempts = 2, initial_backoff_ms = 50, max_backoff_ms = 500 }}

[pipeline.dead_letter]
topic = "{DLQ}"

[[pipeline.interceptor]]
name = "decode"
component = "{decode}"
schema_registry = {granted}
on_failure = "dead-letter"

[[pipeline.sink]]
name = "typed"
component = "{file_sink}"
config = {{ path = "/out/typed-%{{topic}}-%{{partition}}.jsonl" }}
dirs = [{{ host = "{out}", guest = "/out" }}]
"#,
        topics = topics.join(", "),
        decode = guest("schema_decode").display(),
        file_sink = guest("file_sink").display(),
        out = out.display(),
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// Replaces the components of the config at `path` (everything from its
/// first interceptor on) with `components`.
fn with_components(path: &Path, components: &str) {
    let text = std::fs::read_to_string(path).expect("config");
    let head = &text[..text
        .find("[[pipeline.interceptor]]")
        .expect("an interceptor")];
    std::fs::write(path, format!("{head}{components}")).expect("config");
}

/// The `schema_encode` interceptor with `config` (a TOML inline table's
/// entries) and `grants` lines.
fn encode(config: &str, grants: &str) -> String {
    format!(
        r#"
[[pipeline.interceptor]]
name = "encode"
component = "{}"
schema_registry = true
on_failure = "dead-letter"
config = {{ {config} }}
{grants}
"#,
        guest("schema_encode").display()
    )
}

/// The `schema_decode` interceptor.
fn decode_table() -> String {
    format!(
        "\n[[pipeline.interceptor]]\nname = \"decode\"\ncomponent = \"{}\"\nschema_registry = true\non_failure = \"dead-letter\"\n",
        guest("schema_decode").display()
    )
}

/// A file sink writing `/out/typed-<topic>-<partition>.jsonl` in `out`.
fn typed_file_sink(out: &Path) -> String {
    format!(
        "\n[[pipeline.sink]]\nname = \"typed\"\ncomponent = \"{}\"\nconfig = {{ path = \"/out/typed-%{{topic}}-%{{partition}}.jsonl\" }}\ndirs = [{{ host = \"{}\", guest = \"/out\" }}]\n",
        guest("file_sink").display(),
        out.display()
    )
}

/// What Confluent's deserializer reads from `topic`: each event's value,
/// rendered as docs/schemas.md says, by position.
fn expected(
    broker: &str,
    registry: &TestRegistry,
    topic: &str,
    format: &str,
    count: usize,
) -> BTreeMap<At, Value> {
    let out = confluent(
        &[
            "expect",
            "--bootstrap",
            broker,
            "--registry",
            &registry.url(),
            "--topic",
            topic,
            "--format",
            format,
            "--partitions",
            &PARTITIONS.to_string(),
            "--count",
            &count.to_string(),
        ]
        .into_iter()
        .chain(registry.client_args())
        .collect::<Vec<_>>(),
    );
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("expect line");
            let at = (
                topic.to_owned(),
                v["partition"].as_i64().expect("partition") as i32,
                v["offset"].as_i64().expect("offset"),
            );
            (at, v["value"].clone())
        })
        .collect()
}

/// What flumen's file sink wrote: each event's value parsed as JSON, and
/// its headers, by position.
fn decoded(out: &Path) -> BTreeMap<At, (Value, Value)> {
    read_sink_json(out, "typed")
        .into_iter()
        .map(|l| {
            let at = (
                l["topic"].as_str().expect("topic").to_owned(),
                l["partition"].as_i64().expect("partition") as i32,
                l["offset"].as_i64().expect("offset"),
            );
            let value = serde_json::from_str(l["value"].as_str().expect("a decoded value is text"))
                .expect("a decoded value is JSON");
            (at, (value, l["headers"].clone()))
        })
        .collect()
}

/// The committed end per partition of `topic` for the events in `events`
/// (a partition without events has no commit).
fn ends(events: impl Iterator<Item = (i32, i64)>) -> BTreeMap<i32, i64> {
    let mut end: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in events {
        let e = end.entry(p).or_default();
        *e = (*e).max(o + 1);
    }
    end
}

/// Events `first .. first + count` written by Confluent's serializer.
struct Typed<'a> {
    topic: &'a str,
    format: &'a str,
    framing: &'a str,
    first: usize,
    count: usize,
    version: u32,
}

fn produce_typed(broker: &str, registry: &TestRegistry, t: Typed<'_>) {
    produce_typed_on(broker, registry, t, PARTITIONS);
}

/// [`produce_typed`] round robin over `partitions` partitions.
fn produce_typed_on(broker: &str, registry: &TestRegistry, t: Typed<'_>, partitions: i32) {
    confluent(
        &[
            "produce",
            "--bootstrap",
            broker,
            "--registry",
            &registry.url(),
            "--topic",
            t.topic,
            "--format",
            t.format,
            "--framing",
            t.framing,
            "--partitions",
            &partitions.to_string(),
            "--first",
            &t.first.to_string(),
            "--count",
            &t.count.to_string(),
            "--version",
            &t.version.to_string(),
        ]
        .into_iter()
        .chain(registry.client_args())
        .collect::<Vec<_>>(),
    );
}

#[test]
fn avro_and_json_schema_in_every_framing_decode_as_confluent_reads_them() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    for t in ["sr-avro", "sr-json", "sr-bad"] {
        broker.create_topic(t, PARTITIONS);
    }
    broker.create_topic(DLQ, 1);
    // Avro: v1 with the id prefix, v1 with the GUID prefix, then v2 (a new
    // field with a default) with the GUID in a header: a schema evolving
    // mid-topic, in every framing.
    produce_typed(
        &bootstrap,
        &registry,
        Typed {
            topic: "sr-avro",
            format: "avro",
            framing: "id",
            first: 0,
            count: 150,
            version: 1,
        },
    );
    let avro = |framing, first, version| Typed {
        topic: "sr-avro",
        format: "avro",
        framing,
        first,
        count: 150,
        version,
    };
    produce_typed(&bootstrap, &registry, avro("guid", 150, 1));
    produce_typed(&bootstrap, &registry, avro("header", 300, 2));
    for (i, framing) in ["id", "guid", "header"].into_iter().enumerate() {
        let json = Typed {
            topic: "sr-json",
            format: "json",
            framing,
            first: i * 50,
            count: 50,
            version: 1,
        };
        produce_typed(&bootstrap, &registry, json);
    }
    let mut want = expected(&bootstrap, &registry, "sr-avro", "avro", 450);
    want.extend(expected(&bootstrap, &registry, "sr-json", "json", 150));
    assert_eq!(want.len(), 600);

    // Three events no deserializer can read: an id the registry does not
    // have, a good frame cut short, and a payload with no framing at all.
    let good = read_topic(
        &bootstrap,
        "sr-avro",
        PARTITIONS,
        1,
        Duration::from_secs(10),
    );
    let good = good[0].payload().expect("a value").to_vec();
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (
            [0u8, 0, 0, 0x27, 0x0f]
                .iter()
                .copied()
                .chain(good[5..].iter().copied())
                .collect(),
            "not in the registry",
        ),
        (good[..good.len() / 2].to_vec(), "truncated"),
        (
            b"{\"plain\": \"json\"}".to_vec(),
            "not a Schema Registry magic byte",
        ),
    ];
    let records: Vec<Record> = bad
        .iter()
        .map(|(value, _)| Record {
            partition: 0,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
        })
        .collect();
    let bad_at = produce_records(&bootstrap, "sr-bad", &records);
    registry.clear_requests();

    let path = config(
        &work,
        &bootstrap,
        &registry.url(),
        &["sr-avro", "sr-json", "sr-bad"],
        true,
    );
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    for (topic, end) in [
        (
            "sr-avro",
            ends(want.keys().filter(|a| a.0 == "sr-avro").map(|a| (a.1, a.2))),
        ),
        (
            "sr-json",
            ends(want.keys().filter(|a| a.0 == "sr-json").map(|a| (a.1, a.2))),
        ),
        ("sr-bad", ends(bad_at.iter().copied())),
    ] {
        wait_committed(
            &mut flumen,
            &bootstrap,
            "typed",
            topic,
            PARTITIONS,
            Duration::from_secs(90),
            |c| c == &end,
        );
    }
    let log = flumen.log_text();
    flumen.terminate();

    // Every event decoded, field by field as Confluent's deserializer reads it.
    let got = decoded(&work.path("out"));
    let mut mismatches = Vec::new();
    for (at, value) in &want {
        match got.get(at) {
            None => mismatches.push(format!("{at:?}: missing")),
            Some((v, _)) if v != value => {
                mismatches.push(format!("{at:?}: flumen {v} ≠ confluent {value}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} events differ:\n{}",
        mismatches.len(),
        want.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
    assert_eq!(
        got.len(),
        want.len(),
        "events decoded that Confluent did not read"
    );
    let (_, headers) = &got[&("sr-avro".to_owned(), 0, 0)];
    for header in ["flumen.value.schema_format", "flumen.value.schema_id"] {
        assert!(headers.to_string().contains(header), "headers: {headers}");
    }
    assert!(
        headers.to_string().contains("sr-avro-value"),
        "the subject: {headers}"
    );

    // Each undecodable event dead-lettered once, with its offset, its
    // cause and its original bytes.
    let letters = read_topic(&bootstrap, DLQ, 1, bad.len(), Duration::from_secs(20));
    assert_eq!(letters.len(), bad.len(), "dead letters");
    for ((value, cause), (_, offset)) in bad.iter().zip(&bad_at) {
        let letter = letters
            .iter()
            .find(|m| m.payload() == Some(&value[..]))
            .unwrap_or_else(|| panic!("no dead letter for the event at offset {offset} ({cause})"));
        let reason = header(letter, "flumen.error");
        assert!(
            reason.contains(&format!("offset {offset}")) && reason.contains(cause),
            "reason: {reason}"
        );
    }

    // The registry saw one request per schema, however many partitions and
    // events needed it (the unknown id excepted: "not found" is not kept
    // by the host, and each partition's instance asks once).
    let mut per_path: HashMap<String, usize> = HashMap::new();
    for r in registry.requests() {
        *per_path.entry(r).or_default() += 1;
    }
    let repeated: Vec<_> = per_path
        .iter()
        .filter(|(r, n)| **n > 1 && !r.ends_with(" 404"))
        .collect();
    assert!(
        repeated.is_empty(),
        "schemas fetched more than once: {repeated:?}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn protobuf_with_a_reference_decodes_as_confluent_reads_it() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-proto", PARTITIONS);
    broker.create_topic(DLQ, 1);
    // order.proto imports address.proto (a reference of its own subject)
    // and the well-known Timestamp, in every framing.
    for (i, framing) in ["id", "guid", "header"].into_iter().enumerate() {
        let t = Typed {
            topic: "sr-proto",
            format: "protobuf",
            framing,
            first: i * 50,
            count: 50,
            version: 1,
        };
        produce_typed(&bootstrap, &registry, t);
    }
    let want = expected(&bootstrap, &registry, "sr-proto", "protobuf", 150);
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /subjects/address.proto/versions")),
        "the reference was registered under its own subject"
    );
    let path = config(&work, &bootstrap, &registry.url(), &["sr-proto"], true);
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = ends(want.keys().map(|a| (a.1, a.2)));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-proto",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    let got = decoded(&work.path("out"));
    let mut mismatches = Vec::new();
    for (at, value) in &want {
        match got.get(at) {
            None => mismatches.push(format!("{at:?}: missing")),
            Some((v, _)) if v != value => {
                mismatches.push(format!("{at:?}: flumen {v} ≠ confluent {value}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        want.len(),
        mismatches[..mismatches.len().min(3)].join("\n")
    );
    assert_eq!(got.len(), want.len());
    assert!(
        read_topic(&bootstrap, DLQ, 1, 1, Duration::from_secs(1)).is_empty(),
        "nothing rejected"
    );
}

#[test]
fn protobuf_into_clickhouse_columns() {
    let ch = ClickHouse::start();
    ch.query(
        "CREATE TABLE IF NOT EXISTS orders (topic String, partition Int32, offset Int64, \
         id Int64, status String, amount Float64, card String, placed_at String) \
         ENGINE = MergeTree ORDER BY (partition, offset)",
    );
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-orders", PARTITIONS);
    broker.create_topic(DLQ, 1);
    let t = Typed {
        topic: "sr-orders",
        format: "protobuf",
        framing: "id",
        first: 0,
        count: 120,
        version: 1,
    };
    produce_typed(&bootstrap, &registry, t);
    let want = expected(&bootstrap, &registry, "sr-orders", "protobuf", 120);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-orders"], true);
    // The decoded value, as JSON, into the table's columns.
    let sink = clickhouse_sink(
        &ch,
        "orders",
        r#", value = "json", skip_unknown_fields = true, timestamp_column = "", key_column = """#,
        "",
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let text = format!(
        "{}{sink}",
        &text[..text.find("[[pipeline.sink]]").expect("sink table")]
    );
    std::fs::write(&path, text).expect("config");
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = ends(want.keys().map(|a| (a.1, a.2)));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-orders",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    let rows = ch.query(
        "SELECT partition, offset, id, status, amount, card, placed_at FROM orders \
         ORDER BY partition, offset FORMAT JSONEachRow",
    );
    let rows: Vec<Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).expect("row"))
        .collect();
    assert_eq!(rows.len(), want.len(), "one row per event");
    for row in &rows {
        // ClickHouse's JSON output quotes 64-bit integers, as protobuf's does.
        let int = |v: &Value| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(-1)
        };
        let at = (
            "sr-orders".to_owned(),
            int(&row["partition"]) as i32,
            int(&row["offset"]),
        );
        let v = &want[&at];
        assert_eq!(row["id"].as_str(), v["id"].as_str(), "{row}");
        assert_eq!(row["status"], v["status"], "{row}");
        assert_eq!(row["amount"].as_f64(), v["amount"].as_f64(), "{row}");
        assert_eq!(
            row["card"].as_str(),
            Some(v["card"].as_str().unwrap_or("")),
            "{row}"
        );
        assert_eq!(row["placed_at"], v["placed_at"], "{row}");
    }
}

#[test]
fn check_and_test_reach_the_registry() {
    use base64::Engine as _;
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let mut registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-check", PARTITIONS);
    broker.create_topic(DLQ, 1);
    for version in [1, 2] {
        let t = Typed {
            topic: "sr-check",
            format: "avro",
            framing: "id",
            first: 0,
            count: 2,
            version,
        };
        produce_typed(&bootstrap, &registry, t);
    }
    let want = expected(&bootstrap, &registry, "sr-check", "avro", 4);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-check"], true);
    let config_arg = path.display().to_string();

    // check --connect: what the topic's subjects hold.
    let (ok, out) = flumen_output(&["check", "--config", &config_arg, "--connect"], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("subject `sr-check-value`: version 2"), "{out}");
    assert!(out.contains("no subject `sr-check-key`"), "{out}");

    // flumen test: a captured framed event decoded offline.
    let events = read_topic(
        &bootstrap,
        "sr-check",
        PARTITIONS,
        4,
        Duration::from_secs(10),
    );
    let lines: String = events
        .iter()
        .map(|m| {
            let value =
                base64::engine::general_purpose::STANDARD.encode(m.payload().unwrap_or_default());
            format!(
                "{{\"value_base64\":\"{value}\",\"partition\":{},\"offset\":{}}}\n",
                m.partition(),
                m.offset()
            )
        })
        .collect();
    std::fs::write(work.path("captured.jsonl"), lines).expect("events");
    let decode = guest("schema_decode").display().to_string();
    let captured = work.path("captured.jsonl").display().to_string();
    let url = registry.url();
    let args = [
        "test",
        "--component",
        &decode,
        "--events",
        &captured,
        "--topic",
        "sr-check",
        "--schema-registry",
        &url,
    ];
    let (ok, out, err) = flumen_in(&work.path(""), &args, &[]);
    assert!(ok, "{err}");
    let mut decoded = 0;
    for line in out.lines() {
        let line: Value = serde_json::from_str(line).expect("a verdict line");
        assert_eq!(line["verdict"], "replace", "{line}");
        let at = (
            "sr-check".to_owned(),
            line["event"]["partition"].as_i64().unwrap_or(-1) as i32,
            line["offset"].as_i64().unwrap_or(-1),
        );
        let value: Value =
            serde_json::from_str(line["event"]["value"].as_str().expect("text")).expect("JSON");
        assert_eq!(value, want[&at], "{line}");
        decoded += 1;
    }
    assert_eq!(decoded, 4, "{out}");

    // A registry that does not answer fails check, naming it.
    registry.kill();
    let (ok, out) = flumen_output(
        &[
            "check",
            "--config",
            &config_arg,
            "--connect",
            "--timeout",
            "2",
        ],
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("schema registry")
            && out.contains("sr-check-value")
            && out.contains("no registry answered"),
        "{out}"
    );
}

#[test]
fn a_registry_behind_a_private_ca_and_basic_auth() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let pki_dir = work.path("pki");
    std::fs::create_dir_all(&pki_dir).expect("pki dir");
    let pki = TestPki::new(&pki_dir);
    let registry = TestRegistry::start_secure(&work.path(""), &pki, "flumen:s3cret");
    broker.create_topic("sr-secure", PARTITIONS);
    broker.create_topic(DLQ, 1);
    let t = Typed {
        topic: "sr-secure",
        format: "avro",
        framing: "id",
        first: 0,
        count: 20,
        version: 1,
    };
    produce_typed(&bootstrap, &registry, t);
    let want = expected(&bootstrap, &registry, "sr-secure", "avro", 20);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-secure"], true);
    let text = std::fs::read_to_string(&path).expect("config");
    // The password from the environment, as a deployment would give it.
    let secure = |ca: &str, password: &str| {
        let section = format!(
            "timeout_ms = 2000\nusername = \"flumen\"\npassword = \"{password}\"\nca_file = \"{}\"",
            pki.file(ca)
        );
        text.replace("timeout_ms = 2000", &section)
    };
    std::fs::write(&path, secure("ca.pem", "${REGISTRY_PASSWORD}")).expect("config");
    let config_arg = path.display().to_string();
    let env = [("REGISTRY_PASSWORD", "s3cret")];
    let (ok, out) = flumen_output(&["check", "--config", &config_arg, "--connect"], &env);
    assert!(
        ok && out.contains("subject `sr-secure-value`: version 1"),
        "{out}"
    );

    let mut flumen = Flumen::start_with_env(
        &["run", "--config", &config_arg],
        &work.path("flumen.log"),
        &env,
    );
    let end = ends(want.keys().map(|a| (a.1, a.2)));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-secure",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    let got = decoded(&work.path("out"));
    for (at, value) in &want {
        assert_eq!(&got[at].0, value, "{at:?}");
    }

    // A wrong password, and a CA that did not sign the registry's
    // certificate: each named.
    let wrong = [("REGISTRY_PASSWORD", "wrong")];
    let (ok, out) = flumen_output(
        &[
            "check",
            "--config",
            &config_arg,
            "--connect",
            "--timeout",
            "3",
        ],
        &wrong,
    );
    assert!(
        !ok && out.contains("HTTP 401") && out.contains("Unauthorized"),
        "{out}"
    );
    std::fs::write(&path, secure("wrong-ca.pem", "s3cret")).expect("config");
    let (ok, out) = flumen_output(
        &[
            "check",
            "--config",
            &config_arg,
            "--connect",
            "--timeout",
            "3",
        ],
        &[],
    );
    assert!(
        !ok && out.contains("TLS handshake failed") && out.contains("ca_file"),
        "{out}"
    );
}

#[test]
fn avro_decoded_then_encoded_round_trips_byte_for_byte() {
    use base64::Engine as _;
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-round", PARTITIONS);
    broker.create_topic(DLQ, 1);
    let t = Typed {
        topic: "sr-round",
        format: "avro",
        framing: "id",
        first: 0,
        count: 150,
        version: 1,
    };
    produce_typed(&bootstrap, &registry, t);
    let originals = read_topic(
        &bootstrap,
        "sr-round",
        PARTITIONS,
        150,
        Duration::from_secs(10),
    );
    assert_eq!(originals.len(), 150);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-round"], true);
    let chain = decode_table() + &encode("", "") + &typed_file_sink(&work.path("out"));
    with_components(&path, &chain);
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = ends(originals.iter().map(|m| (m.partition(), m.offset())));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-round",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    let out: BTreeMap<(i32, i64), Vec<u8>> = read_sink_json(&work.path("out"), "typed")
        .iter()
        .map(|l| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(
                    l["value_base64"]
                        .as_str()
                        .expect("framed bytes are not text"),
                )
                .expect("base64");
            (
                (
                    l["partition"].as_i64().unwrap_or(-1) as i32,
                    l["offset"].as_i64().unwrap_or(-1),
                ),
                bytes,
            )
        })
        .collect();
    assert_eq!(out.len(), originals.len());
    for m in &originals {
        assert_eq!(
            out[&(m.partition(), m.offset())],
            m.payload().unwrap_or_default(),
            "offset {}",
            m.offset()
        );
    }
}

#[test]
fn encoded_json_reads_back_with_confluent_and_misfits_are_rejected_with_their_path() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    for t in ["sr-src", "sr-json-in", "sr-encoded"] {
        broker.create_topic(t, PARTITIONS);
    }
    broker.create_topic(DLQ, 1);
    // The rendered JSON of Confluent-written Avro events is the input; the
    // schema is registered by the encoder itself (auto_register) under the
    // input topic's subject.
    let t = Typed {
        topic: "sr-src",
        format: "avro",
        framing: "id",
        first: 0,
        count: 60,
        version: 1,
    };
    produce_typed(&bootstrap, &registry, t);
    let rendered = expected(&bootstrap, &registry, "sr-src", "avro", 60);
    let mut records: Vec<Record> = rendered
        .iter()
        .map(|(at, v)| Record {
            partition: at.1,
            key: None,
            value: Some(v.to_string().into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    let mut misfit = rendered.values().next().expect("an event").clone();
    misfit["address"]["zip"] = Value::String("not a number".into());
    let missing = {
        let mut m = misfit.clone();
        m.as_object_mut().expect("object").remove("name");
        m
    };
    for bad in [
        misfit.to_string(),
        missing.to_string(),
        "not json".to_owned(),
    ] {
        records.push(Record {
            partition: 0,
            key: None,
            value: Some(bad.into_bytes()),
            headers: Vec::new(),
        });
    }
    let acked = produce_records(&bootstrap, "sr-json-in", &records);
    let avro_v1 = confluent(&[
        "schema",
        "--bootstrap",
        &bootstrap,
        "--registry",
        &registry.url(),
        "--topic",
        "x",
        "--count",
        "0",
    ]);
    let toml_text = toml::Value::String(avro_v1.trim().to_owned()).to_string();
    let path = config(&work, &bootstrap, &registry.url(), &["sr-json-in"], true);
    let kafka_sink = format!(
        "\n[[pipeline.sink]]\nname = \"out\"\ncomponent = \"{}\"\nconfig = {{ topic = \"sr-encoded\", partition = \"same\" }}\nkafka_produce = [\"sr-encoded\"]\n",
        guest("kafka_sink").display()
    );
    let encoder = encode(
        &format!(
            r#"framing = "header", auto_register = true, format = "avro", schema = {toml_text}"#
        ),
        "schema_registry_register = true",
    );
    with_components(&path, &(encoder + &kafka_sink));
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = end_offsets(acked.iter().copied());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-json-in",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /subjects/sr-json-in-value/versions 200")),
        "{:?}",
        registry.requests()
    );

    // Confluent's deserializer reads every encoded event as its input.
    let back = expected(&bootstrap, &registry, "sr-encoded", "avro", 60);
    let mut want: Vec<String> = rendered.values().map(Value::to_string).collect();
    let mut got: Vec<String> = back.values().map(Value::to_string).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // The misfits, each dead-lettered with the offset and the path.
    let letters = read_topic(&bootstrap, DLQ, 1, 3, Duration::from_secs(20));
    let reasons: Vec<String> = letters.iter().map(|m| header(m, "flumen.error")).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for want in [
        "$.address.zip: expected an integer, found a string",
        "$.name: missing",
        "not JSON",
    ] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(want) && r.contains("offset")),
            "{want}: {reasons:?}"
        );
    }
}

#[test]
fn avro_into_typed_parquet_columns() {
    use parquet::basic::{ConvertedType, Type as Physical};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let store = SeaweedFs::start();
    store.create_bucket("typed");
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-parquet", PARTITIONS);
    broker.create_topic(DLQ, 1);
    // v1, then v2 (a new field): objects are cut where the schema changes.
    let avro = |first, version| Typed {
        topic: "sr-parquet",
        format: "avro",
        framing: "id",
        first,
        count: 100,
        version,
    };
    produce_typed(&bootstrap, &registry, avro(0, 1));
    produce_typed(&bootstrap, &registry, avro(100, 2));
    let want = expected(&bootstrap, &registry, "sr-parquet", "avro", 200);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-parquet"], true);
    let sink = s3_sink(
        &store,
        "typed",
        r#", format = "parquet", value_columns = "schema""#,
        "schema_registry = true\nbatch = { max_events = 1000, max_wait_ms = 300 }",
    );
    with_components(&path, &(decode_table() + &sink));
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = ends(want.keys().map(|a| (a.1, a.2)));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-parquet",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();

    let mut rows = 0;
    let mut schemas_seen = std::collections::BTreeSet::new();
    for (key, body) in store.objects("typed") {
        let reader = SerializedFileReader::new(bytes::Bytes::from(body)).expect("a Parquet object");
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let column = |name: &str| {
            schema
                .columns()
                .iter()
                .find(|c| c.path().string() == name)
                .unwrap_or_else(|| panic!("{key}: no column `{name}`"))
                .clone()
        };
        // The column types come from the Avro schema.
        assert_eq!(column("id").physical_type(), Physical::INT64, "{key}");
        assert_eq!(column("score").physical_type(), Physical::DOUBLE, "{key}");
        assert_eq!(column("active").physical_type(), Physical::BOOLEAN, "{key}");
        assert_eq!(
            column("address.zip").physical_type(),
            Physical::INT32,
            "{key}"
        );
        assert_eq!(
            column("name").converted_type(),
            ConvertedType::UTF8,
            "{key}"
        );
        assert_eq!(column("day").converted_type(), ConvertedType::DATE, "{key}");
        assert_eq!(
            column("at").converted_type(),
            ConvertedType::TIMESTAMP_MILLIS,
            "{key}"
        );
        assert_eq!(
            column("price").converted_type(),
            ConvertedType::DECIMAL,
            "{key}"
        );
        let has_note = schema.columns().iter().any(|c| c.path().string() == "note");
        schemas_seen.insert(has_note);
        for row in reader.get_row_iter(None).expect("rows") {
            let row = row.expect("row");
            let get = |name: &str| {
                row.get_column_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| f.clone())
            };
            let (Some(Field::Int(p)), Some(Field::Long(o))) = (get("_partition"), get("_offset"))
            else {
                panic!("{key}: no _partition/_offset");
            };
            let v = &want[&("sr-parquet".to_owned(), p, o)];
            assert_eq!(
                get("id"),
                Some(Field::Long(v["id"].as_i64().expect("id"))),
                "{key} {o}"
            );
            assert_eq!(
                get("name"),
                Some(Field::Str(v["name"].as_str().expect("name").into())),
                "{key} {o}"
            );
            assert_eq!(
                get("address.city"),
                Some(Field::Str(
                    v["address"]["city"].as_str().expect("city").into()
                ))
            );
            let nick = match v["nickname"].as_str() {
                Some(n) => Field::Str(n.into()),
                None => Field::Null,
            };
            assert_eq!(get("nickname"), Some(nick), "{key} {o}");
            assert_eq!(
                has_note,
                v.get("note").is_some(),
                "{key} {o}: one schema per object"
            );
            rows += 1;
        }
    }
    assert_eq!(rows, 200, "every event in one row");
    assert_eq!(schemas_seen.len(), 2, "objects of both schema versions");
}

#[test]
fn json_schema_payloads_are_validated_when_asked() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-valid", PARTITIONS);
    broker.create_topic(DLQ, 1);
    let t = Typed {
        topic: "sr-valid",
        format: "json",
        framing: "id",
        first: 0,
        count: 10,
        version: 1,
    };
    produce_typed(&bootstrap, &registry, t);
    let good = read_topic(
        &bootstrap,
        "sr-valid",
        PARTITIONS,
        10,
        Duration::from_secs(10),
    );
    // The same framing and schema id, with a value its schema refuses.
    let mut bad = good[0].payload().expect("a value")[..5].to_vec();
    bad.extend_from_slice(br#"{"sensor": 5, "value": 1}"#);
    let record = Record {
        partition: 0,
        key: None,
        value: Some(bad.clone()),
        headers: Vec::new(),
    };
    let bad_at = produce_records(&bootstrap, "sr-valid", &[record]);
    let path = config(&work, &bootstrap, &registry.url(), &["sr-valid"], true);
    let decode = decode_table() + "config = { validate_json = true }\n";
    with_components(&path, &(decode + &typed_file_sink(&work.path("out"))));
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let mut all: Vec<(i32, i64)> = good.iter().map(|m| (m.partition(), m.offset())).collect();
    all.extend(bad_at.iter().copied());
    let end = end_offsets(all.iter().copied());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-valid",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    assert_eq!(
        decoded(&work.path("out")).len(),
        10,
        "the valid events decoded"
    );
    let letters = read_topic(&bootstrap, DLQ, 1, 1, Duration::from_secs(20));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].payload(), Some(&bad[..]), "the original bytes");
    let reason = header(&letters[0], "flumen.error");
    assert!(
        reason.contains("`/sensor`") && reason.contains(&format!("offset {}", bad_at[0].1)),
        "{reason}"
    );
}

#[test]
fn a_component_without_the_grant_is_refused() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-ungranted", PARTITIONS);
    broker.create_topic(DLQ, 1);
    produce_typed(
        &bootstrap,
        &registry,
        Typed {
            topic: "sr-ungranted",
            format: "avro",
            framing: "id",
            first: 0,
            count: 4,
            version: 1,
        },
    );
    let path = config(&work, &bootstrap, &registry.url(), &["sr-ungranted"], false);
    let flumen = Flumen::run(&path, &work.path("flumen.log"));
    let letters = read_topic(&bootstrap, DLQ, 1, 4, Duration::from_secs(60));
    let log = flumen.log_text();
    flumen.terminate();
    assert_eq!(letters.len(), 4, "log:\n{}", tail(&log, 30));
    let reason = header(&letters[0], "flumen.error");
    assert!(
        reason.contains("not granted the schema registry")
            && reason.contains("schema_registry = true"),
        "{reason}"
    );
    assert!(
        registry.requests().iter().all(|r| !r.contains("/schemas/")),
        "an ungranted component reached the registry"
    );
}

#[test]
fn a_registry_outage_mid_run_holds_events_back_and_gives_none_up() {
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let mut registry = TestRegistry::start(&work.path(""));
    for t in ["sr-outage", "sr-outage-later", "sr-outage-scratch"] {
        broker.create_topic(t, PARTITIONS);
    }
    broker.create_topic(DLQ, 1);
    let avro = |topic, version| Typed {
        topic,
        format: "avro",
        framing: "id",
        first: 0,
        count: 100,
        version,
    };
    produce_typed(&bootstrap, &registry, avro("sr-outage", 1));
    let first = expected(&bootstrap, &registry, "sr-outage", "avro", 100);
    let path = config(
        &work,
        &bootstrap,
        &registry.url(),
        &["sr-outage", "sr-outage-later"],
        true,
    );
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    let end = ends(first.keys().map(|a| (a.1, a.2)));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-outage",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );

    // Mid-run: events of a schema flumen has not fetched yet (v2, written
    // aside, so that flumen cannot see them before) reach it while the
    // registry is down.
    produce_typed(&bootstrap, &registry, avro("sr-outage-scratch", 2));
    let later = expected(&bootstrap, &registry, "sr-outage-scratch", "avro", 100);
    registry.kill();
    let copies = read_topic(
        &bootstrap,
        "sr-outage-scratch",
        PARTITIONS,
        100,
        Duration::from_secs(10),
    );
    let records: Vec<Record> = copies
        .iter()
        .map(|m| Record {
            partition: m.partition(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: Vec::new(),
        })
        .collect();
    let copied = produce_records(&bootstrap, "sr-outage-later", &records);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !flumen
        .log_text()
        .contains("waiting for the schema registry")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never tried the registry:\n{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Then well past the interceptor's two attempts and their backoff.
    std::thread::sleep(Duration::from_secs(4));
    let held = committed(&bootstrap, "typed", "sr-outage-later", PARTITIONS);
    assert!(
        held.values().all(|&o| o <= 0),
        "committed past undecoded events: {held:?}"
    );
    let delivered = decoded(&work.path("out"));
    assert!(
        delivered.keys().all(|a| a.0 == "sr-outage"),
        "delivered undecoded events"
    );

    registry.restart();
    let end = ends(copied.iter().copied());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-outage-later",
        PARTITIONS,
        Duration::from_secs(90),
        |c| c == &end,
    );
    flumen.terminate();
    let got = decoded(&work.path("out"));
    for (at, value) in &first {
        assert_eq!(&got[at].0, value, "{at:?}");
    }
    // The copies keep their partitions and order, so their offsets.
    let later_got: Vec<&Value> = got
        .iter()
        .filter(|(a, _)| a.0 == "sr-outage-later")
        .map(|(_, v)| &v.0)
        .collect();
    assert_eq!(
        later_got.len(),
        100,
        "every event delivered once the registry was back"
    );
    for (at, value) in &later {
        assert_eq!(
            &got[&("sr-outage-later".to_owned(), at.1, at.2)].0,
            value,
            "{at:?}"
        );
    }
    assert!(
        read_topic(&bootstrap, DLQ, 1, 1, Duration::from_secs(2)).is_empty(),
        "an outage gave events up"
    );
}

#[test]
fn the_registry_is_asked_once_per_schema_over_100_000_events() {
    const EVENTS: usize = 100_000;
    let broker = Broker::tansu();
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let registry = TestRegistry::start(&work.path(""));
    broker.create_topic("sr-many", 4);
    broker.create_topic(DLQ, 1);
    // Two schemas (v1 by id, v2 by GUID header), each met by every
    // partition's instance.
    for (framing, first, version) in [("id", 0, 1), ("header", EVENTS / 2, 2)] {
        let t = Typed {
            topic: "sr-many",
            format: "avro",
            framing,
            first,
            count: EVENTS / 2,
            version,
        };
        produce_typed_on(&bootstrap, &registry, t, 4);
    }
    registry.clear_requests();
    let path = config(&work, &bootstrap, &registry.url(), &["sr-many"], true);
    let mut flumen = Flumen::run(&path, &work.path("flumen.log"));
    wait_committed(
        &mut flumen,
        &bootstrap,
        "typed",
        "sr-many",
        4,
        Duration::from_secs(240),
        |c| c.values().sum::<i64>() == EVENTS as i64,
    );
    flumen.terminate();
    let requests = registry.requests();
    // A schema, and the subject it is registered under, each once.
    let schema_requests: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/schemas/") && !r.contains("/versions"))
        .collect();
    assert_eq!(
        schema_requests.len(),
        2,
        "one request per schema: {requests:?}"
    );
    let mut distinct = requests.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        requests.len(),
        "a request repeated: {requests:?}"
    );
    let decoded = read_sink_json(&work.path("out"), "typed");
    assert_eq!(decoded.len(), EVENTS, "every event decoded once");
    assert!(read_topic(&bootstrap, DLQ, 1, 1, Duration::from_secs(1)).is_empty());
}

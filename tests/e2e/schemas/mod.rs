//! Typed events: Schema Registry framed Avro, Protobuf and JSON Schema,
//! produced by Confluent's own serializers into tansu, decoded and encoded
//! by `schema_decode` and `schema_encode` through the host's registry
//! client, and compared field by field with what Confluent's
//! deserializers read from the same bytes. One file per concern: decoding
//! ([`decode`]), encoding ([`encode`]), the typed destinations
//! ([`destinations`]) and the registry itself ([`registry`]: grants,
//! outages, TLS, the cache, `check` and `flumen test`).

mod decode;
mod destinations;
mod encode;
mod registry;

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PARTITIONS: i32 = 2;
const DLQ: &str = "sr-dead";
/// The group every pipeline here consumes as.
const GROUP: &str = "typed";

/// `(topic, partition, offset)` of an event.
type At = (String, i32, i64);

/// Events `first .. first + count` written by Confluent's serializer.
struct Typed<'a> {
    topic: &'a str,
    format: &'a str,
    framing: &'a str,
    first: usize,
    count: usize,
    version: u32,
}

impl<'a> Typed<'a> {
    /// `count` events of `topic` in `format`, from 0, by schema id, v1.
    fn new(topic: &'a str, format: &'a str, count: usize) -> Self {
        Self {
            topic,
            format,
            framing: "id",
            first: 0,
            count,
            version: 1,
        }
    }
}

/// What every test here stands on: a tansu broker, a work directory, and
/// the test registry; the dead-letter topic created.
struct Setup {
    broker: Broker,
    bootstrap: String,
    work: Workdir,
    registry: TestRegistry,
}

impl Setup {
    /// The set-up, with `topics` created (of [`PARTITIONS`] each).
    fn new(topics: &[&str]) -> Self {
        let work = Workdir::new();
        let registry = TestRegistry::start(&work.path(""));
        Self::with_registry(topics, work, registry)
    }

    /// [`Setup::new`] with a registry started otherwise.
    fn with_registry(topics: &[&str], work: Workdir, registry: TestRegistry) -> Self {
        let broker = Broker::tansu();
        for t in topics {
            broker.create_topic(t, PARTITIONS);
        }
        broker.create_topic(DLQ, 1);
        Self {
            bootstrap: broker.bootstrap(),
            broker,
            work,
            registry,
        }
    }

    /// Writes `t` with Confluent's serializer, round robin over
    /// [`PARTITIONS`] partitions.
    fn produce(&self, t: Typed<'_>) {
        self.produce_on(t, PARTITIONS);
    }

    /// [`Setup::produce`] over `partitions` partitions.
    fn produce_on(&self, t: Typed<'_>, partitions: i32) {
        let numbers = [
            partitions.to_string(),
            t.first.to_string(),
            t.count.to_string(),
            t.version.to_string(),
        ];
        let url = self.registry.url();
        let mut args = vec![
            "produce",
            "--bootstrap",
            &self.bootstrap,
            "--registry",
            &url,
            "--topic",
            t.topic,
            "--format",
            t.format,
            "--framing",
            t.framing,
            "--partitions",
            &numbers[0],
            "--first",
            &numbers[1],
            "--count",
            &numbers[2],
            "--version",
            &numbers[3],
        ];
        args.extend(self.registry.client_args());
        confluent(&args);
    }

    /// What Confluent's deserializer reads from `topic` (`count` events):
    /// each event's value, rendered as docs/schemas.md says, by position.
    fn expected(&self, topic: &str, format: &str, count: usize) -> BTreeMap<At, Value> {
        let (url, partitions, count) = (
            self.registry.url(),
            PARTITIONS.to_string(),
            count.to_string(),
        );
        let mut args = vec![
            "expect",
            "--bootstrap",
            &self.bootstrap,
            "--registry",
            &url,
            "--topic",
            topic,
            "--format",
            format,
            "--partitions",
            &partitions,
            "--count",
            &count,
        ];
        args.extend(self.registry.client_args());
        confluent(&args)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("expect line");
                let at = (
                    topic.to_owned(),
                    int(&v["partition"]) as i32,
                    int(&v["offset"]),
                );
                (at, v["value"].clone())
            })
            .collect()
    }

    /// A pipeline reading `topics` through `schema_decode` (granted the
    /// registry if `granted`) into a file sink in `out/`, dead-lettering
    /// what it rejects.
    fn config(&self, topics: &[&str], granted: bool) -> PathBuf {
        let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
        let path = self.work.path("flumen.toml");
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
group_id = "{GROUP}"
batch = {{ max_events = 200, max_wait_ms = 20 }}
commit = {{ interval_ms = 200 }}
retry = {{ attempts = 2, initial_backoff_ms = 50, max_backoff_ms = 500 }}

[pipeline.dead_letter]
topic = "{DLQ}"
{decode}schema_registry = {granted}
{sink}"#,
            broker = self.bootstrap,
            registry = self.registry.url(),
            topics = topics.join(", "),
            decode = decode_table().replace("schema_registry = true\n", ""),
            sink = self.file_sink(),
        );
        std::fs::write(&path, text).expect("config");
        path
    }

    /// The file sink: `out/typed-<topic>-<partition>.jsonl`.
    fn file_sink(&self) -> String {
        let out = self.out();
        std::fs::create_dir_all(&out).expect("out dir");
        format!(
            "\n[[pipeline.sink]]\nname = \"typed\"\ncomponent = \"{}\"\n\
             config = {{ path = \"/out/typed-%{{topic}}-%{{partition}}.jsonl\" }}\n\
             dirs = [{{ host = \"{}\", guest = \"/out\" }}]\n",
            guest("file_sink").display(),
            out.display()
        )
    }

    fn out(&self) -> PathBuf {
        self.work.path("out")
    }

    /// Starts flumen on `path` (with `env`).
    fn start(&self, path: &Path, env: &[(&str, &str)]) -> Flumen {
        let config = path.display().to_string();
        Flumen::start_with_env(
            &["run", "--config", &config],
            &self.work.path("flumen.log"),
            env,
        )
    }

    /// Waits until `flumen` has committed `end` on `topic`.
    fn wait(&self, flumen: &mut Flumen, topic: &str, end: &BTreeMap<i32, i64>) {
        let timeout = Duration::from_secs(90);
        wait_committed(
            flumen,
            &self.bootstrap,
            GROUP,
            topic,
            PARTITIONS,
            timeout,
            |c| c == end,
        );
    }

    /// Runs flumen on `path` until it has committed `end` on `topic`, then
    /// stops it; its log.
    fn run(&self, path: &Path, topic: &str, end: &BTreeMap<i32, i64>) -> String {
        let mut flumen = self.start(path, &[]);
        self.wait(&mut flumen, topic, end);
        let log = flumen.log_text();
        flumen.terminate();
        log
    }

    /// What the file sink wrote: each event's value parsed as JSON, and
    /// its headers, by position.
    fn decoded(&self) -> BTreeMap<At, (Value, Value)> {
        read_sink_json(&self.out(), "typed")
            .into_iter()
            .map(|l| {
                let at = (
                    l["topic"].as_str().expect("topic").to_owned(),
                    int(&l["partition"]) as i32,
                    int(&l["offset"]),
                );
                let value =
                    serde_json::from_str(l["value"].as_str().expect("a decoded value is text"))
                        .expect("a decoded value is JSON");
                (at, (value, l["headers"].clone()))
            })
            .collect()
    }

    /// Every record of the dead-letter topic, expecting `n`.
    fn dead_letters(&self, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
        let wait = Duration::from_secs(if n == 0 { 2 } else { 20 });
        read_topic(&self.bootstrap, DLQ, 1, n.max(1), wait)
    }
}

/// A JSON integer, or one quoted as 64-bit integers are (protobuf's JSON,
/// ClickHouse's); -1 if neither.
fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(-1)
}

/// Asserts `got` holds exactly `want`'s events, each value equal.
fn assert_same(want: &BTreeMap<At, Value>, got: &BTreeMap<At, (Value, Value)>) {
    let mut mismatches = Vec::new();
    for (at, value) in want {
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
}

/// The committed end per partition for `events` (a partition without
/// events has no commit).
fn ends<'a>(events: impl Iterator<Item = &'a At>) -> BTreeMap<i32, i64> {
    end_offsets(events.map(|a| (a.1, a.2)))
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

/// The `schema_decode` interceptor, granted the registry.
fn decode_table() -> String {
    format!(
        "\n[[pipeline.interceptor]]\nname = \"decode\"\ncomponent = \"{}\"\n\
         on_failure = \"dead-letter\"\nschema_registry = true\n",
        guest("schema_decode").display()
    )
}

/// The `schema_encode` interceptor with `config` (a TOML inline table's
/// entries) and `grants` lines.
fn encode_table(config: &str, grants: &str) -> String {
    format!(
        "\n[[pipeline.interceptor]]\nname = \"encode\"\ncomponent = \"{}\"\n\
         schema_registry = true\non_failure = \"dead-letter\"\nconfig = {{ {config} }}\n{grants}\n",
        guest("schema_encode").display()
    )
}

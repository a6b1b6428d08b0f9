//! Shared set-up for the end-to-end tests: real brokers, real components
//! built by guests/build.sh, and the real `flumen` binary in a child process.

#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A guest component built by guests/build.sh.
pub fn guest(name: &str) -> PathBuf {
    let p = repo().join(format!("guests/target/wasm32-wasip2/release/{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run guests/build.sh first",
        p.display()
    );
    p
}

/// A Kafka-protocol broker for a test.
pub enum Broker {
    /// librdkafka's in-process mock cluster.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A tansu broker process on a loopback port.
    Tansu { child: Child, bootstrap: String },
    /// A broker the test manages itself, at this address.
    External(String),
}

impl Broker {
    /// Starts the in-process mock cluster.
    pub fn mock() -> Self {
        Broker::Mock(MockCluster::new(1).expect("mock cluster"))
    }

    /// Starts tansu (memory storage) from scripts/fetch-tansu.sh's download.
    pub fn tansu() -> Self {
        let bin = std::env::var_os("FLUMEN_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".tools/tansu/tansu"));
        assert!(
            bin.exists(),
            "{} missing: run scripts/fetch-tansu.sh",
            bin.display()
        );
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&bootstrap).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {bootstrap}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker::Tansu { child, bootstrap }
    }

    /// The mock cluster, for fault injection; panics on tansu.
    pub fn mock_cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        match self {
            Broker::Mock(m) => m,
            _ => panic!("fault injection needs the mock cluster"),
        }
    }

    /// `host:port` to bootstrap from.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap_servers(),
            Broker::Tansu { bootstrap, .. } | Broker::External(bootstrap) => bootstrap.clone(),
        }
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Broker::Mock(m) => m.create_topic(topic, partitions, 1).expect("create topic"),
            Broker::Tansu { bootstrap, .. } | Broker::External(bootstrap) => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    .create()
                    .expect("admin client");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
                let r = rt
                    .block_on(admin.create_topics(&topics, &AdminOptions::new()))
                    .expect("create_topics");
                for t in r {
                    t.expect("topic created");
                }
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Tansu { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the test producer wrote: for every event, its partition and offset
/// and whether it is a `debug` event (which the test filters drop).
#[derive(Debug, Default)]
pub struct Produced {
    /// `(partition, offset) -> is_debug`.
    pub events: BTreeMap<(i32, i64), bool>,
    /// End offset per partition.
    pub end: BTreeMap<i32, i64>,
    /// Event index -> `(partition, offset)`.
    pub index: BTreeMap<usize, (i32, i64)>,
}

impl Produced {
    /// Adds a later wave of events to the same topic (its event indices
    /// continue after this one's).
    pub fn merge(&mut self, wave: Produced) {
        let base = self.index.len();
        for (i, pos) in wave.index {
            self.index.insert(base + i, pos);
        }
        self.events.extend(wave.events);
        for (p, e) in wave.end {
            let end = self.end.entry(p).or_insert(0);
            *end = (*end).max(e);
        }
    }

    /// Events the filter keeps.
    pub fn kept(&self) -> Vec<(i32, i64)> {
        self.events
            .iter()
            .filter(|(_, &debug)| !debug)
            .map(|(&k, _)| k)
            .collect()
    }
}

/// Records what the broker acknowledged: the ground truth of what a test
/// produced. (tansu 0.6's ListOffsets high watermark is wrong — seen here as
/// 21,853 for a partition holding offsets 0..=24,999 — so watermarks are not
/// used.)
#[derive(Default, Clone)]
struct AckContext {
    /// `(event index, partition, offset)` per acknowledged event.
    acked: Arc<Mutex<Vec<(usize, i32, i64)>>>,
    /// First delivery error, if any.
    failed: Arc<Mutex<Option<String>>>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<usize>;
    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        match result {
            Ok(m) => {
                if let Ok(mut acked) = self.acked.lock() {
                    acked.push((*index, m.partition(), m.offset()));
                }
            }
            Err((e, _)) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.get_or_insert_with(|| format!("event {index}: {e}"));
                }
            }
        }
    }
}

/// One record for [`produce_records`].
pub struct Record {
    /// Partition to write to.
    pub partition: i32,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Produces `records` and returns, per record (in input order), the
/// `(partition, offset)` the broker acknowledged.
pub fn produce_records(bootstrap: &str, topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
    let context = AckContext::default();
    let producer: ThreadedProducer<AckContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(context.clone())
        .expect("producer");
    for (i, r) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new();
        for (name, value) in &r.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut record: BaseRecord<'_, Vec<u8>, Vec<u8>, Box<usize>> =
            BaseRecord::with_opaque_to(topic, Box::new(i))
                .partition(r.partition)
                .headers(headers);
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    if let Some(e) = context.failed.lock().expect("lock").clone() {
        panic!("test producer: delivery failed: {e}");
    }
    let mut acked = context.acked.lock().expect("lock").clone();
    assert_eq!(
        acked.len(),
        records.len(),
        "not every produced event was acknowledged"
    );
    acked.sort();
    acked.into_iter().map(|(_, p, o)| (p, o)).collect()
}

/// Produces `n` events round-robin over `partitions`. Every 4th is level
/// `debug` (header `level`); `poison(i)` marks values that test sinks reject.
/// Some events have no key, and some values are not UTF-8, to show they
/// flow untouched.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    poison: impl Fn(usize) -> bool,
) -> Produced {
    produce_marked(bootstrap, topic, partitions, n, |i| {
        poison(i).then_some("POISON")
    })
}

/// Like [`produce`], with `mark(i)` appended to event `i`'s value (after a
/// space) where it returns a marker.
pub fn produce_marked(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    mark: impl Fn(usize) -> Option<&'static str>,
) -> Produced {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let mut value = format!("seq={i}").into_bytes();
            if let Some(m) = mark(i) {
                value.push(b' ');
                value.extend_from_slice(m.as_bytes());
            }
            if i % 1000 == 7 {
                value.extend_from_slice(&[0xff, 0xfe, 0x00]);
            }
            let level = if is_debug(i) { "debug" } else { "info" };
            Record {
                partition: (i % partitions as usize) as i32,
                key: (i % 10 != 3).then(|| format!("k{}", i % 13).into_bytes()),
                value: Some(value),
                headers: vec![("level".into(), level.as_bytes().to_vec())],
            }
        })
        .collect();
    let acked = produce_records(bootstrap, topic, &records);
    let mut produced = Produced::default();
    for (i, (p, o)) in acked.into_iter().enumerate() {
        assert!(
            produced.events.insert((p, o), is_debug(i)).is_none(),
            "offset {o} acked twice"
        );
        produced.index.insert(i, (p, o));
        let end = produced.end.entry(p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    // Each partition got a contiguous run of offsets ending at `end` (from
    // 0 on a fresh topic).
    for (p, end) in &produced.end {
        let mut offsets = produced
            .events
            .range((*p, 0)..(*p + 1, 0))
            .map(|(k, _)| k.1);
        let first = offsets.next().unwrap_or(*end);
        let count = produced.events.range((*p, 0)..(*p + 1, 0)).count() as i64;
        assert_eq!(
            count,
            *end - first,
            "partition {p}: acked offsets are not {first}..{end}"
        );
    }
    produced
}

/// Whether the test producer's event `i` is a `debug` event.
pub fn is_debug(i: usize) -> bool {
    i % 4 == 1
}

/// Offsets committed by `group`, per partition (absent = none committed).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let Ok(got) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return BTreeMap::new();
    };
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Every record of `topic` (all `partitions`, from the beginning), read until
/// `expected` records arrived or `timeout` passed.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "flumen-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push(m.detach());
        }
    }
    // Anything beyond `expected` would be a bug too: look a little longer.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push(m.detach());
        }
    }
    got
}

/// A `flumen run` child process.
pub struct Flumen {
    child: Child,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Flumen {
    /// Runs `flumen <args>`, logging to `log`.
    pub fn start(args: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_flumen"))
            .args(args)
            // Consumer debug lines show pauses and commits.
            .env("RUST_LOG", "info,flumen::consumer=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start flumen");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// `flumen run --config <config>`.
    pub fn run(config: &Path, log: &Path) -> Self {
        Self::start(&["run", "--config", &config.display().to_string()], log)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGKILL: no drain, no commit, no goodbye to the group.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "flumen did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Flumen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond(committed offsets)` holds; panics with the log after
/// `timeout`.
pub fn wait_committed(
    flumen: &mut Flumen,
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
    cond: impl Fn(&BTreeMap<i32, i64>) -> bool,
) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = committed(bootstrap, group, topic, partitions);
        if cond(&c) {
            return c;
        }
        assert!(
            flumen.alive(),
            "flumen exited early; log:\n{}",
            flumen.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "timed out; committed {c:?}; log tail:\n{}",
            tail(&flumen.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `flumen run --config <config>` (logging to `log`) until `group` has
/// committed `end` on `topic`, stops it with SIGTERM, asserts a clean exit
/// and returns its log.
pub fn run_until_committed(
    config: &Path,
    log: &Path,
    bootstrap: &str,
    group: &str,
    topic: &str,
    end: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> String {
    let mut flumen = Flumen::run(config, log);
    let partitions = end.keys().max().map_or(0, |p| p + 1);
    wait_committed(
        &mut flumen,
        bootstrap,
        group,
        topic,
        partitions,
        timeout,
        |c| c == end,
    );
    let text = flumen.log_text();
    let status = flumen.terminate();
    assert!(status.success(), "flumen exit status {status}");
    text
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every line sink `name` wrote (its files `<name>-<partition>.jsonl` in
/// `dir`), parsed, each file in order. Every line must be complete JSON.
pub fn read_sink_json(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    read_lines(dir, name, false)
}

/// Like [`read_sink_json`] for output still being written: a last line
/// without its newline is being appended right now and is skipped.
pub fn read_sink_live(dir: &Path, name: &str) -> Vec<(i32, i64)> {
    positions(&read_lines(dir, name, true))
}

/// `(partition, offset)` of every line sink `name` wrote, each file in order.
pub fn read_sink(dir: &Path, name: &str) -> Vec<(i32, i64)> {
    positions(&read_sink_json(dir, name))
}

fn positions(lines: &[serde_json::Value]) -> Vec<(i32, i64)> {
    lines
        .iter()
        .map(|v| {
            (
                v["partition"].as_i64().expect("partition") as i32,
                v["offset"].as_i64().expect("offset"),
            )
        })
        .collect()
}

fn read_lines(dir: &Path, name: &str, live: bool) -> Vec<serde_json::Value> {
    let files = flumen::demo::output_files(dir, name).expect("read output dir");
    let mut lines = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read sink output");
        let mut parts: Vec<&str> = text.split('\n').collect();
        let unterminated = parts.pop().unwrap_or_default();
        assert!(
            live || unterminated.is_empty(),
            "{}: last line has no newline: {unterminated}",
            path.display()
        );
        for l in parts {
            lines.push(
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: line is not JSON ({e}): {l}", path.display())),
            );
        }
    }
    lines
}

/// Asserts per-partition offset order in a sink's output (a redelivery after
/// a restart may restart the order once, at a lower offset).
pub fn assert_in_order(lines: &[(i32, i64)], sink: &str) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in lines {
        if let Some(&prev) = last.get(&p) {
            assert!(o > prev, "{sink}: partition {p} offset {o} after {prev}");
        }
        last.insert(p, o);
    }
}

/// A scratch directory for one test run, holding `out/` (the directory the
/// sinks are granted as `/out`), the config and the log.
pub struct Workdir {
    dir: tempfile::TempDir,
    /// The sinks' output directory.
    pub out: PathBuf,
}

impl Workdir {
    /// Creates the directory and its `out/`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out dir");
        Self { dir, out }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `flumen.toml` for one pipeline (commits every 200 ms) and
    /// returns its path.
    pub fn config(&self, bootstrap: &str, topic: &str, group: &str, components: String) -> PathBuf {
        let path = self.path("flumen.toml");
        PipelineToml {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            group: group.into(),
            out: self.out.clone(),
            components,
            commit_interval_ms: 200,
        }
        .write(&path);
        path
    }
}

/// Writes a pipeline config for the tests.
pub struct PipelineToml {
    /// Broker.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Group id.
    pub group: String,
    /// Output directory granted as `/out`.
    pub out: PathBuf,
    /// `[[pipeline.interceptor]]` and `[[pipeline.sink]]` tables.
    pub components: String,
    /// Periodic commit interval.
    pub commit_interval_ms: u64,
}

impl PipelineToml {
    /// Renders and writes the config to `path`.
    pub fn write(&self, path: &Path) {
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500, "max.poll.interval.ms" = 10000 }}

[[pipeline]]
name = "e2e"
topics = ["{topic}"]
group_id = "{group}"
batch = {{ max_events = 500, max_wait_ms = 20 }}
commit = {{ interval_ms = {commit_interval_ms} }}
retry = {{ initial_backoff_ms = 20, max_backoff_ms = 200 }}
drain_timeout_ms = 5000
# Small, so that partitions pause and resume often under the tests' load.
max_queued_events = 1000
{components}
"#,
            bootstrap = self.bootstrap,
            topic = self.topic,
            group = self.group,
            components = self
                .components
                .replace("$OUT", &self.out.display().to_string()),
            commit_interval_ms = self.commit_interval_ms,
        );
        std::fs::write(path, text).expect("write config");
    }
}

/// A sink table writing JSON lines to `/out/<name>-<partition>.jsonl` with
/// the given guest.
pub fn file_sink(name: &str, guest_name: &str, extra: &str) -> String {
    file_sink_at(name, &guest(guest_name), extra)
}

/// [`file_sink`] with the component given by its path (a guest in another
/// language).
pub fn file_sink_at(name: &str, component: &Path, extra: &str) -> String {
    format!(
        r#"
[[pipeline.sink]]
name = "{name}"
component = "{}"
config = {{ path = "/out/{name}-%{{partition}}.jsonl"{extra} }}
dirs = [{{ host = "$OUT", guest = "/out" }}]
"#,
        component.display()
    )
}

/// The filter interceptor dropping `level=debug` events.
pub fn drop_debug() -> String {
    format!(
        r#"
[[pipeline.interceptor]]
name = "drop-debug"
component = "{}"
config = {{ pattern = "^debug$", field = "header:level" }}
"#,
        guest("filter").display()
    )
}

/// Runs `flumen <args>` in `dir`, with its compile cache in `dir/cache` and
/// `env` added: (success, stdout, stderr). A panic in flumen fails the test.
pub fn flumen_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .current_dir(dir)
        .env("FLUMEN_CACHE_DIR", dir.join("cache"))
        .envs(env.iter().copied())
        .output()
        .expect("run flumen");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "flumen panicked:\n{stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// One HTTP/1.1 request without a body to the admin endpoint on `port`:
/// (status, body).
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The value of the sample of metric `name` whose labels include `labels`
/// in `/metrics` text, read with the parser `flumen top` uses.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    flumen::top::parse(text)
        .into_iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

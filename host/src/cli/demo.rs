//! `flumen demo`: a complete pipeline with no external service. It starts
//! librdkafka's in-process mock cluster (a real Kafka-protocol broker on a
//! loopback port), produces a sample stream, runs the shipped demo pipeline
//! over it, and accounts for every event.

use crate::config::Config;
use crate::ops::pipeline;
use anyhow::{bail, Context};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The demo topic.
pub const TOPIC: &str = "flumen-demo";
const PARTITIONS: i32 = 4;

/// What the demo did, for its summary.
#[derive(Debug)]
pub struct Summary {
    /// Events produced per partition (= end offset, the topic starts empty).
    pub produced: BTreeMap<i32, i64>,
    /// Events consumed by flumen.
    pub consumed: u64,
    /// Events dropped by the interceptors.
    pub dropped: u64,
    /// Events delivered, per sink.
    pub delivered: BTreeMap<String, u64>,
    /// Lines in the sinks' per-partition output files under `--out`.
    pub lines_written: u64,
    /// Sinks granted `/out` (the output directory): each must have written
    /// one line per kept event.
    pub file_sinks: u64,
    /// Committed offset per partition.
    pub committed: BTreeMap<i32, i64>,
}

impl Summary {
    /// Whether every event is accounted for: every sink delivered each event
    /// the interceptors kept, the output holds exactly those lines, and every
    /// partition is committed up to its end.
    pub fn accounted(&self) -> bool {
        let produced: i64 = self.produced.values().sum();
        let kept = self.consumed.saturating_sub(self.dropped);
        produced as u64 == self.consumed
            && !self.delivered.is_empty()
            && self.delivered.values().all(|&n| n == kept)
            && self.lines_written == kept * self.file_sinks
            && self
                .produced
                .iter()
                .all(|(p, end)| self.committed.get(p) == Some(end))
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let produced: i64 = self.produced.values().sum();
        writeln!(f, "flumen demo summary")?;
        writeln!(f, "  produced   {produced}")?;
        writeln!(f, "  consumed   {}", self.consumed)?;
        writeln!(f, "  dropped    {} (by the interceptors)", self.dropped)?;
        for (sink, n) in &self.delivered {
            writeln!(f, "  delivered  {n} (sink `{sink}`)")?;
        }
        writeln!(
            f,
            "  written    {} lines in the output files ({} sink(s) writing to /out)",
            self.lines_written, self.file_sinks
        )?;
        writeln!(f, "  partition  produced  committed")?;
        for (p, end) in &self.produced {
            let c = self.committed.get(p).map_or("-".to_owned(), i64::to_string);
            writeln!(f, "  {p:>9}  {end:>8}  {c:>9}")?;
        }
        write!(
            f,
            "  result     {}",
            if self.accounted() {
                "every event accounted for: delivered + dropped = produced, committed = end offsets"
            } else {
                "MISMATCH: some events are not accounted for"
            }
        )
    }
}

/// Produces `count` sample log events: a quarter of them at level `debug`,
/// which the demo's filter drops.
fn produce(bootstrap: &str, count: usize) -> anyhow::Result<BTreeMap<i32, i64>> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .context("creating the demo producer")?;
    let levels = ["info", "debug", "warn", "error"];
    let mut produced = BTreeMap::new();
    for i in 0..count {
        let level = levels[i % levels.len()];
        let partition = (i % PARTITIONS as usize) as i32;
        let key = format!("user-{}", i % 97);
        let value = format!(r#"{{"seq":{i},"level":"{level}","msg":"demo event {i}"}}"#);
        let headers = OwnedHeaders::new().insert(Header {
            key: "level",
            value: Some(level),
        });
        let mut record = BaseRecord::to(TOPIC)
            .partition(partition)
            .key(&key)
            .payload(&value)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("producing demo event {i}: {e}"),
            }
        }
        *produced.entry(partition).or_insert(0) += 1;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing the demo producer")?;
    Ok(produced)
}

/// The files a file sink named `name` wrote in `dir` (its `path` being
/// `<dir>/<name>-%{partition}.jsonl`), sorted.
pub fn output_files(dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let prefix = format!("{name}-");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if file.starts_with(&prefix) && file.ends_with(".jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The per-partition output files in `dir`, whatever sink wrote them:
/// regular files named `<anything>-<partition>.<extension>`.
fn partition_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = Path::new(&name).file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let per_partition = stem
            .rsplit_once('-')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if per_partition && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Runs the demo with the pipeline in `config_path`, writing the sinks'
/// output (one file per partition) under `out_dir`. Per-partition files
/// (`<name>-<n>.<ext>`) left there by an earlier run are removed first.
pub fn run(config_path: &Path, events: usize, out_dir: &Path) -> anyhow::Result<Summary> {
    let mut config = Config::load(config_path)?;
    let cluster = MockCluster::new(1).context("starting the embedded Kafka broker")?;
    cluster
        .create_topic(TOPIC, PARTITIONS, 1)
        .context("creating the demo topic")?;
    let bootstrap = cluster.bootstrap_servers();
    tracing::info!(%bootstrap, "embedded Kafka broker (librdkafka mock cluster) started");

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating output directory {}", out_dir.display()))?;
    for p in partition_files(out_dir)? {
        std::fs::remove_file(&p)
            .with_context(|| format!("removing the previous {}", p.display()))?;
    }
    config.kafka.bootstrap_servers = bootstrap.clone();
    let mut file_sinks = 0;
    for c in config.pipelines.iter_mut().flat_map(|p| p.sinks.iter_mut()) {
        let mut granted = false;
        for d in c.dirs.iter_mut().filter(|d| d.guest == "/out") {
            d.host = PathBuf::from(out_dir);
            granted = true;
        }
        file_sinks += u64::from(granted);
    }

    let produced = produce(&bootstrap, events)?;
    tracing::info!(events, "sample events produced");

    let running = pipeline::start(&config)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let stats = running
        .stats()
        .first()
        .map(|(_, s)| s.clone())
        .context("the demo config has no pipeline")?;
    let done = |committed: &BTreeMap<(String, i32), i64>| {
        produced
            .iter()
            .all(|(p, end)| committed.get(&(TOPIC.to_owned(), *p)) == Some(end))
    };
    while !done(&stats.committed()) {
        if Instant::now() > deadline || !running.is_running() {
            tracing::error!("the demo pipeline did not commit every event within 120 s");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    running.stop();

    let mut lines_written = 0;
    for p in partition_files(out_dir)? {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        lines_written += text.lines().count() as u64;
    }
    Ok(Summary {
        produced,
        consumed: stats.consumed.load(std::sync::atomic::Ordering::Relaxed),
        dropped: stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        delivered: stats.delivered(),
        lines_written,
        file_sinks,
        committed: stats
            .committed()
            .into_iter()
            .filter(|((t, _), _)| t == TOPIC)
            .map(|((_, p), o)| (p, o))
            .collect(),
    })
}

/// Runs `flumen demo`: prints the summary; fails if an event is unaccounted for.
pub fn command(config: PathBuf, events: usize, out: PathBuf) -> anyhow::Result<ExitCode> {
    let summary = run(&config, events, &out)?;
    println!("{summary}");
    println!(
        "  output     {} (a file per sink and partition)",
        out.display()
    );
    Ok(if summary.accounted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

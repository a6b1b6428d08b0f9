//! `flumen check --connect`: connects to the cluster as each pipeline would
//! and reports what a run would find, within a bounded time: whether the
//! brokers answer and accept the credentials, each topic's partitions, the
//! dead-letter and produce topics, and the group's committed offsets and lag.

use super::client_config;
use crate::config::Config;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What went wrong connecting, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(String);

/// Keeps the last failure librdkafka logged while connecting (a refused
/// certificate, failed authentication), which a metadata request that
/// times out would otherwise hide behind "broker transport failure". It is
/// the probe's only output from librdkafka: its other log lines and its
/// statistics would bury the report.
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

/// What librdkafka says once every broker failed ("1/1 brokers are down"):
/// true, but it must not replace the reason they failed.
const ALL_DOWN: &str = "brokers are down";

impl ClientContext for LastError {
    fn log(&self, level: RDKafkaLogLevel, _: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            self.keep(message);
        }
    }

    fn stats_raw(&self, _: &[u8]) {}

    fn error(&self, error: KafkaError, reason: &str) {
        self.keep(&format!("{error}: {reason}"));
    }
}

impl ConsumerContext for LastError {}

impl LastError {
    /// Keeps `message`, unless it would hide a reason that waiting will
    /// not mend, or merely summarizes the reasons seen.
    fn keep(&self, message: &str) {
        if let Ok(mut last) = self.0.lock() {
            let keeps_final = last.as_deref().is_some_and(is_final);
            let summary = last.is_some() && message.contains(ALL_DOWN);
            if !keeps_final && !summary {
                *last = Some(message.to_owned());
            }
        }
    }

    fn last(&self) -> Option<String> {
        self.0.lock().ok().and_then(|l| l.clone())
    }
}

/// Failures that waiting longer will not mend: a certificate or a password
/// the broker refuses.
fn is_final(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("ssl handshake failed") || m.contains("authentication")
}

/// The cluster's metadata, asked for in short steps so that a refused
/// certificate or password ends the wait at once rather than at `timeout`.
fn metadata(consumer: &BaseConsumer<LastError>, timeout: Duration) -> Result<Metadata, String> {
    let started = Instant::now();
    loop {
        let step = STEP.min(timeout.saturating_sub(started.elapsed()));
        match consumer.fetch_metadata(None, step) {
            Ok(m) => return Ok(m),
            Err(e) => {
                // rdkafka queues librdkafka's log lines and errors for the
                // consumer's poll: serve them, so that they reach the context.
                for _ in 0..QUEUED_EVENTS {
                    let _ = consumer.poll(Duration::ZERO);
                }
                let last = consumer.context().last();
                if let Some(why) = last.as_deref().filter(|why| is_final(why)) {
                    return Err(why.to_owned());
                }
                if started.elapsed() >= timeout {
                    return Err(last.unwrap_or_else(|| e.to_string()));
                }
            }
        }
    }
}

/// How long each metadata request of [`metadata`] waits.
const STEP: Duration = Duration::from_millis(500);

/// Events served between two metadata requests: more than a broker's
/// connection attempts log in one step.
const QUEUED_EVENTS: usize = 100;

/// Connects as every pipeline of `config` would and returns the report, or
/// the first problem. Each network step waits at most `timeout`.
pub fn probe(config: &Config, timeout: Duration) -> Result<String, ProbeError> {
    let mut out = String::new();
    let security = config
        .kafka
        .options
        .get("security.protocol")
        .and_then(|v| v.as_str())
        .unwrap_or("plaintext");
    for p in &config.pipelines {
        let consumer: BaseConsumer<LastError> = client_config::consumer(config, p)
            .create_with_context(LastError::default())
            .map_err(|e| ProbeError(format!("cannot create the consumer: {e}")))?;
        let started = Instant::now();
        let metadata = metadata(&consumer, timeout).map_err(|why| {
            ProbeError(format!(
                "cannot connect to Kafka at {} ({security}), gave up after {:.1} s: {why}",
                config.kafka.bootstrap_servers,
                started.elapsed().as_secs_f64()
            ))
        })?;
        let _ = writeln!(
            out,
            "kafka {}: connected and authenticated in {} ms ({security}, {} broker(s))",
            config.kafka.bootstrap_servers,
            started.elapsed().as_millis(),
            metadata.brokers().len()
        );
        let mut assigned = TopicPartitionList::new();
        for topic in &p.topics {
            let n = partitions(&metadata, topic).ok_or_else(|| {
                ProbeError(format!(
                    "pipeline `{}`: topic `{topic}` does not exist; create it, or fix `topics`",
                    p.name
                ))
            })?;
            let _ = writeln!(out, "  topic `{topic}`: {n} partition(s)");
            for partition in 0..n {
                assigned.add_partition(topic, partition);
            }
        }
        if let Some(dl) = &p.dead_letter {
            partitions(&metadata, &dl.topic).ok_or_else(|| {
                ProbeError(format!(
                    "pipeline `{}`: the dead-letter topic `{}` does not exist; create it",
                    p.name, dl.topic
                ))
            })?;
            let _ = writeln!(out, "  dead letters: topic `{}` exists", dl.topic);
        }
        for c in p.interceptors.iter().chain(&p.sinks) {
            for topic in &c.kafka_produce {
                partitions(&metadata, topic).ok_or_else(|| {
                    ProbeError(format!(
                        "pipeline `{}`, component `{}`: the kafka_produce topic `{topic}` does \
                         not exist; create it",
                        p.name, c.name
                    ))
                })?;
                let _ = writeln!(out, "  `{}` may produce to `{topic}`: it exists", c.name);
            }
        }
        let committed = consumer.committed_offsets(assigned, timeout).map_err(|e| {
            ProbeError(format!(
                "pipeline `{}`: cannot read group `{}`'s committed offsets: {e}",
                p.name, p.group_id
            ))
        })?;
        let _ = writeln!(out, "  group `{}`:", p.group_id);
        for e in committed.elements() {
            let (low, high) = consumer
                .fetch_watermarks(e.topic(), e.partition(), timeout)
                .map_err(|err| {
                    ProbeError(format!(
                        "cannot read the offsets of {}[{}]: {err}",
                        e.topic(),
                        e.partition()
                    ))
                })?;
            let (at, lag) = match e.offset() {
                Offset::Offset(o) => (o.to_string(), high - o),
                // No commit yet: a run starts at `auto.offset.reset`.
                _ => ("none".to_owned(), high - low),
            };
            let _ = writeln!(
                out,
                "    {}[{}] committed {at}, end {high}, lag {}",
                e.topic(),
                e.partition(),
                lag.max(0)
            );
        }
    }
    Ok(out)
}

fn partitions(metadata: &Metadata, topic: &str) -> Option<i32> {
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
}

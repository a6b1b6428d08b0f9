//! `flumen check --connect`: connects to the cluster as each pipeline would
//! and reports what a run would find, within a bounded time: whether the
//! brokers answer and accept the credentials, each topic's partitions, the
//! dead-letter and produce topics, and the group's committed offsets and lag.

use super::client_config;
use crate::config::Config;
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

/// Keeps the last error librdkafka reported in the background (a refused
/// certificate, failed authentication), which a metadata request that
/// times out would otherwise hide behind "all brokers down".
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl ClientContext for LastError {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(format!("{error}: {reason}"));
        }
    }
}

impl ConsumerContext for LastError {}

impl LastError {
    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut l| l.take())
    }
}

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
        let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| {
            let why = consumer.context().take().unwrap_or_else(|| e.to_string());
            ProbeError(format!(
                "cannot reach Kafka at {} ({security}) within {} s: {why}",
                config.kafka.bootstrap_servers,
                timeout.as_secs()
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

//! The Kafka sink (Flume's Kafka sink): writes each event to another Kafka
//! topic through the host's `producer` import, and reports it delivered
//! only once the broker has acknowledged it on every in-sync replica.
//!
//! The component has no network access of its own. The operator grants it
//! the topics it may write to (`kafka_produce = ["topic", ...]` in the
//! host's TOML); the records go to the host's `[kafka]` cluster.
//!
//! Config keys:
//! - `topic` (required): the topic to write to. `%{topic}` in it is
//!   replaced by the source topic, e.g. `"%{topic}-copy"`; the result must
//!   be granted.
//! - `partition` (default `key`): `key` lets the producer choose (by the
//!   key's hash; spread when there is no key), `same` writes to the event's
//!   own partition number.
//! - `headers` (default `true`): copy the event's headers.
//! - `timestamp` (default `keep`): `keep` writes the event's timestamp,
//!   `now` lets the producer stamp the time of sending.
//!
//! Verdicts: an acknowledged record is `delivered`; a topic not granted or
//! a record the broker refuses for good (too large, unknown topic) is
//! `reject`; anything else (timeout, broker away) is `retry`.

use flumen::pipeline::producer::{send, Outgoing, SendError};
use flumen::pipeline::types::Header;
use flumen_guest_common::columns::Batch;
use flumen_guest_common::{Config, Sink, Undelivered};

flumen_guest_common::sink!(KafkaSink, "kafka-sink");

/// The sink's settings, from `init`.
struct KafkaSink {
    topic: String,
    same_partition: bool,
    headers: bool,
    keep_timestamp: bool,
}

impl Sink for KafkaSink {
    const KEYS: &'static [&'static str] = &["topic", "partition", "headers", "timestamp"];

    fn new(config: &Config) -> Result<Self, String> {
        let topic = config.required("topic")?;
        if topic.trim().is_empty() {
            return Err("config key `topic` must not be empty".into());
        }
        Ok(KafkaSink {
            topic: topic.to_owned(),
            same_partition: config.one_of("partition", &["key", "same"])? == "same",
            headers: config.bool_or("headers", true)?,
            keep_timestamp: config.one_of("timestamp", &["keep", "now"])? == "keep",
        })
    }

    fn deliver(
        &mut self,
        source_topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        let topic = self.topic.replace("%{topic}", source_topic);
        // `send` takes owned records, so each key, value and header is
        // copied once here, from the batch's columns.
        let records: Vec<Outgoing> = batch
            .iter()
            .map(|e| Outgoing {
                topic: topic.clone(),
                partition: self.same_partition.then_some(partition),
                timestamp: if self.keep_timestamp {
                    e.timestamp
                } else {
                    None
                },
                key: e.key.map(<[u8]>::to_vec),
                value: e.value.map(<[u8]>::to_vec),
                headers: if self.headers {
                    e.headers()
                        .map(|(name, value)| Header {
                            name: name.to_owned(),
                            value: value.to_vec(),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        let results = send(&records);
        // An event not named as failed counts as delivered, so a short
        // answer from `send` must not pass for success.
        if results.len() != records.len() {
            return Err(format!(
                "the producer answered {} results for {} records",
                results.len(),
                records.len()
            ));
        }
        Ok(results
            .into_iter()
            .enumerate()
            .filter_map(|(event, r)| match r {
                Ok(()) => None,
                Err(SendError::NotGranted(m) | SendError::Refused(m)) => {
                    Some(Undelivered::reject(event, m))
                }
                Err(SendError::Transient(m)) => Some(Undelivered::retry(event, m)),
            })
            .collect())
    }
}

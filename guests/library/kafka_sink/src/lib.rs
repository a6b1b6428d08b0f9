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

wit_bindgen::generate!({ world: "kafka-sink", path: "../../../wit" });

use exports::flumen::pipeline::delivery::{Columns, Failure, FailureKind, Guest, Source};
use flumen::pipeline::producer::{send, Outgoing, SendError};
use flumen::pipeline::types::Header;
use flumen_guest_common::Config;
use std::cell::RefCell;

/// The sink's settings, from `init`.
struct Settings {
    topic: String,
    same_partition: bool,
    headers: bool,
    keep_timestamp: bool,
}

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

struct KafkaSink;

impl Guest for KafkaSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["topic", "partition", "headers", "timestamp"])?;
        let topic = config.required("topic")?;
        if topic.trim().is_empty() {
            return Err("config key `topic` must not be empty".into());
        }
        let settings = Settings {
            topic: topic.to_owned(),
            same_partition: config.one_of("partition", &["key", "same"])? == "same",
            headers: config.bool_or("headers", true)?,
            keep_timestamp: config.one_of("timestamp", &["keep", "now"])? == "keep",
        };
        SETTINGS.with(|s| *s.borrow_mut() = Some(settings));
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        let records = SETTINGS.with(|s| {
            let s = s.borrow();
            let s = s.as_ref().ok_or("deliver called before init")?;
            let topic = s.topic.replace("%{topic}", &source.topic);
            // `send` takes owned records, so each key, value and header is
            // copied once here, from the batch's columns.
            Ok::<_, String>(
                batch
                    .iter()
                    .map(|e| Outgoing {
                        topic: topic.clone(),
                        partition: s.same_partition.then_some(source.partition),
                        timestamp: if s.keep_timestamp { e.timestamp } else { None },
                        key: e.key.map(<[u8]>::to_vec),
                        value: e.value.map(<[u8]>::to_vec),
                        headers: if s.headers {
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
                    .collect::<Vec<_>>(),
            )
        })?;
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
            .zip(0..)
            .filter_map(|(r, event)| {
                let (kind, reason) = match r {
                    Ok(()) => return None,
                    Err(SendError::NotGranted(m) | SendError::Refused(m)) => {
                        (FailureKind::Reject, m)
                    }
                    Err(SendError::Transient(m)) => (FailureKind::Retry, m),
                };
                Some(Failure {
                    event,
                    kind,
                    reason,
                })
            })
            .collect())
    }
}

export!(KafkaSink);

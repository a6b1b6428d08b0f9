//! The dead-letter topic: where a component with `on_failure = "dead-letter"`
//! puts the events it gave up on.
//!
//! An event sent here is finalized (and so its offset may be committed) only
//! after the broker acknowledged the write: the dead-letter topic is part of
//! the at-least-once path, not a best-effort log. Until the write is
//! acknowledged the partition waits, retrying with backoff, exactly as if the
//! component were still failing.

use super::failure::{DeadLetters, Failure};
use super::retry::Backoff;
use crate::config::{Config, DeadLetterConfig, RetryConfig};
use crate::contract::{Event, Source};
use crate::kafka::producer::{self as acked_producer, Ack, AckedProducer};
use rdkafka::message::Header;
use rdkafka::producer::Producer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Header names of a dead letter. The original record's key, value and
/// headers are kept as they were; these are appended.
pub mod headers {
    /// The pipeline that gave up.
    pub const PIPELINE: &str = "flumen.pipeline";
    /// The component (interceptor or sink) that gave up.
    pub const COMPONENT: &str = "flumen.component";
    /// Its last error message.
    pub const ERROR: &str = "flumen.error";
    /// How many times the event was tried, in decimal.
    pub const ATTEMPTS: &str = "flumen.attempts";
    /// Topic the event was read from.
    pub const TOPIC: &str = "flumen.original.topic";
    /// Its partition, in decimal.
    pub const PARTITION: &str = "flumen.original.partition";
    /// Its offset, in decimal.
    pub const OFFSET: &str = "flumen.original.offset";
    /// Its timestamp in ms since the epoch, in decimal; absent if it had none.
    pub const TIMESTAMP: &str = "flumen.original.timestamp";
}

/// Cannot create the dead-letter producer or reach the topic at start.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// librdkafka refused the producer's configuration.
    #[error("cannot create the dead-letter producer: {0}")]
    Create(#[from] rdkafka::error::KafkaError),
    /// The broker says the topic does not exist.
    #[error("dead-letter topic `{0}` does not exist; create it before starting flumen")]
    NoTopic(String),
}

/// A pipeline's dead-letter topic and the producer writing to it, shared by
/// the pipeline's partition workers.
pub struct DeadLetterQueue {
    producer: AckedProducer,
    topic: String,
    pipeline: String,
    retry: RetryConfig,
}

impl DeadLetterQueue {
    /// Creates the producer for `dl` on the `[kafka]` cluster and checks that
    /// the topic exists (a broker that cannot be reached now is only logged:
    /// writes wait for it).
    pub fn new(
        config: &Config,
        pipeline: &str,
        dl: &DeadLetterConfig,
        retry: &RetryConfig,
    ) -> Result<Self, DeadLetterError> {
        let producer = acked_producer::create(&config.kafka, Duration::from_secs(30))?;
        if !acked_producer::missing_topics(&producer, &[&dl.topic]).is_empty() {
            return Err(DeadLetterError::NoTopic(dl.topic.clone()));
        }
        Ok(Self {
            producer,
            topic: dl.topic.clone(),
            pipeline: pipeline.to_owned(),
            retry: retry.clone(),
        })
    }

    /// Queues one dead letter; `None` if librdkafka refused it at once (its
    /// queue is full, the message is too large, …), which is logged.
    fn send(&self, source: &Source, event: &Event, failure: &Failure) -> Option<Ack> {
        let mut hs = acked_producer::copy_headers(&event.headers, 8);
        let partition = source.partition.to_string();
        let offset = event.offset.to_string();
        let attempts = failure.attempts.to_string();
        let timestamp = event.timestamp.map(|t| t.to_string());
        let mut added = vec![
            (headers::PIPELINE, self.pipeline.as_str()),
            (headers::COMPONENT, failure.component.as_str()),
            (headers::ERROR, failure.reason.as_str()),
            (headers::ATTEMPTS, attempts.as_str()),
            (headers::TOPIC, source.topic.as_str()),
            (headers::PARTITION, partition.as_str()),
            (headers::OFFSET, offset.as_str()),
        ];
        if let Some(t) = &timestamp {
            added.push((headers::TIMESTAMP, t.as_str()));
        }
        for (k, v) in added {
            hs = hs.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let record = acked_producer::record(
            &self.topic,
            None,
            event.timestamp,
            event.key.as_deref(),
            event.value.as_deref(),
        )
        .headers(hs);
        match acked_producer::send(&self.producer, record) {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot queue dead letter; retrying");
                None
            }
        }
    }
}

impl DeadLetters for DeadLetterQueue {
    fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes every event with its failure and waits until the broker has
    /// acknowledged all of them, retrying the ones that fail with backoff.
    /// Returns `false` if `stop` was set first: the caller must then not
    /// finalize any of them (some may be written twice after a restart,
    /// which at-least-once allows).
    fn write(&self, source: &Source, letters: &[(&Event, &Failure)], stop: &AtomicBool) -> bool {
        let mut pending: Vec<usize> = (0..letters.len()).collect();
        let mut backoff = Backoff::new(&self.retry);
        loop {
            let waits: Vec<(usize, Option<Ack>)> = pending
                .iter()
                .map(|&i| (i, self.send(source, letters[i].0, letters[i].1)))
                .collect();
            let mut failed = Vec::new();
            for (i, rx) in waits {
                let ok = match rx {
                    None => false,
                    Some(rx) => loop {
                        match rx.recv_timeout(Duration::from_millis(100)) {
                            Ok(Ok(())) => break true,
                            Ok(Err(e)) => {
                                let ev = letters[i].0;
                                tracing::warn!(topic = %self.topic, error = %e,
                                    original_partition = source.partition, original_offset = ev.offset,
                                    "dead-letter write failed; retrying");
                                break false;
                            }
                            Err(_) if stop.load(Ordering::Acquire) => return false,
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break false,
                        }
                    },
                };
                if !ok {
                    failed.push(i);
                }
            }
            if failed.is_empty() {
                return true;
            }
            pending = failed;
            if !backoff.wait(stop) {
                return false;
            }
        }
    }
}

impl Drop for DeadLetterQueue {
    fn drop(&mut self) {
        // Everything a worker waited for is acknowledged already; this only
        // bounds the wait for a write whose waiter was stopped.
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

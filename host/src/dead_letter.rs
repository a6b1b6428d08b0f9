//! The dead-letter topic: where a component with `on_failure = "dead-letter"`
//! puts the events it gave up on.
//!
//! An event sent here is finalized (and so its offset may be committed) only
//! after the broker acknowledged the write: the dead-letter topic is part of
//! the at-least-once path, not a best-effort log. Until the write is
//! acknowledged the partition waits, retrying with backoff, exactly as if the
//! component were still failing.

use crate::config::{Config, DeadLetterConfig, RetryConfig};
use crate::failure::Failure;
use crate::retry::Backoff;
use crate::runtime::bindings::{Event, Source};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
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

/// Where a delivery result arrives for the thread waiting for it.
type Ack = Receiver<Result<(), String>>;

/// The producer's context: hands each delivery result back to the thread
/// waiting for it.
struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<SyncSender<Result<(), String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        // The waiter may have given up (stop); nobody to tell then.
        let _ = ack.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string()));
    }
}

/// A pipeline's dead-letter topic and the producer writing to it, shared by
/// the pipeline's partition workers.
pub struct DeadLetterQueue {
    producer: ThreadedProducer<AckContext>,
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
        let mut cc = ClientConfig::new();
        for (k, v) in config.kafka_options() {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &config.kafka.bootstrap_servers)
            // Every replica must have the dead letter before its event's
            // offset may be committed.
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            // A missing dead-letter topic is a configuration error to report,
            // not something to create with the broker's defaults.
            .set("allow.auto.create.topics", "false");
        let producer: ThreadedProducer<AckContext> = cc.create_with_context(AckContext)?;
        match producer
            .client()
            .fetch_metadata(Some(&dl.topic), Duration::from_secs(10))
        {
            Ok(md) => {
                let missing = md.topics().iter().any(|t| {
                    t.name() == dl.topic && t.error().is_some_and(|e| {
                        e == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                    })
                });
                if missing {
                    return Err(DeadLetterError::NoTopic(dl.topic.clone()));
                }
            }
            Err(e) => tracing::warn!(topic = %dl.topic, error = %e,
                "cannot check the dead-letter topic now; dead letters wait for the broker"),
        }
        Ok(Self {
            producer,
            topic: dl.topic.clone(),
            pipeline: pipeline.to_owned(),
            retry: retry.clone(),
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes every event with its failure and waits until the broker has
    /// acknowledged all of them, retrying the ones that fail with backoff.
    /// Returns `false` if `stop` was set first: the caller must then not
    /// finalize any of them (some may be written twice after a restart,
    /// which at-least-once allows).
    pub fn write(
        &self,
        source: &Source,
        letters: &[(&Event, &Failure)],
        stop: &AtomicBool,
    ) -> bool {
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

    /// Queues one dead letter; `None` if librdkafka refused it at once (its
    /// queue is full, the message is too large, …), which is logged.
    fn send(&self, source: &Source, event: &Event, failure: &Failure) -> Option<Ack> {
        let (tx, rx) = sync_channel(1);
        let mut hs = OwnedHeaders::new_with_capacity(event.headers.len() + 8);
        for h in &event.headers {
            hs = hs.insert(Header {
                key: &h.name,
                value: Some(&h.value),
            });
        }
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
        let mut record: BaseRecord<'_, [u8], [u8], _> =
            BaseRecord::with_opaque_to(&self.topic, Box::new(tx)).headers(hs);
        if let Some(k) = &event.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &event.value {
            record = record.payload(v.as_slice());
        }
        if let Some(t) = event.timestamp {
            record = record.timestamp(t);
        }
        match self.producer.send(record) {
            Ok(()) => Some(rx),
            Err((e, _)) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot queue dead letter; retrying");
                None
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

//! A Kafka producer whose writes are waited for: each record sent comes with
//! a receiver for its delivery result, so the caller can finalize an event
//! only once the broker acknowledged what it wrote for it.
//!
//! Two parts of flumen write to Kafka on the at-least-once path and share
//! this: the dead-letter topic ([`crate::flow::dead_letter`]) and the `producer`
//! import of Kafka sinks ([`crate::runtime`]).

use crate::config::KafkaConfig;
use crate::contract::Header;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// Where a delivery result arrives for the thread waiting for it.
pub type Ack = Receiver<Result<(), KafkaError>>;

/// The producer's context: hands each delivery result back to the thread
/// waiting for it.
pub struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<SyncSender<Result<(), KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        // The waiter may have given up (stop, deadline); nobody to tell then.
        let _ = ack.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// A producer on the `[kafka]` cluster whose sends can be waited for.
pub type AckedProducer = ThreadedProducer<AckContext>;

/// Creates a producer on the `[kafka]` cluster (its `options` apply, for
/// security settings) with every replica acknowledging each write. A record
/// not acknowledged within `message_timeout` is given up with an error.
pub fn create(kafka: &KafkaConfig, message_timeout: Duration) -> Result<AckedProducer, KafkaError> {
    super::client_config::producer(kafka, message_timeout).create_with_context(AckContext)
}

/// Queues `record`; the receiver gets its delivery result. An error means
/// librdkafka refused it at once (queue full, too large, unknown partition).
pub fn send(
    producer: &AckedProducer,
    record: BaseRecord<'_, [u8], [u8], ()>,
) -> Result<Ack, KafkaError> {
    let (tx, rx) = sync_channel(1);
    let record = BaseRecord {
        topic: record.topic,
        partition: record.partition,
        payload: record.payload,
        key: record.key,
        timestamp: record.timestamp,
        headers: record.headers,
        delivery_opaque: Box::new(tx),
    };
    producer.send(record).map(|()| rx).map_err(|(e, _)| e)
}

/// A record for `topic` with the parts given; `None`s stay unset (no key,
/// a tombstone, the producer's partitioner and clock).
pub fn record<'a>(
    topic: &'a str,
    partition: Option<i32>,
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
) -> BaseRecord<'a, [u8], [u8]> {
    let mut record = BaseRecord::to(topic);
    record.partition = partition;
    record.timestamp = timestamp;
    record.key = key;
    record.payload = value;
    record
}

/// `headers` in Kafka's form, in order, with room for `extra` more.
pub fn copy_headers(headers: &[Header], extra: usize) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len() + extra),
        |hs, h| {
            hs.insert(rdkafka::message::Header {
                key: &h.name,
                value: Some(&h.value),
            })
        },
    )
}

/// Whether an error writing a record is permanent: sending the same record
/// again cannot succeed (too large, no such topic, not authorized). Anything
/// else (timeouts, a broker away, a full queue) may pass on a later try.
pub fn is_permanent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::UnknownTopic
                | C::UnknownTopicOrPartition
                | C::UnknownPartition
                | C::InvalidTopic
                | C::TopicAuthorizationFailed
                | C::InvalidRecord
                | C::PolicyViolation
        )
    )
}

/// The topics among `topics` that the broker says do not exist. A broker
/// that cannot be asked now is logged and nothing is reported missing:
/// writes then wait for it.
pub fn missing_topics<'a>(producer: &AckedProducer, topics: &[&'a str]) -> Vec<&'a str> {
    use rdkafka::producer::Producer as _;
    let mut missing = Vec::new();
    for &topic in topics {
        match producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
        {
            Ok(md) => {
                let absent = md.topics().iter().any(|t| {
                    t.name() == topic && t.error().is_some_and(|e| {
                        e == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                    })
                });
                if absent {
                    missing.push(topic);
                }
            }
            Err(e) => tracing::warn!(topic, error = %e,
                "cannot check that the topic exists now; writes to it wait for the broker"),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_errors_are_the_ones_a_retry_cannot_fix() {
        let e = |c| KafkaError::MessageProduction(c);
        assert!(is_permanent(&e(RDKafkaErrorCode::MessageSizeTooLarge)));
        assert!(is_permanent(&e(RDKafkaErrorCode::UnknownTopicOrPartition)));
        assert!(is_permanent(&e(RDKafkaErrorCode::TopicAuthorizationFailed)));
        assert!(!is_permanent(&e(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!is_permanent(&e(RDKafkaErrorCode::QueueFull)));
        assert!(!is_permanent(&e(RDKafkaErrorCode::NotEnoughReplicas)));
        assert!(!is_permanent(&KafkaError::Canceled));
    }
}

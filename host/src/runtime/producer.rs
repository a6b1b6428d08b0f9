//! The host side of the `producer` import: a Kafka sink writes records
//! through one producer that flumen owns, only to the topics its config
//! grants (`kafka_produce`), and learns for each record whether the broker
//! acknowledged it. The guest needs no network access of its own, and its
//! `delivered` can mean what it says: the broker has the record.
//!
//! A call waits for the acknowledgements, but not past the guest's own call
//! deadline (less a margin for the guest to answer): a record still
//! unacknowledged then is reported `transient`, the guest says `retry`, and
//! the host sends the event again later. The first copy may still land, so
//! a slow broker can cause duplicates, never a loss.

use super::budget::output_over;
use super::tag::GuestTag;
use crate::config::{Budgets, KafkaConfig};
use crate::contract::bindings::kafka_sink::flumen::pipeline::producer::{Outgoing, SendError};
use crate::contract::record_bytes;
use crate::kafka::producer::{self as acked_producer, Ack, AckedProducer};
use rdkafka::error::KafkaError;
use rdkafka::producer::BaseRecord;
use std::cell::OnceCell;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process's producer for Kafka sinks, created on first use so that a
/// flumen without Kafka sinks never connects one.
pub struct ProducerHub {
    kafka: KafkaConfig,
    message_timeout: Duration,
    producer: OnceLock<Result<AckedProducer, String>>,
}

impl ProducerHub {
    /// A hub producing to the `kafka` cluster for guests whose calls may
    /// take `call_timeout` (the shortest, if they differ).
    ///
    /// librdkafka gives a record up once it waited slightly less than the
    /// guest is willing to: a record the guest is told to retry is then no
    /// longer queued, and the retry does not add a second copy to the
    /// queue behind the first (which an outage would multiply).
    pub fn new(kafka: KafkaConfig, call_timeout: Duration) -> Arc<Self> {
        let wait = call_timeout.saturating_sub(answer_margin(call_timeout));
        Arc::new(Self {
            kafka,
            message_timeout: wait.saturating_sub(Duration::from_millis(100)),
            producer: OnceLock::new(),
        })
    }

    fn producer(&self) -> Result<&AckedProducer, &str> {
        self.producer
            .get_or_init(|| {
                acked_producer::create(&self.kafka, self.message_timeout)
                    .map_err(|e| format!("cannot create the Kafka producer: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// The topics among `topics` that do not exist on the cluster, so that
    /// a typo in a grant is an error at start rather than every record
    /// refused.
    pub fn missing_topics<'a>(&self, topics: &[&'a str]) -> Result<Vec<&'a str>, String> {
        let producer = self.producer().map_err(str::to_owned)?;
        Ok(acked_producer::missing_topics(producer, topics))
    }
}

/// One guest instance's side of the import: what it may write to, and by
/// when its current call must be answered.
pub struct ProduceGrant {
    hub: Option<Arc<ProducerHub>>,
    topics: Arc<[String]>,
    tag: GuestTag,
    /// When `send` stops waiting for acknowledgements; set for each call.
    wait_until: Instant,
    /// `budgets.produce_records_per_send` and `.output_bytes_per_call`.
    max_records: usize,
    max_bytes: u64,
    /// Bytes of records sent in the current call.
    sent_bytes: u64,
    /// Why the current call went over a budget, if it did.
    over: Option<String>,
    /// Resolved on the first `send`, so that components that never produce
    /// add no series to `/metrics`.
    counts: OnceCell<super::metrics::ProduceMetrics>,
}

/// What a call keeps of its deadline for the guest to turn the results into
/// verdicts and return: a fifth of it, at most a second.
fn answer_margin(call_timeout: Duration) -> Duration {
    (call_timeout / 5).min(Duration::from_secs(1))
}

impl ProduceGrant {
    /// The grant of an instance of a component allowed `topics`, writing
    /// through `hub` (none: no cluster, as in `flumen test` without
    /// `--kafka`).
    pub fn new(
        hub: Option<Arc<ProducerHub>>,
        topics: Arc<[String]>,
        budgets: &Budgets,
        tag: GuestTag,
    ) -> Self {
        Self {
            hub,
            topics,
            tag,
            wait_until: Instant::now(),
            max_records: usize::try_from(budgets.produce_records_per_send).unwrap_or(usize::MAX),
            max_bytes: budgets.output_bytes_per_call,
            sent_bytes: 0,
            over: None,
            counts: OnceCell::new(),
        }
    }

    /// Starts a call that may run for `call_timeout`.
    pub fn arm(&mut self, call_timeout: Duration) {
        self.wait_until = Instant::now() + call_timeout - answer_margin(call_timeout);
        self.sent_bytes = 0;
        self.over = None;
    }

    /// Why the last call went over a budget, if it did: `send` trapped it.
    pub fn take_over_budget(&mut self) -> Option<String> {
        self.over.take()
    }

    /// Checks `records` against the component's budgets before anything is
    /// sent: more records than `produce_records_per_send`, or more bytes
    /// in this call than `output_bytes_per_call`, is an error that traps
    /// the guest (its message names the budget, and is kept for
    /// [`Self::take_over_budget`]).
    pub fn within_budget(&mut self, records: &[Outgoing]) -> Result<(), String> {
        let over = self.over_budget(records);
        if let Err(message) = &over {
            self.over = Some(message.clone());
        }
        over
    }

    fn over_budget(&mut self, records: &[Outgoing]) -> Result<(), String> {
        let hit = |budget| {
            super::metrics::budget_hits(&self.tag.pipeline, &self.tag.component, budget).inc();
        };
        if records.len() > self.max_records {
            hit("produce_records");
            return Err(format!(
                "it sent {} records in one `send`, over its budget of {} \
                 (budgets.produce_records_per_send); the call fails like a trap and on_failure \
                 applies",
                records.len(),
                self.max_records
            ));
        }
        let bytes: u64 = records
            .iter()
            .map(|r| {
                (r.topic.len() + record_bytes(r.key.as_deref(), r.value.as_deref(), &r.headers))
                    as u64
            })
            .sum();
        self.sent_bytes += bytes;
        if self.sent_bytes > self.max_bytes {
            hit("output_bytes");
            let what = format!("records sent ({} bytes so far)", self.sent_bytes);
            return Err(output_over(&what, self.max_bytes));
        }
        Ok(())
    }

    /// Writes `records`; one result per record, in order.
    pub fn send(&self, records: Vec<Outgoing>) -> Vec<Result<(), SendError>> {
        let mut results: Vec<Result<(), SendError>> = Vec::with_capacity(records.len());
        let mut waits: Vec<(usize, Ack)> = Vec::with_capacity(records.len());
        let producer = self.hub.as_deref().map(ProducerHub::producer);
        for (i, record) in records.iter().enumerate() {
            let queued = if !self.topics.contains(&record.topic) {
                Err(SendError::NotGranted(format!(
                    "topic `{}` is not granted to component `{}`: add it to its kafka_produce",
                    record.topic, self.tag.component
                )))
            } else {
                match producer {
                    None => Err(SendError::Refused(
                        "no Kafka cluster to produce to (flumen test needs --kafka)".into(),
                    )),
                    Some(Err(e)) => Err(SendError::Transient(e.to_owned())),
                    Some(Ok(p)) => acked_producer::send(p, base_record(record)).map_err(classify),
                }
            };
            match queued {
                Ok(ack) => {
                    waits.push((i, ack));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        for (i, ack) in waits {
            let left = self.wait_until.saturating_duration_since(Instant::now());
            results[i] = match ack.recv_timeout(left) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(classify(e)),
                Err(RecvTimeoutError::Timeout) => Err(SendError::Transient(
                    "not acknowledged before the call's deadline (limits.call_timeout_ms); \
                     it may still be written"
                        .into(),
                )),
                Err(RecvTimeoutError::Disconnected) => Err(SendError::Transient(
                    "the producer dropped the record without a result".into(),
                )),
            };
        }
        self.account(&results);
        results
    }

    /// Counts the outcomes and logs the first failure of the call, so that
    /// a broker problem shows in the log without a line per record.
    fn account(&self, results: &[Result<(), SendError>]) {
        let mut counts = [0u64; 4];
        let mut first = None;
        for r in results {
            let i = match r {
                Ok(()) => 0,
                Err(SendError::NotGranted(_)) => 1,
                Err(SendError::Refused(_)) => 2,
                Err(SendError::Transient(_)) => 3,
            };
            counts[i] += 1;
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        self.counts
            .get_or_init(|| {
                super::metrics::ProduceMetrics::new(&self.tag.pipeline, &self.tag.component)
            })
            .add(counts);
        if let Some(e) = first {
            let (topic, partition) = self.tag.topic_partition();
            let (kind, message) = match e {
                SendError::NotGranted(m) => ("not-granted", m),
                SendError::Refused(m) => ("refused", m),
                SendError::Transient(m) => ("transient", m),
            };
            tracing::warn!(target: "flumen::guest", component = %self.tag.component,
                pipeline = %self.tag.pipeline, topic, partition,
                failed = results.len() as u64 - counts[0], of = results.len(), kind,
                "Kafka produce failed: {message}");
        }
    }
}

fn base_record(r: &Outgoing) -> BaseRecord<'_, [u8], [u8]> {
    let record = acked_producer::record(
        &r.topic,
        r.partition,
        r.timestamp,
        r.key.as_deref(),
        r.value.as_deref(),
    );
    if r.headers.is_empty() {
        record
    } else {
        record.headers(acked_producer::copy_headers(&r.headers, 0))
    }
}

fn classify(e: KafkaError) -> SendError {
    if acked_producer::is_permanent(&e) {
        SendError::Refused(e.to_string())
    } else {
        SendError::Transient(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(topics: &[&str]) -> ProduceGrant {
        ProduceGrant::new(
            None,
            topics.iter().map(|t| t.to_string()).collect(),
            &Budgets {
                produce_records_per_send: 2,
                output_bytes_per_call: 20,
                ..Budgets::default()
            },
            GuestTag {
                component: "k".into(),
                pipeline: "p".into(),
                partition: None,
            },
        )
    }

    fn outgoing(topic: &str) -> Outgoing {
        Outgoing {
            topic: topic.into(),
            partition: None,
            timestamp: None,
            key: None,
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_topic_not_granted_is_refused_before_anything_is_sent() {
        let mut g = grant(&["allowed"]);
        g.arm(Duration::from_secs(1));
        let r = g.send(vec![outgoing("other"), outgoing("allowed")]);
        assert!(matches!(&r[0], Err(SendError::NotGranted(m)) if m.contains("`other`")));
        // Granted, but there is no cluster here.
        assert!(matches!(&r[1], Err(SendError::Refused(m)) if m.contains("--kafka")));
    }

    #[test]
    fn records_and_bytes_over_budget_are_refused_before_sending() {
        let mut g = grant(&["t"]);
        g.arm(Duration::from_secs(1));
        let e = g
            .within_budget(&[outgoing("t"), outgoing("t"), outgoing("t")])
            .unwrap_err();
        assert!(
            e.contains("3 records") && e.contains("produce_records_per_send"),
            "{e}"
        );
        // 2 bytes a record (topic + value): ten fit in a call, the eleventh
        // does not, and a new call starts from nothing.
        for _ in 0..5 {
            g.within_budget(&[outgoing("t"), outgoing("t")]).unwrap();
        }
        let e = g.within_budget(&[outgoing("t")]).unwrap_err();
        assert!(
            e.contains("22 bytes") && e.contains("output_bytes_per_call"),
            "{e}"
        );
        assert_eq!(g.take_over_budget(), Some(e));
        g.arm(Duration::from_secs(1));
        g.within_budget(&[outgoing("t")]).unwrap();
    }

    #[test]
    fn the_margin_leaves_time_to_answer() {
        assert_eq!(
            answer_margin(Duration::from_millis(500)),
            Duration::from_millis(100)
        );
        assert_eq!(
            answer_margin(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
    }
}

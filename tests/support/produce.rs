//! Producing test events and reading back what the broker holds: records,
//! committed offsets, whole topics.

use super::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
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

/// The end offset (last offset + 1) of each partition holding `events`.
pub fn end_offsets(events: impl IntoIterator<Item = (i32, i64)>) -> BTreeMap<i32, i64> {
    let mut end = BTreeMap::new();
    for (p, o) in events {
        let e = end.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    end
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
    TestProducer::connect(bootstrap).send(topic, records)
}

/// A test producer kept open across several sends. A test that streams
/// events in slices uses one: a fresh producer per slice costs a
/// connection, a metadata fetch and a shutdown (about 0.2 s against the
/// mock cluster), which stretched each SIGKILL round of the fault suite by
/// two seconds of waiting.
pub struct TestProducer {
    producer: ThreadedProducer<AckContext>,
    context: AckContext,
}

impl TestProducer {
    /// Connects to `bootstrap` (with the security options registered for it).
    pub fn connect(bootstrap: &str) -> Self {
        let context = AckContext::default();
        let producer = client(bootstrap)
            .set("linger.ms", "10")
            .set("queue.buffering.max.messages", "200000")
            .create_with_context(context.clone())
            .expect("producer");
        Self { producer, context }
    }

    /// Produces `records`, waits for every acknowledgement, and returns
    /// per record (in input order) the `(partition, offset)` it got. It
    /// takes `&mut self` because the acknowledgements of concurrent sends
    /// would mix.
    pub fn send(&mut self, topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
        self.context.acked.lock().expect("lock").clear();
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
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        }
        self.producer.flush(Duration::from_secs(60)).expect("flush");
        if let Some(e) = self.context.failed.lock().expect("lock").clone() {
            panic!("test producer: delivery failed: {e}");
        }
        let mut acked = std::mem::take(&mut *self.context.acked.lock().expect("lock"));
        assert_eq!(
            acked.len(),
            records.len(),
            "not every produced event was acknowledged"
        );
        acked.sort();
        acked.into_iter().map(|(_, p, o)| (p, o)).collect()
    }

    /// Like [`produce`], through this producer.
    pub fn produce(
        &mut self,
        topic: &str,
        partitions: i32,
        n: usize,
        poison: impl Fn(usize) -> bool,
    ) -> Produced {
        self.produce_marked(topic, partitions, n, |i| poison(i).then_some("POISON"))
    }

    /// Like [`produce_marked`], through this producer.
    pub fn produce_marked(
        &mut self,
        topic: &str,
        partitions: i32,
        n: usize,
        mark: impl Fn(usize) -> Option<&'static str>,
    ) -> Produced {
        produced(self.send(topic, &numbered(partitions, n, mark)))
    }
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
    TestProducer::connect(bootstrap).produce_marked(topic, partitions, n, mark)
}

/// The test events `0..n`: value `seq=i` (with `mark(i)` appended after a
/// space where it returns a marker), keys over 13 values with every tenth
/// event unkeyed, a `level` header, and invalid UTF-8 in every thousandth.
fn numbered(
    partitions: i32,
    n: usize,
    mark: impl Fn(usize) -> Option<&'static str>,
) -> Vec<Record> {
    (0..n)
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
        .collect()
}

/// What a send of [`numbered`] events was acknowledged as, checked to be
/// a contiguous run of offsets per partition.
fn produced(acked: Vec<(i32, i64)>) -> Produced {
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
    let c: BaseConsumer = client(bootstrap)
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

/// Header `name` of `m` (a dead letter's `flumen.*` headers), as text;
/// panics if it has none.
pub fn header(m: &OwnedMessage, name: &str) -> String {
    m.headers()
        .and_then(|hs| {
            hs.iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
        .unwrap_or_else(|| panic!("dead letter without header {name}"))
}

/// Every record of `topic` (all `partitions`, from the beginning), read until
/// `expected` records arrived or `timeout` passed.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let c: BaseConsumer = client(bootstrap)
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

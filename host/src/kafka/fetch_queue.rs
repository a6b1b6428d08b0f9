//! One librdkafka queue that every assigned partition's messages are routed
//! to, read many messages at a time.
//!
//! rdkafka's `BaseConsumer::poll` hands over one message per call. Each
//! call reads the clock three times (rdkafka once, librdkafka twice, to
//! track `max.poll.interval.ms`), allocates an `Arc` for the message's
//! event, and takes the queue's lock: for 100-byte events that was as much
//! CPU as everything flumen does with the event afterwards. librdkafka's
//! `rd_kafka_consume_batch_queue` takes up to a whole burst per call, with
//! one clock read for all of it.
//!
//! It must not read the consumer queue itself: rebalance events arrive
//! there, and the batch call serves a rebalance event it meets by revoking
//! every partition when no C rebalance callback is set (rdkafka sets none;
//! it takes rebalances as events). So each partition's own fetch queue is
//! forwarded here instead, *before* the partition is assigned
//! ([`FetchQueue::route`], from the rebalance hook). librdkafka forwards a
//! partition to the consumer queue when it starts fetching it, unless the
//! application has forwarded it first; routing first means no message of
//! that partition ever waits on the consumer queue, so the two queues
//! never hold messages of one partition in two places, and order within a
//! partition is the fetch order. Rebalances, commit results and errors stay
//! on the consumer queue, served by `poll` between reads.

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;
use std::ffi::CString;
use std::time::Duration;

/// The queue all assigned partitions' messages are routed to.
pub struct FetchQueue {
    queue: *mut rd::rd_kafka_queue_t,
}

// SAFETY: a librdkafka queue handle may be used from any thread; the queue
// does its own locking. The handle is destroyed once, in `Drop`.
unsafe impl Send for FetchQueue {}
// SAFETY: as above; every operation on it is a thread-safe librdkafka call.
unsafe impl Sync for FetchQueue {}

impl FetchQueue {
    /// A new, empty queue of `consumer`'s client. It must be dropped before
    /// the consumer is closed, or closing waits for its handle.
    pub fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Self {
        // SAFETY: the client pointer is valid while `consumer` lives; the
        // new queue holds its own reference to the client's internals.
        let queue = unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) };
        Self { queue }
    }

    /// Routes the messages of each partition in `tpl` to this queue. Called
    /// before the partitions are assigned (see the module docs). Returns the
    /// partitions that could not be routed: librdkafka could not name them
    /// (a topic name with a NUL byte); their messages stay on the consumer
    /// queue, where `poll` hands them over.
    pub fn route<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Vec<(String, i32)> {
        tpl.elements()
            .iter()
            .filter(|el| !self.forward(consumer, el.topic(), el.partition(), self.queue))
            .map(|el| (el.topic().to_owned(), el.partition()))
            .collect()
    }

    /// Stops handing `partition`'s messages to this queue: flumen's pause.
    /// What librdkafka fetches for it from now on waits on the partition's
    /// own queue ([`FetchQueue::held`] counts it). Unlike
    /// `rd_kafka_pause_partitions`, which drops what was fetched ahead and
    /// fetches it again on resume, nothing is dropped, so a short pause
    /// costs no round trip to the broker. Returns whether librdkafka knows
    /// the partition.
    pub fn hold<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
    ) -> bool {
        self.forward(consumer, topic, partition, std::ptr::null_mut())
    }

    /// Undoes [`FetchQueue::hold`]: librdkafka moves what waited on the
    /// partition's queue to the end of this one, as one block and in order,
    /// and forwards what it fetches next. Messages of the partition already
    /// here were fetched before those, so order within the partition holds.
    pub fn release<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
    ) -> bool {
        self.forward(consumer, topic, partition, self.queue)
    }

    /// How many messages (and errors) wait on a held partition's own queue;
    /// `None` if librdkafka does not know the partition.
    pub fn held<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
    ) -> Option<usize> {
        let queue = PartitionQueue::get(consumer, topic, partition)?;
        // SAFETY: a valid queue handle, released when `queue` drops.
        Some(unsafe { rd::rd_kafka_queue_length(queue.0) })
    }

    /// Forwards `partition`'s fetch queue to `to` (null: to none).
    fn forward<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
        to: *mut rd::rd_kafka_queue_t,
    ) -> bool {
        let Some(queue) = PartitionQueue::get(consumer, topic, partition) else {
            return false;
        };
        // SAFETY: a valid queue handle; `to` is this queue or null. The
        // forwarding holds its own reference to `to`.
        unsafe { rd::rd_kafka_queue_forward(queue.0, to) };
        true
    }
    /// Waits up to `wait` for a message, then takes what is there, up to
    /// `max` messages, onto the end of `into`.
    pub fn read(&self, wait: Duration, max: usize, into: &mut Fetched) {
        let had = into.messages.len();
        into.messages.reserve(max);
        let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `into.messages` has room for `max` more pointers;
        // librdkafka writes at most that many and returns how many it
        // wrote. Each is then owned by `into`, which destroys it.
        unsafe {
            let n = rd::rd_kafka_consume_batch_queue(
                self.queue,
                wait_ms,
                into.messages.as_mut_ptr().add(had),
                max,
            );
            if n > 0 {
                into.messages.set_len(had + n as usize);
            }
        }
    }
}

/// A handle on one partition's own fetch queue, released on drop.
struct PartitionQueue(*mut rd::rd_kafka_queue_t);

impl PartitionQueue {
    /// `None` if the topic name has a NUL byte or librdkafka does not know
    /// the partition.
    fn get<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
    ) -> Option<Self> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: a valid client and a NUL-terminated topic name.
        let queue = unsafe {
            rd::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
            )
        };
        (!queue.is_null()).then_some(Self(queue))
    }
}

impl Drop for PartitionQueue {
    fn drop(&mut self) {
        // SAFETY: obtained in `get`, released once here.
        unsafe { rd::rd_kafka_queue_destroy(self.0) };
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once here.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}

/// Messages taken from a [`FetchQueue`], owned until cleared: librdkafka
/// lends their bytes until each is destroyed.
#[derive(Default)]
pub struct Fetched {
    messages: Vec<*mut rd::rd_kafka_message_t>,
}

impl Fetched {
    /// The messages, in the order they were read.
    pub fn iter(&self) -> impl Iterator<Item = Lent<'_>> {
        // SAFETY: each pointer came from `rd_kafka_consume_batch_queue` and
        // is not destroyed before `clear`, which needs `&mut self`.
        self.messages.iter().map(|&m| unsafe { Lent::from_ptr(m) })
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Gives every message back to librdkafka.
    pub fn clear(&mut self) {
        for m in self.messages.drain(..) {
            // SAFETY: owned by this batch (see `FetchQueue::read`).
            unsafe { rd::rd_kafka_message_destroy(m) };
        }
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        self.clear();
    }
}

/// One message as librdkafka lent it: read in place, never copied here.
#[derive(Clone, Copy)]
pub struct Lent<'a> {
    msg: &'a rd::rd_kafka_message_t,
}

impl<'a> Lent<'a> {
    /// Views the message at `ptr`.
    ///
    /// # Safety
    /// `ptr` is a valid message that librdkafka does not destroy for `'a`.
    pub unsafe fn from_ptr(ptr: *const rd::rd_kafka_message_t) -> Self {
        // SAFETY: as the caller promises.
        Self {
            msg: unsafe { &*ptr },
        }
    }

    /// The raw message, for librdkafka calls about it.
    pub fn ptr(&self) -> *const rd::rd_kafka_message_t {
        self.msg
    }

    /// The error librdkafka delivered in place of a message, if it is one
    /// (the end of a partition, or a record it cannot decode), as rdkafka's
    /// `poll` reports it.
    pub fn error(&self) -> Option<KafkaError> {
        match self.msg.err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => None,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                Some(KafkaError::PartitionEOF(self.msg.partition))
            }
            err => Some(KafkaError::MessageConsumption(err.into())),
        }
    }

    /// The topic handle: the same pointer for every message of one topic,
    /// so it tells cheaply whether the topic changed since the last message.
    pub fn topic_handle(&self) -> *const rd::rd_kafka_topic_t {
        self.msg.rkt
    }

    /// The topic's name, or `None` if it is not UTF-8 (Kafka topic names
    /// are ASCII; librdkafka does not check).
    pub fn topic(&self) -> Option<&'a str> {
        // SAFETY: a message's topic handle and its NUL-terminated name live
        // as long as the message.
        unsafe {
            let name = rd::rd_kafka_topic_name(self.msg.rkt);
            if name.is_null() {
                return None;
            }
            std::ffi::CStr::from_ptr(name).to_str().ok()
        }
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.msg.partition
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.msg.offset
    }

    /// The key, if the record has one (`None` is Kafka's null key).
    pub fn key(&self) -> Option<&'a [u8]> {
        // SAFETY: a non-null key points at `key_len` bytes owned by the
        // message.
        (!self.msg.key.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(self.msg.key.cast(), self.msg.key_len) })
    }

    /// The value, if the record has one (`None` is Kafka's null value).
    pub fn value(&self) -> Option<&'a [u8]> {
        // SAFETY: a non-null payload points at `len` bytes owned by the
        // message.
        (!self.msg.payload.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(self.msg.payload.cast(), self.msg.len) })
    }

    /// The record's timestamp in milliseconds, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a valid message and a valid out-pointer.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.msg, &mut kind) };
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ms != -1)
            .then_some(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::Rebalance;
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::{ClientConfig, ClientContext};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Routes each assignment before it starts, as flumen's rebalance hook
    /// does.
    #[derive(Default)]
    struct Routing(Mutex<Option<Arc<FetchQueue>>>);

    impl ClientContext for Routing {}

    impl ConsumerContext for Routing {
        fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
            if let (Rebalance::Assign(tpl), Ok(fetch)) = (rebalance, self.0.lock()) {
                if let Some(fetch) = fetch.as_ref() {
                    assert!(fetch.route(consumer, tpl).is_empty(), "not routed");
                }
            }
        }
    }

    /// Takes the fetch queue back out of the consumer's context when a test
    /// ends, passing or not: closing the consumer waits for every queue
    /// handle, so a failed assertion would otherwise hang instead of fail.
    struct Unroute<'a>(&'a BaseConsumer<Routing>);

    impl Drop for Unroute<'_> {
        fn drop(&mut self) {
            if let Ok(mut fetch) = self.0.context().0.lock() {
                *fetch = None;
            }
        }
    }

    /// A producer to the mock cluster at `bootstrap`.
    fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("producer")
    }

    /// Sends `value` to `partition` of topic `t`.
    fn send(producer: &ThreadedProducer<DefaultProducerContext>, partition: i32, value: &str) {
        producer
            .send(
                BaseRecord::<(), _>::to("t")
                    .partition(partition)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .expect("send");
    }

    /// A consumer whose assignments are routed to the returned queue before
    /// they start, as flumen's are. Subscribe once an [`Unroute`] guards it.
    fn routed_consumer(bootstrap: &str) -> (BaseConsumer<Routing>, Arc<FetchQueue>) {
        let consumer: BaseConsumer<Routing> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "g")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Routing::default())
            .expect("consumer");
        let fetch = Arc::new(FetchQueue::new(&consumer));
        *consumer.context().0.lock().expect("lock") = Some(fetch.clone());
        (consumer, fetch)
    }

    /// The ordering argument of the module docs, checked: every message of
    /// a routed partition comes through the fetch queue, none through the
    /// consumer queue, and each partition's in offset order with nothing
    /// missing.
    #[test]
    fn routed_partitions_arrive_only_on_the_fetch_queue_in_order() {
        const PARTITIONS: i32 = 3;
        const EVENTS: i64 = 3000;
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("t", PARTITIONS, 1).expect("topic");
        let bootstrap = cluster.bootstrap_servers();
        let producer = producer(&bootstrap);
        for i in 0..EVENTS {
            send(
                &producer,
                (i % i64::from(PARTITIONS)) as i32,
                &i.to_string(),
            );
        }
        producer.flush(Duration::from_secs(10)).expect("flush");

        let (consumer, fetch) = routed_consumer(&bootstrap);
        let _unroute = Unroute(&consumer);
        consumer.subscribe(&["t"]).expect("subscribe");

        let mut next = [0i64; PARTITIONS as usize];
        let mut read = 0;
        let mut fetched = Fetched::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while read < EVENTS {
            assert!(Instant::now() < deadline, "read {read} of {EVENTS}");
            if let Some(Ok(m)) = consumer.poll(Duration::ZERO) {
                panic!("partition {} read on the consumer queue", m.partition());
            }
            fetch.read(Duration::from_millis(10), 500, &mut fetched);
            for m in fetched.iter().filter(|m| m.error().is_none()) {
                let p = m.partition();
                assert_eq!(m.topic(), Some("t"));
                assert_eq!(m.offset(), next[p as usize], "partition {p} out of order");
                let i = m.offset() * i64::from(PARTITIONS) + i64::from(p);
                assert_eq!(m.value(), Some(i.to_string().as_bytes()));
                assert_eq!(m.key(), None);
                assert!(m.timestamp().is_some());
                next[p as usize] += 1;
                read += 1;
            }
            fetched.clear();
        }
    }

    /// flumen's pause: a held partition's messages wait on its own queue
    /// (counted by `held`) and none reaches the fetch queue; released, they
    /// all arrive, in order, and the other partitions flow throughout.
    #[test]
    fn a_held_partition_waits_on_its_own_queue_and_resumes_in_order() {
        const PARTITIONS: i32 = 2;
        const EACH: i64 = 500;
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("t", PARTITIONS, 1).expect("topic");
        let bootstrap = cluster.bootstrap_servers();
        let producer = producer(&bootstrap);
        let produce = |round: i64| {
            for i in round * EACH..(round + 1) * EACH {
                for partition in 0..PARTITIONS {
                    send(&producer, partition, &i.to_string());
                }
            }
            producer.flush(Duration::from_secs(10)).expect("flush");
        };
        let (consumer, fetch) = routed_consumer(&bootstrap);
        let _unroute = Unroute(&consumer);
        consumer.subscribe(&["t"]).expect("subscribe");

        let mut next = [0i64; PARTITIONS as usize];
        // Reads until `until` says stop, checking order and content.
        fn read_until(
            consumer: &BaseConsumer<Routing>,
            fetch: &FetchQueue,
            next: &mut [i64],
            until: impl Fn(&[i64]) -> bool,
        ) {
            let mut fetched = Fetched::default();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !until(next) {
                assert!(Instant::now() < deadline, "read only {next:?}");
                consumer.poll(Duration::ZERO);
                fetch.read(Duration::from_millis(10), 500, &mut fetched);
                for m in fetched.iter().filter(|m| m.error().is_none()) {
                    let p = m.partition() as usize;
                    assert_eq!(m.offset(), next[p], "partition {p} out of order");
                    assert_eq!(m.value(), Some(m.offset().to_string().as_bytes()));
                    next[p] += 1;
                }
                fetched.clear();
            }
        }
        produce(0);
        read_until(&consumer, &fetch, &mut next, |n| {
            n.iter().all(|&n| n == EACH)
        });

        assert!(fetch.hold(&consumer, "t", 0));
        produce(1);
        // Partition 1 goes on while partition 0 is held.
        read_until(&consumer, &fetch, &mut next, |n| n[1] == 2 * EACH);
        let deadline = Instant::now() + Duration::from_secs(30);
        while fetch.held(&consumer, "t", 0) != Some(EACH as usize) {
            assert!(
                Instant::now() < deadline,
                "held {:?}",
                fetch.held(&consumer, "t", 0)
            );
            consumer.poll(Duration::from_millis(10));
        }
        let mut fetched = Fetched::default();
        fetch.read(Duration::from_millis(200), 500, &mut fetched);
        assert!(
            fetched
                .iter()
                .all(|m| m.partition() != 0 || m.error().is_some()),
            "a held partition's message reached the fetch queue"
        );
        fetched.clear();
        assert_eq!(next[0], EACH);

        assert!(fetch.release(&consumer, "t", 0));
        read_until(&consumer, &fetch, &mut next, |n| n[0] == 2 * EACH);
        assert_eq!(fetch.held(&consumer, "t", 0), Some(0));
    }
}

//! The Kafka side of a pipeline: one consumer-group member, polled by one
//! thread that owns it.
//!
//! The thread reads messages, hands each to its partition's worker queue,
//! pauses a partition whose queue is full (and resumes it when it drains),
//! and commits the offsets the workers publish on revoke and on shutdown; a
//! committer thread beside it commits them periodically, so that a commit's
//! round trip to the broker does not stop consumption. It uses rdkafka's
//! `BaseConsumer` driven by a plain loop rather than `StreamConsumer`: every
//! librdkafka callback (rebalances, commit results) then runs on this one
//! thread at a known point, and there is no waker to lose after a rebalance
//! (the stall of rust-rdkafka#638).
//!
//! Auto-commit and auto offset store are off: an offset is committed only
//! when the partition's tracker says everything before it is finalized.

use crate::batcher::event_bytes;
use crate::config::{Config, PipelineConfig};
use crate::partition::{self, Components, PartitionShared};
use crate::runtime::bindings::{Event, Header};
use crate::stats::PipelineStats;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often refused commits of revoked partitions are tried again.
const REVOKED_RETRY: Duration = Duration::from_millis(500);

/// Messages read back to back, without waiting, before the events gathered
/// are handed to the workers. Handing events over one at a time costs a
/// channel send and usually a thread wake-up each, which dominated the cost
/// of small events; a burst is handed over as one chunk per partition.
const BURST: usize = 1000;

/// A partition this member is working on.
struct PartitionHandle {
    tx: Sender<Vec<Event>>,
    /// Events read in the current burst, not yet handed to the worker. If
    /// the partition is revoked first they are dropped with the handle:
    /// never handed over, so never committed, so read again by the next
    /// owner.
    pending: Vec<Event>,
    /// Their bytes, as [`event_bytes`] counts them. The worker's queue
    /// counters are raised once per chunk, not once per event: the worker
    /// lowers them from another core, and an atomic add per event made
    /// their cache line bounce between the two.
    pending_bytes: usize,
    shared: Arc<PartitionShared>,
    thread: std::thread::JoinHandle<()>,
    paused: bool,
    /// Last offset read for the worker; guards against re-reads.
    last_offset: i64,
}

impl PartitionHandle {
    /// Hands the pending events to the worker, in order, as one chunk.
    fn flush(&mut self, topic: &str, partition: i32) {
        if self.pending.is_empty() {
            return;
        }
        let chunk = std::mem::take(&mut self.pending);
        // Counted before the send, so the worker never lowers a counter
        // below zero.
        self.shared.queued.fetch_add(chunk.len(), Ordering::AcqRel);
        self.shared
            .queued_bytes
            .fetch_add(std::mem::take(&mut self.pending_bytes), Ordering::AcqRel);
        if self.tx.send(chunk).is_err() {
            tracing::error!(%topic, partition,
                "partition worker has stopped; events of this partition are not processed \
                 or committed until it is reassigned or flumen restarts");
        }
    }
}

/// Looked up once per message, so keyed with rustc's Fx hash rather than
/// SipHash: the keys are the broker's topic names and partition numbers of
/// this member's own assignment, not input an attacker chooses freely, and
/// SipHash of the key was a visible share of the consumer thread's time.
type Partitions = HashMap<(String, i32), PartitionHandle, rustc_hash::FxBuildHasher>;

/// The rdkafka context: where librdkafka's rebalance and commit callbacks
/// land. Both run inside `poll`, on the consumer thread.
struct PipelineContext {
    partitions: Arc<Mutex<Partitions>>,
    /// Offsets of revoked partitions whose commit the broker refused during
    /// the rebalance; committed once it settles (see `retry_revoked`).
    revoked_uncommitted: Mutex<Vec<(String, i32, i64)>>,
    /// Held by the committer thread for each periodic commit and by the
    /// revoke callback for the whole revocation, so a periodic commit never
    /// lands after the revoke's own commit of a partition (a stale offset
    /// there would send the next owner back over finalized events).
    commit_lock: Mutex<()>,
    stats: Arc<PipelineStats>,
    drain_timeout: Duration,
    pipeline: String,
}

/// The part of librdkafka's statistics JSON flumen reads. Parsed by itself,
/// rather than through rdkafka's full `Statistics`, so that a field a
/// librdkafka version adds or drops elsewhere cannot fail the parse.
#[derive(serde::Deserialize)]
struct RdStats {
    #[serde(default)]
    topics: HashMap<String, RdTopic>,
}

#[derive(serde::Deserialize)]
struct RdTopic {
    #[serde(default)]
    partitions: HashMap<String, RdPartition>,
}

#[derive(serde::Deserialize)]
struct RdPartition {
    partition: i32,
    #[serde(default)]
    desired: bool,
    #[serde(default = "unknown_offset")]
    hi_offset: i64,
}

fn unknown_offset() -> i64 {
    -1
}

impl ClientContext for PipelineContext {
    // librdkafka's statistics (every `statistics.interval.ms`, on the
    // consumer thread): the high watermarks, for the lag.
    fn stats_raw(&self, statistics: &[u8]) {
        let parsed: RdStats = match serde_json::from_slice(statistics) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read librdkafka's statistics");
                return;
            }
        };
        let marks = parsed
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .into_values()
                    // -1 is librdkafka's internal unassigned partition;
                    // `desired` marks the partitions this member consumes.
                    .filter(|p| p.partition >= 0 && p.desired && p.hi_offset >= 0)
                    .map(move |p| ((topic.clone(), p.partition), p.hi_offset))
            })
            .collect();
        self.stats.set_high_watermarks(marks);
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                tracing::info!(pipeline = %self.pipeline, partitions = ?revoked, "partitions revoked; draining");
                let _no_periodic_commit = lock(&self.commit_lock);
                let handles: Vec<_> = {
                    let mut parts = lock(&self.partitions);
                    revoked
                        .iter()
                        .filter_map(|k| parts.remove_entry(k))
                        .collect()
                };
                // The commit must happen before the partitions are released,
                // or the next owner starts from an older offset. Apache Kafka
                // accepts it here; brokers that refuse commits while the group
                // is rebalancing (librdkafka's mock cluster) get it again
                // once the rebalance is over.
                let offsets = drain(handles, self.drain_timeout);
                if !commit(consumer, &offsets, &self.stats) {
                    lock(&self.revoked_uncommitted).extend(offsets);
                }
            }
            Rebalance::Assign(tpl) => {
                self.stats.joined.store(true, Ordering::Release);
                tracing::info!(pipeline = %self.pipeline, count = tpl.count(), "partitions assigned");
            }
            Rebalance::Error(e) => {
                tracing::error!(pipeline = %self.pipeline, error = %e, "rebalance error")
            }
        }
    }

    // librdkafka keeps a partition's application pause flag through an
    // unassignment (its assignment code resets only its own, library pause
    // flag), while flumen forgets a pause with the revoked worker and
    // resumes only partitions it knows it paused. A partition paused when
    // revoked and later assigned to this member again could then stay
    // paused for good. Every newly assigned partition is therefore resumed;
    // resuming one that is not paused does nothing. (The fault suite's
    // `rebalance-while-paused` drives this path; it has not caught such a
    // stall without this guard.)
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(pipeline = %self.pipeline, error = %e,
                    "cannot resume the newly assigned partitions; one paused before a rebalance \
                     may not be fetched");
            }
        }
    }

    // Results of the commits librdkafka makes by itself (on close); flumen's
    // own commits are synchronous and record their result directly.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => record_committed(&self.stats, offsets),
            Err(e) => tracing::warn!(pipeline = %self.pipeline, error = %e,
                "offset commit failed; the offsets are committed again on the next commit"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker never holds these locks, so poisoning can only come from a
    // panic on the consumer thread itself; the data is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn record_committed(stats: &PipelineStats, offsets: &TopicPartitionList) {
    for e in offsets.elements() {
        if let Offset::Offset(o) = e.offset() {
            stats.set_committed(e.topic(), e.partition(), o);
        }
    }
}

/// Stops the given workers, waits up to `timeout` for their in-flight
/// batches, and returns what each has finalized: `(topic, partition, offset)`.
fn drain(
    handles: Vec<((String, i32), PartitionHandle)>,
    timeout: Duration,
) -> Vec<(String, i32, i64)> {
    let deadline = Instant::now() + timeout;
    for (_, h) in &handles {
        h.shared.stop.store(true, Ordering::Release);
    }
    let mut offsets = Vec::new();
    for ((topic, partition), h) in handles {
        drop(h.tx);
        while !h.shared.done.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.shared.done.load(Ordering::Acquire) {
            let _ = h.thread.join();
        } else {
            tracing::warn!(%topic, partition, "in-flight batch did not finish within the drain \
                timeout; committing what is finalized, the rest will be redelivered");
        }
        if let Some(c) = h.shared.committable() {
            offsets.push((topic, partition, c));
        }
    }
    offsets
}

/// Commits `(topic, partition, offset)` triples and records what the broker
/// acknowledged. Returns whether it did; a failure is logged.
fn commit(
    consumer: &BaseConsumer<PipelineContext>,
    offsets: &[(String, i32, i64)],
    stats: &PipelineStats,
) -> bool {
    if offsets.is_empty() {
        return true;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::error!(%topic, partition, error = %e, "cannot build commit request");
            return false;
        }
    }
    tracing::debug!(?offsets, "committing");
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            record_committed(stats, &tpl);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed; it is retried");
            false
        }
    }
}

/// One running consumer-group member for one pipeline.
pub struct PipelineConsumer {
    consumer: Arc<BaseConsumer<PipelineContext>>,
    partitions: Arc<Mutex<Partitions>>,
    pipeline: PipelineConfig,
    components: Components,
    stats: Arc<PipelineStats>,
}

impl PipelineConsumer {
    /// Creates the consumer and subscribes to the pipeline's topics.
    pub fn new(
        config: &Config,
        pipeline: &PipelineConfig,
        components: Components,
        stats: Arc<PipelineStats>,
    ) -> KafkaResult<Self> {
        let mut cc = ClientConfig::new();
        // Operator-friendly defaults that [kafka.options] may override.
        cc.set("auto.offset.reset", "earliest");
        // Bound librdkafka's own prefetch; flumen queues per partition too.
        cc.set("queued.max.messages.kbytes", "65536");
        // Once that prefetch queue is full, librdkafka waits this long
        // before fetching again (default 1000 ms). flumen drains it in bursts,
        // so with small events the default left the pipeline idle most of
        // every second: 137k → 458k events/s of 100 bytes in the benchmark.
        cc.set("fetch.queue.backoff.ms", "10");
        // High watermarks, for the lag in `/metrics` and the progress
        // lines; parsing them every 5 s costs next to nothing.
        cc.set("statistics.interval.ms", "5000");
        for (k, v) in config.kafka_options() {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &config.kafka.bootstrap_servers)
            .set("group.id", &pipeline.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let partitions = Arc::new(Mutex::new(Partitions::default()));
        let context = PipelineContext {
            partitions: partitions.clone(),
            revoked_uncommitted: Mutex::new(Vec::new()),
            commit_lock: Mutex::new(()),
            stats: stats.clone(),
            drain_timeout: pipeline.drain_timeout(),
            pipeline: pipeline.name.clone(),
        };
        let consumer: BaseConsumer<PipelineContext> = cc.create_with_context(context)?;
        let topics: Vec<&str> = pipeline.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            partitions,
            pipeline: pipeline.clone(),
            components,
            stats,
        })
    }

    /// Runs until `shutdown` is set, then drains, commits and leaves the group.
    pub fn run(self, shutdown: &AtomicBool) {
        self.stats.consumer_alive.store(true, Ordering::Release);
        // Cleared however the thread ends, for `/ready`.
        struct Alive<'a>(&'a PipelineStats);
        impl Drop for Alive<'_> {
            fn drop(&mut self) {
                self.0.consumer_alive.store(false, Ordering::Release);
            }
        }
        let _alive = Alive(&self.stats);
        let committer = match Committer::spawn(
            &self.pipeline,
            self.consumer.clone(),
            self.partitions.clone(),
            self.stats.clone(),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(pipeline = %self.pipeline.name, error = %e,
                    "cannot start the committer thread; the pipeline does not start");
                return;
            }
        };
        let mut last_revoked_retry = Instant::now();
        let mut key = (String::new(), 0);
        while !shutdown.load(Ordering::Acquire) {
            // Wait for one message, then take what is already there.
            let mut wait = Duration::from_millis(100);
            for _ in 0..BURST {
                match self.consumer.poll(wait) {
                    None => break,
                    Some(Ok(msg)) => self.dispatch(&msg, &mut key),
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        tracing::warn!(pipeline = %self.pipeline.name, error = %e, "consumer error")
                    }
                }
                wait = Duration::ZERO;
            }
            self.flush_all();
            self.resume_drained();
            if last_revoked_retry.elapsed() >= REVOKED_RETRY {
                self.retry_revoked();
                last_revoked_retry = Instant::now();
            }
        }
        committer.stop();
        tracing::info!(pipeline = %self.pipeline.name, "shutting down: finishing in-flight batches");
        let handles: Vec<_> = lock(&self.partitions).drain().collect();
        let offsets = drain(handles, self.pipeline.drain_timeout());
        commit(&self.consumer, &offsets, &self.stats);
        self.consumer.unsubscribe();
        tracing::info!(pipeline = %self.pipeline.name, "consumer stopped");
    }

    /// Queues one message for its partition's worker, starting the worker on
    /// the partition's first message. `key` is scratch space reused across
    /// calls, so that finding the partition allocates nothing.
    fn dispatch(&self, msg: &BorrowedMessage<'_>, key: &mut (String, i32)) {
        key.0.clear();
        key.0.push_str(msg.topic());
        key.1 = msg.partition();
        let key = &*key;
        let mut parts = lock(&self.partitions);
        if let Some(h) = parts.get_mut(key) {
            self.queue(h, key, msg);
            return;
        }
        let (tx, rx) = channel();
        match partition::spawn(
            &self.pipeline,
            &self.components,
            self.stats.clone(),
            &key.0,
            key.1,
            rx,
        ) {
            Ok((shared, thread)) => {
                tracing::info!(pipeline = %self.pipeline.name, topic = %key.0,
                    partition = key.1, offset = msg.offset(),
                    "first event of the partition read; its worker started");
                let h = parts.entry(key.clone()).or_insert(PartitionHandle {
                    tx,
                    pending: Vec::new(),
                    pending_bytes: 0,
                    shared,
                    thread,
                    paused: false,
                    last_offset: -1,
                });
                self.queue(h, key, msg);
            }
            Err(e) => {
                // Not handing the event on leaves it uncommitted; it is
                // read again after a restart.
                tracing::error!(topic = %key.0, partition = key.1, error = %e, "cannot start partition worker");
            }
        }
    }

    /// Adds one message to its partition's pending events, and pauses the
    /// partition once its queue is full.
    fn queue(&self, h: &mut PartitionHandle, key: &(String, i32), msg: &BorrowedMessage<'_>) {
        if msg.offset() <= h.last_offset {
            tracing::debug!(offset = msg.offset(), "offset already queued; skipped");
            return;
        }
        h.last_offset = msg.offset();
        let event = to_event(msg);
        h.pending_bytes += event_bytes(&event);
        h.pending.push(event);
        let queued = h.shared.queued.load(Ordering::Acquire) + h.pending.len();
        let queued_bytes = h.shared.queued_bytes.load(Ordering::Acquire) + h.pending_bytes;
        if !h.paused
            && (queued >= self.pipeline.max_queued_events
                || queued_bytes >= self.pipeline.max_queued_bytes)
            && self.set_paused(key, true)
        {
            h.paused = true;
        }
    }

    /// Hands every partition's pending events to its worker.
    fn flush_all(&self) {
        for ((topic, partition), h) in lock(&self.partitions).iter_mut() {
            h.flush(topic, *partition);
        }
    }

    /// Commits the final offsets of revoked partitions that the broker refused
    /// during the rebalance. Kafka lets any group member commit for any
    /// partition, and each of these offsets is a watermark this member
    /// finalized, so committing it late never skips an undelivered event. It
    /// is only sent where it still advances the group's committed offset, so
    /// it does not move back what the new owner has committed since.
    fn retry_revoked(&self) {
        let pending = std::mem::take(&mut *lock(&self.consumer.context().revoked_uncommitted));
        if pending.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, _) in &pending {
            tpl.add_partition(topic, *partition);
        }
        let current = match self.consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read committed offsets yet");
                lock(&self.consumer.context().revoked_uncommitted).extend(pending);
                return;
            }
        };
        let advancing: Vec<_> = pending
            .into_iter()
            .filter(
                |(t, p, o)| match current.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(c)) => *o > c,
                    _ => true,
                },
            )
            .collect();
        if advancing.is_empty() {
            tracing::debug!("the group's committed offsets are already at or past them");
        } else if commit(&self.consumer, &advancing, &self.stats) {
            tracing::info!(pipeline = %self.pipeline.name, offsets = ?advancing,
                "committed the final offsets of revoked partitions after the rebalance");
        } else {
            lock(&self.consumer.context().revoked_uncommitted).extend(advancing);
        }
    }

    /// Resumes paused partitions whose queue has drained to half, in events
    /// and in bytes.
    fn resume_drained(&self) {
        let mut parts = lock(&self.partitions);
        for (key, h) in parts.iter_mut().filter(|(_, h)| h.paused) {
            if h.shared.queued.load(Ordering::Acquire) <= self.pipeline.max_queued_events / 2
                && h.shared.queued_bytes.load(Ordering::Acquire)
                    <= self.pipeline.max_queued_bytes / 2
                && self.set_paused(key, false)
            {
                h.paused = false;
            }
        }
    }

    fn set_paused(&self, (topic, partition): &(String, i32), pause: bool) -> bool {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, *partition);
        let r = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        match r {
            Ok(()) => {
                let what = if pause {
                    "partition paused"
                } else {
                    "partition resumed"
                };
                tracing::debug!(%topic, partition, "{what}");
                true
            }
            Err(e) => {
                tracing::warn!(%topic, partition, pause, error = %e, "cannot pause/resume partition");
                false
            }
        }
    }
}

/// The thread that commits what the partition workers have finalized, every
/// `commit.interval_ms`.
///
/// Commits are synchronous: rdkafka 0.39 never reports the result of a
/// manual async commit (fede1024/rust-rdkafka#856), and flumen must know what
/// the broker acknowledged, not just what it asked for. On the polling
/// thread each commit's broker round trip stopped consumption, which cost
/// 5–20 % of throughput when committing after every batch; here it runs
/// beside it.
struct Committer {
    /// Dropping it wakes the thread and ends it.
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Committer {
    fn spawn(
        pipeline: &PipelineConfig,
        consumer: Arc<BaseConsumer<PipelineContext>>,
        partitions: Arc<Mutex<Partitions>>,
        stats: Arc<PipelineStats>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        let every = Duration::from_millis(pipeline.commit.interval_ms);
        let thread = std::thread::Builder::new()
            .name(format!("flumen-commit-{}", pipeline.name))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _exclusive = lock(&consumer.context().commit_lock);
                    commit_published(&consumer, &partitions, &stats);
                }
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread after its current commit; the final commit is the
    /// caller's.
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Commits every partition whose published offset the broker has not yet
/// acknowledged; a failed commit is simply sent again next time.
fn commit_published(
    consumer: &BaseConsumer<PipelineContext>,
    partitions: &Mutex<Partitions>,
    stats: &PipelineStats,
) {
    let acknowledged = stats.committed();
    let offsets: Vec<(String, i32, i64)> = lock(partitions)
        .iter()
        .filter_map(|((t, p), h)| {
            let c = h.shared.committable()?;
            (acknowledged.get(&(t.clone(), *p)) != Some(&c)).then(|| (t.clone(), *p, c))
        })
        .collect();
    commit(consumer, &offsets, stats);
}

/// Copies a message out of librdkafka's buffer into the event the guests see.
/// Its topic and partition are the worker's, passed once per batch.
fn to_event(msg: &BorrowedMessage<'_>) -> Event {
    Event {
        offset: msg.offset(),
        timestamp: msg.timestamp().to_millis(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers: headers_of(msg),
    }
}

/// The message's headers, read through librdkafka's C API.
///
/// rdkafka 0.39's own header iterator unwraps the UTF-8 conversion of each
/// header name (`BorrowedHeaders::try_get`), so a record whose producer put
/// bytes that are not UTF-8 in a header name would panic the consumer
/// thread. Kafka specifies header names as UTF-8 strings and the WIT
/// `header.name` is a string, so such a name is converted lossily (U+FFFD
/// for each bad sequence); values are kept byte for byte.
fn headers_of(msg: &BorrowedMessage<'_>) -> Vec<Header> {
    use rdkafka::bindings as rd;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR as OK;
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the message librdkafka lent for `msg`'s
    // lifetime; the headers it returns belong to that message and are only
    // read before this function returns.
    if unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut hdrs) } != OK || hdrs.is_null() {
        return Vec::new();
    }
    // SAFETY: `hdrs` is valid (above).
    let count = unsafe { rd::rd_kafka_header_cnt(hdrs) };
    (0..count)
        .filter_map(|i| {
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            let mut value: *const std::os::raw::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `i < count`; the out-pointers are valid locals.
            let err =
                unsafe { rd::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size) };
            if err != OK || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka stores header names NUL-terminated, and a
            // non-null value points at `size` bytes, both owned by `hdrs`.
            let (name, value) = unsafe {
                (
                    std::ffi::CStr::from_ptr(name)
                        .to_string_lossy()
                        .into_owned(),
                    if value.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec()
                    },
                )
            };
            Some(Header { name, value })
        })
        .collect()
}

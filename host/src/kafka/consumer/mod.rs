//! The Kafka side of a pipeline: one consumer-group member, polled by one
//! thread that owns it.
//!
//! The thread reads messages in bursts from the [`FetchQueue`] every
//! assigned partition is routed to, hands each to its partition's worker queue,
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
//!
//! Beside the poll loop here: [`pause`] holds a full partition back and
//! lets it go again, and [`late_commit`] sends the revoke-time commits the
//! broker refused during a rebalance.

mod late_commit;
mod pause;

use super::assignment::{drain, lock, PartitionHandle, Partitions};
use super::client_config;
use super::commit::{commit, Committer};
use super::commit_rule::CommitRule;
use super::fence::{Fence, Watch};
use super::fetch_queue::{FetchQueue, Fetched, Lent};
use super::handoff::PartitionWorkers;
use super::message::push_message;
use super::rebalance::PipelineContext;
use super::unreadable::{self, Suspects};
use crate::config::{Config, PipelineConfig};
use crate::contract::Batch;
use crate::stats::PipelineStats;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::Offset;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often refused commits of revoked partitions are tried again.
const REVOKED_RETRY: Duration = Duration::from_millis(500);

/// Messages read back to back, without waiting, before the events gathered
/// are handed to the workers. Handing events over one at a time costs a
/// channel send and usually a thread wake-up each, which dominated the cost
/// of small events; a burst is handed over as one chunk per partition.
const BURST: usize = 1000;

/// How long the loop waits for a message when there is none. Rebalances
/// and commit results arrive on the consumer queue, which is served between
/// waits (see [`FetchQueue`]), so this is also how late a rebalance hook
/// may start.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// Events served from the consumer queue per loop: rebalances, commit
/// results, errors (each `poll` serves at most one).
const EVENTS_PER_LOOP: usize = 16;

/// How long the loop waits for a message while a partition is paused: a
/// paused partition is resumed only between waits, so every moment it stays
/// paused after its worker has run out of events is a moment of delivering
/// nothing.
const PAUSED_WAIT: Duration = Duration::from_millis(5);

/// How much longer than `drain_timeout_ms` leaving the group may take: a
/// last revocation (drained within `drain_timeout_ms`) and its commit, and
/// the LeaveGroup round trip.
const LEAVE_GRACE: Duration = Duration::from_secs(15);

/// Closes the consumer (rdkafka's `Drop`: leave the group, serving the last
/// rebalance callbacks), waiting at most `within`. That close polls until
/// librdkafka says the consumer is closed, without a bound, and a shutdown
/// that lands in the middle of a rebalance was seen to wait there for good
/// (the fault suite's eager churn, about one run in eight). So it runs on a
/// thread of its own; past the bound the process goes on without it: what
/// was finalized is already committed, and the group drops this member at
/// its session timeout.
fn leave_group(consumer: Arc<BaseConsumer<PipelineContext>>, pipeline: &str, within: Duration) {
    let (closed, wait) = sync_channel(1);
    let leaving = std::thread::Builder::new()
        .name("flumen-leave".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
    if let Err(e) = leaving {
        // The consumer went with the closure: it was closed on this thread.
        tracing::warn!(pipeline, error = %e, "no thread to close the consumer on; closed it here");
        return;
    }
    match wait.recv_timeout(within) {
        Ok(()) => tracing::info!(pipeline, "consumer stopped"),
        Err(_) => tracing::warn!(
            pipeline,
            seconds = within.as_secs(),
            "the consumer did not finish leaving its group in time; going on without it \
             (finalized offsets are committed; the group drops this member at its session \
             timeout)"
        ),
    }
}

/// One running consumer-group member for one pipeline.
pub struct PipelineConsumer {
    consumer: Arc<BaseConsumer<PipelineContext>>,
    /// Where the assigned partitions' messages are read from; also held by
    /// the rebalance hook, which routes each assignment to it.
    fetch: Arc<FetchQueue>,
    partitions: Arc<Mutex<Partitions>>,
    pipeline: PipelineConfig,
    workers: Box<dyn PartitionWorkers>,
    stats: Arc<PipelineStats>,
    /// The group's `session.timeout.ms`, for the committer's stall fence.
    session: Duration,
}

impl PipelineConsumer {
    /// Creates the consumer and subscribes to the pipeline's topics. Each
    /// partition's worker is started by `workers` when its first event is
    /// read.
    pub fn new(
        config: &Config,
        pipeline: &PipelineConfig,
        workers: Box<dyn PartitionWorkers>,
        stats: Arc<PipelineStats>,
        fence: Option<Arc<Fence>>,
    ) -> KafkaResult<Self> {
        let cc = client_config::consumer(config, pipeline);
        let partitions = Arc::new(Mutex::new(Partitions::default()));
        let rule = if client_config::fenced(pipeline) {
            CommitRule::Owner
        } else {
            CommitRule::Finalized
        };
        let session = Duration::from_millis(
            cc.get("session.timeout.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(45_000),
        );
        let context = PipelineContext {
            partitions: partitions.clone(),
            revoked_uncommitted: Mutex::new(Vec::new()),
            rule,
            commit_lock: Arc::new(Mutex::new(())),
            stats: stats.clone(),
            drain_timeout: pipeline.drain_timeout(),
            pipeline: pipeline.name.clone(),
            fetch: Mutex::new(None),
            fence: fence.map(|f| {
                let watch = Mutex::new(Watch::new(f.limit()));
                (f, watch)
            }),
        };
        let consumer: BaseConsumer<PipelineContext> = cc.create_with_context(context)?;
        // Before `subscribe`, so the first assignment is routed too.
        let fetch = Arc::new(FetchQueue::new(&consumer));
        *lock(&consumer.context().fetch) = Some(fetch.clone());
        let topics: Vec<&str> = pipeline.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            fetch,
            partitions,
            pipeline: pipeline.clone(),
            workers,
            stats,
            session,
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
            self.consumer.context().commit_lock.clone(),
            self.stats.clone(),
            (self.consumer.context().rule, self.session),
            self.consumer
                .context()
                .fence
                .as_ref()
                .map(|(f, _)| f.clone()),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(pipeline = %self.pipeline.name, error = %e,
                    "cannot start the committer thread; the pipeline does not start");
                return;
            }
        };
        let mut last_revoked_retry = Instant::now();
        let mut suspects = Suspects::default();
        let mut any_paused = false;
        let mut fetched = Fetched::default();
        while !shutdown.load(Ordering::Acquire) {
            // Wait for one message, then take what is already there.
            let wait = if any_paused { PAUSED_WAIT } else { IDLE_WAIT };
            self.fetch.read(wait, 1, &mut fetched);
            if !fetched.is_empty() {
                self.fetch.read(Duration::ZERO, BURST - 1, &mut fetched);
                self.dispatch(fetched.iter(), &mut suspects);
                fetched.clear();
            }
            self.serve_events(&mut suspects);
            self.flush_all();
            any_paused = self.tend_paused();
            if last_revoked_retry.elapsed() >= REVOKED_RETRY {
                self.retry_revoked();
                last_revoked_retry = Instant::now();
            }
        }
        drop(fetched);
        let standing = committer.stop();
        tracing::info!(pipeline = %self.pipeline.name, "shutting down: finishing in-flight batches");
        let handles: Vec<_> = lock(&self.partitions).drain().collect();
        let offsets = drain(handles, self.pipeline.drain_timeout());
        if self.consumer.context().rule.may_commit(standing) {
            commit(&self.consumer, &offsets, &self.stats);
        } else {
            tracing::warn!(pipeline = %self.pipeline.name,
                "shutting down right after a stall past the session timeout: not committing, \
                 as the partitions may have been given to another member (exactly-once sink)");
        }
        // A late commit still pending would otherwise be dropped, and the
        // next owner would read those partitions again from further back.
        self.retry_revoked();
        self.consumer.unsubscribe();
        let within = self.pipeline.drain_timeout() + LEAVE_GRACE;
        let Self {
            consumer,
            pipeline,
            fetch,
            ..
        } = self;
        // Closing the consumer waits for every queue handle of its client.
        *lock(&consumer.context().fetch) = None;
        drop(fetch);
        leave_group(consumer, &pipeline.name, within);
    }

    /// A record could not be decoded: finds the partition that stopped at it
    /// and reports it. An error read from the fetch queue says where it is
    /// (`at`: the partition and the offset it stopped at), and librdkafka
    /// has moved that partition's position one past it; an error event from
    /// the consumer queue does not say, so the partition is the one whose
    /// position stays put short of its end.
    fn undecodable(
        &self,
        e: &KafkaError,
        suspects: &mut Suspects,
        at: Option<(unreadable::Key, i64)>,
    ) {
        tracing::debug!(pipeline = %self.pipeline.name, error = %e, "a record cannot be decoded");
        let mut positions = match self.consumer.position() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .filter_map(|el| match el.offset() {
                    Offset::Offset(o) => Some(((el.topic().to_owned(), el.partition()), o)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(_) => return,
        };
        if let Some((key, offset)) = at {
            match positions.iter_mut().find(|(k, _)| *k == key) {
                Some(p) => p.1 = offset,
                None => positions.push((key, offset)),
            }
        }
        let ends = self.stats.high_watermarks();
        let parts = lock(&self.partitions);
        let paused = |k: &unreadable::Key| parts.get(k).is_some_and(|h| h.paused);
        let confirmed = suspects.observe(&positions, &ends, paused, Instant::now());
        drop(parts);
        for ((topic, partition), offset) in confirmed {
            // Reported once per stop, not on every decode error after it.
            if !self.stats.set_unreadable(&topic, partition, offset) {
                continue;
            }
            tracing::error!(pipeline = %self.pipeline.name, %topic, partition, offset, error = %e,
                "partition {topic}[{partition}] cannot be read at offset {offset}: the record \
                 batch there cannot be decoded (corrupt, or compressed with a codec this build \
                 lacks). The partition stops there: nothing after it is delivered or \
                 committed, and nothing is skipped. Fix or remove the data, or move the \
                 group's offset past it by hand if losing it is acceptable");
        }
    }

    /// Serves the consumer queue: rebalances and commit results (their
    /// hooks run inside `poll`), errors, and the messages of any partition
    /// that could not be routed to the fetch queue.
    fn serve_events(&self, suspects: &mut Suspects) {
        for _ in 0..EVENTS_PER_LOOP {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(msg)) => {
                    // SAFETY: `msg` lends the message until it is dropped,
                    // after this call.
                    let lent = unsafe { Lent::from_ptr(msg.ptr()) };
                    self.dispatch(std::iter::once(lent), suspects);
                }
                Some(Err(e)) => self.consumer_error(e, suspects, None),
            }
        }
    }

    /// An error librdkafka reported in place of a message (`at`: where) or
    /// as an event.
    fn consumer_error(
        &self,
        e: KafkaError,
        suspects: &mut Suspects,
        at: Option<(unreadable::Key, i64)>,
    ) {
        match e {
            KafkaError::PartitionEOF(_) => {}
            e if unreadable::is_undecodable(&e) => self.undecodable(&e, suspects, at),
            e => tracing::warn!(pipeline = %self.pipeline.name, error = %e, "consumer error"),
        }
    }

    /// Queues each message for its partition's worker, starting the worker
    /// on the partition's first message. Messages come in runs of one
    /// partition, so the partition's name is looked up once per run.
    fn dispatch<'a>(&self, messages: impl Iterator<Item = Lent<'a>>, suspects: &mut Suspects) {
        let mut parts = None;
        let mut key = (String::new(), 0);
        let mut topic_handle = std::ptr::null();
        for msg in messages {
            if let Some(e) = msg.error() {
                // `undecodable` takes the partitions' lock itself.
                parts = None;
                let at = msg
                    .topic()
                    .map(|t| ((t.to_owned(), msg.partition()), msg.offset()));
                self.consumer_error(e, suspects, at);
                continue;
            }
            if msg.topic_handle() != topic_handle || msg.partition() != key.1 {
                let Some(topic) = msg.topic() else {
                    // Kafka topic names are ASCII; not queuing the message
                    // leaves it uncommitted.
                    tracing::error!(
                        partition = msg.partition(),
                        offset = msg.offset(),
                        "a message's topic name is not UTF-8; the partition stops at it"
                    );
                    continue;
                };
                key.0.clear();
                key.0.push_str(topic);
                key.1 = msg.partition();
                topic_handle = msg.topic_handle();
                self.stats.clear_unreadable(&key.0, key.1);
            }
            let parts = parts.get_or_insert_with(|| lock(&self.partitions));
            if let Some(h) = parts.get_mut(&key) {
                self.queue(h, &key, msg);
                continue;
            }
            let (tx, rx) = crossbeam_channel::unbounded();
            match self.workers.start(&key.0, key.1, rx) {
                Ok(worker) => {
                    tracing::info!(pipeline = %self.pipeline.name, topic = %key.0,
                        partition = key.1, offset = msg.offset(),
                        "first event of the partition read; its worker started");
                    let h = parts.entry(key.clone()).or_insert(PartitionHandle {
                        tx,
                        pending: Batch::default(),
                        shared: worker.shared,
                        thread: worker.thread,
                        paused: false,
                        fetch_stopped: false,
                        last_offset: -1,
                        stuck: false,
                    });
                    self.queue(h, &key, msg);
                }
                Err(e) => {
                    // Not handing the event on leaves it uncommitted; it is
                    // read again after a restart.
                    tracing::error!(topic = %key.0, partition = key.1, error = %e, "cannot start partition worker");
                }
            }
        }
    }

    /// Adds one message to its partition's pending events, and pauses the
    /// partition once its queue is full. The pending events are handed over
    /// whenever they make a full batch, so that a chunk crosses to the
    /// worker as the batch it becomes, without being copied again.
    fn queue(&self, h: &mut PartitionHandle, key: &(String, i32), msg: Lent<'_>) {
        if msg.offset() <= h.last_offset || h.stuck {
            tracing::debug!(offset = msg.offset(), "offset already queued; skipped");
            return;
        }
        let batch = &self.pipeline.batch;
        let size = msg.key().map_or(0, <[u8]>::len) + msg.value().map_or(0, <[u8]>::len);
        if h.pending.len() >= batch.max_events
            || (!h.pending.is_empty() && h.pending.bytes() + size > batch.max_bytes)
        {
            h.flush(&key.0, key.1);
        }
        if push_message(&mut h.pending, msg).is_err() {
            // The chunk's 32-bit positions are full: start a new chunk.
            h.flush(&key.0, key.1);
            if let Err(e) = push_message(&mut h.pending, msg) {
                // Cannot happen for a Kafka record (its size is a 32-bit
                // signed number); if it did, skipping it would commit past
                // it, so the partition stops here instead.
                tracing::error!(topic = %key.0, partition = key.1, offset = msg.offset(),
                    error = %e, "a record is too large to hand to the guests; the partition \
                    stops at it (nothing after it is delivered or committed)");
                h.stuck = true;
                return;
            }
        }
        h.last_offset = msg.offset();
        let queued = h.shared.queued.load(Ordering::Acquire) + h.pending.len();
        let queued_bytes = h.shared.queued_bytes.load(Ordering::Acquire) + h.pending.bytes();
        if !h.paused
            && (queued >= self.pipeline.max_queued_events
                || queued_bytes >= self.pipeline.max_queued_bytes)
            && self.set_paused(key, true)
        {
            h.paused = true;
        }
    }

    /// Hands every partition's pending events to its worker, except where
    /// the worker is busy with a batch: those keep growing towards a whole
    /// batch (see `PartitionShared::busy`), and are handed over at the end
    /// of the first burst after the worker is done, or as soon as they make
    /// a whole batch.
    fn flush_all(&self) {
        for ((topic, partition), h) in lock(&self.partitions).iter_mut() {
            if !h.shared.busy.load(Ordering::Acquire) {
                h.flush(topic, *partition);
            }
        }
    }
}

//! One worker thread per assigned partition: batches from the partition's
//! queue go through the interceptor chain and the sinks, strictly one batch
//! at a time, so events reach every sink in offset order. The worker owns
//! its own guest instances (a wasmtime store is single-threaded) and its
//! offset tracker, and publishes the committable offset for the consumer
//! thread to commit.

use crate::batcher::Batcher;
use crate::config::{PipelineConfig, RetryConfig};
use crate::dead_letter::DeadLetterQueue;
use crate::failure::{FailureContext, Guarded};
use crate::interceptors::run_chain;
use crate::offsets::OffsetTracker;
use crate::retry::Backoff;
use crate::runtime::bindings::{Event, Source};
use crate::runtime::{
    GuestKind, GuestTag, InterceptorGuest, InterceptorSlot, SinkGuest, SinkSlot, Slot,
};
use crate::sinks::deliver_all;
use crate::stats::PipelineStats;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The components of a pipeline, compiled once and shared by all partitions
/// (through slots, so that a reload reaches every partition).
#[derive(Clone)]
pub struct Components {
    /// Interceptors in chain order.
    pub interceptors: Vec<Arc<InterceptorSlot>>,
    /// Sinks in configuration order.
    pub sinks: Vec<Arc<SinkSlot>>,
    /// The pipeline's dead-letter topic, if it has one.
    pub dead_letter: Option<Arc<DeadLetterQueue>>,
}

/// State a partition worker shares with the consumer thread.
#[derive(Debug)]
pub struct PartitionShared {
    /// Set by the consumer: start no new batch, abandon retries.
    pub stop: AtomicBool,
    /// Set by the worker when it has exited.
    pub done: AtomicBool,
    /// Events queued for the worker and not yet batched (for pausing).
    pub queued: AtomicUsize,
    /// Their bytes, as [`crate::batcher::event_bytes`] counts them (for
    /// pausing).
    pub queued_bytes: AtomicUsize,
    /// Offset to commit, or -1 if nothing is finalized yet.
    pub committable: AtomicI64,
}

impl PartitionShared {
    fn new() -> Self {
        Self {
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            committable: AtomicI64::new(-1),
        }
    }

    /// The committable offset, if any.
    pub fn committable(&self) -> Option<i64> {
        let c = self.committable.load(Ordering::Acquire);
        (c >= 0).then_some(c)
    }
}

/// Everything a worker needs, moved into its thread.
struct Worker {
    /// The partition, as the guests are told it with each batch.
    source: Source,
    batcher: Batcher,
    interceptors: Vec<Guarded<InterceptorGuest>>,
    sinks: Vec<Guarded<SinkGuest>>,
    sink_names: Vec<String>,
    dead_letter: Option<Arc<DeadLetterQueue>>,
    retry: RetryConfig,
    tracker: OffsetTracker,
    shared: Arc<PartitionShared>,
    stats: Arc<PipelineStats>,
}

/// Starts the worker thread for one partition. Returns its shared state.
pub fn spawn(
    pipeline: &PipelineConfig,
    components: &Components,
    stats: Arc<PipelineStats>,
    topic: &str,
    partition: i32,
    rx: Receiver<Vec<Event>>,
) -> std::io::Result<(Arc<PartitionShared>, std::thread::JoinHandle<()>)> {
    let shared = Arc::new(PartitionShared::new());
    let worker = Worker {
        source: Source {
            topic: topic.to_owned(),
            partition,
        },
        batcher: Batcher::new(rx, &pipeline.batch),
        interceptors: components
            .interceptors
            .iter()
            .map(|c| guarded(c, pipeline, topic, partition))
            .collect(),
        sinks: components
            .sinks
            .iter()
            .map(|c| guarded(c, pipeline, topic, partition))
            .collect(),
        sink_names: components
            .sinks
            .iter()
            .map(|c| c.current().1.name().to_owned())
            .collect(),
        dead_letter: components.dead_letter.clone(),
        retry: pipeline.retry.clone(),
        tracker: OffsetTracker::new(),
        shared: shared.clone(),
        stats,
    };
    let handle = std::thread::Builder::new()
        .name(format!("flumen-{topic}-{partition}"))
        .spawn(move || worker.run())?;
    Ok((shared, handle))
}

/// A partition's own instance of a component.
fn guarded<P: GuestKind + Clone>(
    slot: &Arc<Slot<P>>,
    pipeline: &PipelineConfig,
    topic: &str,
    partition: i32,
) -> Guarded<crate::runtime::Guest<P>> {
    let tag = GuestTag {
        component: slot.current().1.name().into(),
        pipeline: pipeline.name.as_str().into(),
        partition: Some((topic.into(), partition)),
    };
    Guarded::new(slot.clone(), tag, &pipeline.retry)
}

impl Worker {
    fn run(mut self) {
        let _span =
            tracing::info_span!("partition", topic = %self.source.topic, partition = self.source.partition)
                .entered();
        if self.start_guests() {
            while let Some((batch, bytes)) = self.batcher.next_batch(&self.shared.stop) {
                self.shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                if !self.process(batch) {
                    break;
                }
            }
        }
        tracing::debug!(
            in_flight = self.tracker.in_flight(),
            "partition worker stopped"
        );
        self.shared.done.store(true, Ordering::Release);
    }

    /// Instantiates every guest before the first batch, so a guest whose init
    /// fails is reported at once; retries (the failure may be transient, like
    /// a granted directory that is not mounted yet) until stopped.
    fn start_guests(&mut self) -> bool {
        let mut backoff = Backoff::new(&self.retry);
        loop {
            let result = self
                .interceptors
                .iter_mut()
                .try_for_each(|g| g.guest.ensure_live())
                .and_then(|()| {
                    self.sinks
                        .iter_mut()
                        .try_for_each(|g| g.guest.ensure_live())
                });
            match result {
                Ok(()) => return true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start guest; retrying");
                    if !backoff.wait(&self.shared.stop) {
                        return false;
                    }
                }
            }
        }
    }

    /// Takes one batch all the way through. Returns `false` if the worker must
    /// stop (asked to, or the batch broke the tracker's ordering invariant).
    fn process(&mut self, batch: Vec<Event>) -> bool {
        if let Some(first) = batch.first() {
            for g in &mut self.interceptors {
                g.switch_version(first.offset, false);
            }
            for g in &mut self.sinks {
                g.switch_version(first.offset, false);
            }
        }
        for e in &batch {
            if let Err(err) = self.tracker.track(e.offset) {
                // The consumer guarantees increasing offsets; if that ever
                // fails, stop here rather than commit something unproven.
                tracing::error!(error = %err, "offset order broken; partition worker stops");
                return false;
            }
        }
        self.stats
            .consumed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let tracker = &mut self.tracker;
        let shared = &*self.shared;
        let stats = &*self.stats;
        // Counted here and added to the pipeline's counter once per batch:
        // every partition's worker shares that counter, and an atomic add per
        // event made its cache line bounce between the cores.
        let mut finalized = 0u64;
        let mut finalize = |offset: i64| match tracker.finalize(offset) {
            Ok(()) => {
                finalized += 1;
                if let Some(c) = tracker.committable() {
                    shared.committable.store(c, Ordering::Release);
                }
            }
            Err(e) => tracing::error!(error = %e, "finalize of an unknown offset ignored"),
        };
        let cx = FailureContext {
            source: &self.source,
            stop: &shared.stop,
            stats,
            dead_letter: self.dead_letter.as_deref(),
        };
        let go_on = match run_chain(
            &mut self.interceptors,
            &self.sink_names,
            batch,
            &cx,
            &mut finalize,
        ) {
            Some(routed) => deliver_all(&mut self.sinks, &routed, &cx, &mut finalize),
            None => false,
        };
        stats.finalized.fetch_add(finalized, Ordering::Relaxed);
        go_on
    }
}

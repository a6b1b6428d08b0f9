//! One worker thread per assigned partition: batches from the partition's
//! queue go through the interceptor chain and the sinks, strictly one batch
//! at a time, so events reach every sink in offset order. The worker owns
//! its own guest instances (a wasmtime store is single-threaded) and its
//! [`Finalizer`], which publishes the committable offset for the consumer
//! thread to commit.

use super::batcher::Batcher;
use super::component::{Interceptor, Sink};
use super::dead_letter::DeadLetters;
use super::failure::{FailureContext, Guarded};
use super::finalizer::Finalizer;
use super::interceptors::run_chain;
use super::retry::Backoff;
use super::sinks::deliver_all;
use crate::config::{PipelineConfig, RetryConfig};
use crate::contract::{Batch, Source};
use crate::kafka::PartitionShared;
use crate::stats::PipelineStats;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// What one partition's worker runs: its own instances of the pipeline's
/// components, and the pipeline's dead-letter topic.
pub struct Stages<I, S> {
    /// Interceptors in chain order.
    pub interceptors: Vec<I>,
    /// Sinks in configuration order.
    pub sinks: Vec<S>,
    /// The pipeline's dead-letter topic, if it has one.
    pub dead_letter: Option<Arc<dyn DeadLetters>>,
}

/// Everything a worker needs, moved into its thread.
pub struct Worker<I, S> {
    /// The partition, as the guests are told it with each batch.
    source: Source,
    interceptors: Vec<Guarded<I>>,
    sinks: Vec<Guarded<S>>,
    sink_names: Vec<String>,
    dead_letter: Option<Arc<dyn DeadLetters>>,
    retry: RetryConfig,
    finalizer: Finalizer,
    shared: Arc<PartitionShared>,
    stats: Arc<PipelineStats>,
}

impl<I: Interceptor, S: Sink> Worker<I, S> {
    /// A worker for `source` running `stages` under `pipeline`'s settings,
    /// publishing to `shared` and counting into `stats`.
    pub fn new(
        pipeline: &PipelineConfig,
        stages: Stages<I, S>,
        source: Source,
        shared: Arc<PartitionShared>,
        stats: Arc<PipelineStats>,
    ) -> Self {
        let sink_names = stages.sinks.iter().map(|s| s.name().to_owned()).collect();
        let retry = &pipeline.retry;
        Self {
            source,
            interceptors: (stages.interceptors.into_iter())
                .map(|g| Guarded::new(g, retry))
                .collect(),
            sinks: (stages.sinks.into_iter())
                .map(|g| Guarded::new(g, retry))
                .collect(),
            sink_names,
            dead_letter: stages.dead_letter,
            retry: retry.clone(),
            finalizer: Finalizer::new(shared.clone(), stats.clone()),
            shared,
            stats,
        }
    }

    /// The worker's finalization state.
    #[cfg(test)]
    pub fn finalizer(&self) -> &Finalizer {
        &self.finalizer
    }

    /// Instantiates every guest before the first batch, so a guest whose init
    /// fails is reported at once; retries (the failure may be transient, like
    /// a granted directory that is not mounted yet) until stopped.
    pub fn start_guests(&mut self) -> bool {
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
    pub fn process(&mut self, batch: Batch) -> bool {
        if let Some(&first) = batch.offsets().first() {
            for g in &mut self.interceptors {
                g.switch_version(first, false);
            }
            for g in &mut self.sinks {
                g.switch_version(first, false);
            }
        }
        if let Err(err) = self.finalizer.track(batch.offsets()) {
            // The consumer guarantees increasing offsets; if that ever
            // fails, stop here rather than commit something unproven.
            tracing::error!(error = %err, "offset order broken; partition worker stops");
            return false;
        }
        self.stats
            .consumed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let cx = FailureContext {
            source: &self.source,
            stop: &self.shared.stop,
            stats: &self.stats,
            dead_letter: self.dead_letter.as_deref(),
        };
        let go_on = match run_chain(
            &mut self.interceptors,
            &self.sink_names,
            batch,
            &cx,
            &mut self.finalizer,
        ) {
            Some(routed) => deliver_all(&mut self.sinks, &routed, &cx, &mut self.finalizer),
            None => false,
        };
        self.finalizer.end_batch();
        go_on
    }
}

/// Starts the worker thread for one partition, fed through `rx`: it batches
/// what arrives by `pipeline`'s `batch` settings and runs `stages` on each
/// batch. Returns the state it shares with the consumer thread.
pub fn spawn<I, S>(
    pipeline: &PipelineConfig,
    stages: Stages<I, S>,
    stats: Arc<PipelineStats>,
    source: Source,
    rx: Receiver<Batch>,
) -> std::io::Result<(Arc<PartitionShared>, std::thread::JoinHandle<()>)>
where
    I: Interceptor + Send + 'static,
    S: Sink + Send + 'static,
{
    let shared = Arc::new(PartitionShared::new());
    let name = format!("flumen-{}-{}", source.topic, source.partition);
    let mut batcher = Batcher::new(rx, &pipeline.batch);
    let mut worker = Worker::new(pipeline, stages, source, shared.clone(), stats);
    let handle = std::thread::Builder::new().name(name).spawn(move || {
        let _span = tracing::info_span!("partition", topic = %worker.source.topic,
            partition = worker.source.partition)
        .entered();
        if worker.start_guests() {
            while let Some(batch) = batcher.next_batch(&worker.shared.stop) {
                worker.shared.busy.store(true, Ordering::Release);
                worker
                    .shared
                    .queued
                    .fetch_sub(batch.len(), Ordering::AcqRel);
                worker
                    .shared
                    .queued_bytes
                    .fetch_sub(batch.bytes(), Ordering::AcqRel);
                let go_on = worker.process(batch);
                worker.shared.busy.store(false, Ordering::Release);
                if !go_on {
                    break;
                }
            }
        }
        tracing::debug!(
            in_flight = worker.finalizer.in_flight(),
            "partition worker stopped"
        );
        worker.shared.done.store(true, Ordering::Release);
    })?;
    Ok((shared, handle))
}

//! One worker thread per assigned partition: batches from the partition's
//! queue go through the interceptor chain, one batch at a time, and on to
//! the sinks, each of which takes them at its own pace (see [`super::sinks`]
//! and [`super::window`]). The worker owns its own guest instances (a
//! wasmtime store is single-threaded; a sink with `max_in_flight` > 1 has
//! more, on threads of their own) and its [`Finalizer`], which publishes the
//! committable offset for the consumer thread to commit.
//!
//! The worker reads the next batch only while every sink has room for it,
//! so a slow sink fills the partition's queue and the consumer pauses the
//! partition. On a stop it starts nothing new, waits for the calls in
//! flight and settles what they settled.

use super::batcher::{Batcher, Next};
use super::component::{Interceptor, Sink};
use super::delivery::{Done, Fanout, RateLimiter};
use super::failure::{DeadLetters, FailureContext, Guarded};
use super::finalizer::Finalizer;
use super::interceptors::run_chain;
use super::retry::Backoff;
use crate::config::{PipelineConfig, RetryConfig};
use crate::contract::{Batch, Source};
use crate::kafka::fence::Fence;
use crate::kafka::{PartitionShared, Publisher};
use crate::stats::PipelineStats;
use crossbeam_channel::Receiver;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a worker waiting for its sinks looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// What one partition's worker runs: its own instances of the pipeline's
/// components, and the pipeline's dead-letter topic.
pub struct Stages<I, S> {
    /// Interceptors in chain order.
    pub interceptors: Vec<I>,
    /// Sinks in configuration order.
    pub sinks: Vec<S>,
    /// The pipeline's dead-letter topic, if it has one.
    pub dead_letter: Option<Arc<dyn DeadLetters>>,
    /// Per sink, its rate limiter, shared by the pipeline's partitions
    /// (missing entries: none).
    pub rates: Vec<Option<Arc<RateLimiter>>>,
    /// The member's fence, if it fences itself (an exactly-once sink):
    /// shared by the pipeline's partitions.
    pub fence: Option<Arc<Fence>>,
}

/// Everything a worker needs, moved into its thread.
pub struct Worker<I, S> {
    /// The partition, as the guests are told it with each batch.
    source: Source,
    interceptors: Vec<Guarded<I>>,
    sinks: Fanout<S>,
    sink_names: Vec<String>,
    dead_letter: Option<Arc<dyn DeadLetters>>,
    retry: RetryConfig,
    finalizer: Finalizer,
    shared: Arc<PartitionShared>,
    stats: Arc<PipelineStats>,
}

impl<I: Interceptor, S: Sink + Send + 'static> Worker<I, S> {
    /// A worker for `source` running `stages` under `pipeline`'s settings,
    /// publishing to `shared` and counting into `stats`.
    pub fn new(
        pipeline: &PipelineConfig,
        stages: Stages<I, S>,
        source: Source,
        publisher: Publisher,
        stats: Arc<PipelineStats>,
    ) -> Self {
        let shared = publisher.shared().clone();
        let retry = &pipeline.retry;
        let sinks = Fanout::new(
            stages.sinks,
            stages.rates,
            retry,
            &pipeline.batch,
            &source,
            &stats,
            stages.fence,
        );
        Self {
            source,
            interceptors: (stages.interceptors.into_iter())
                .map(|g| Guarded::new(g, retry))
                .collect(),
            sink_names: sinks.names(),
            sinks,
            dead_letter: stages.dead_letter,
            retry: retry.clone(),
            finalizer: Finalizer::new(publisher, stats.clone()),
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
                .and_then(|()| self.sinks.ensure_live());
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

    /// Takes one batch through the interceptor chain and hands it to the
    /// sinks, starting the calls that may go. Returns `false` if the worker
    /// must stop (asked to, or the batch broke the tracker's ordering
    /// invariant).
    pub fn process(&mut self, batch: Batch) -> bool {
        if let Some(&first) = batch.offsets().first() {
            for g in &mut self.interceptors {
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
        let routed = run_chain(
            &mut self.interceptors,
            &self.sink_names,
            batch,
            &cx,
            &mut self.finalizer,
        );
        let go_on = match routed {
            Some(routed) => {
                self.sinks.owe(routed, &mut self.finalizer);
                self.advance()
            }
            None => false,
        };
        self.finalizer.end_batch();
        go_on
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Starts the calls that may go and takes back every finished call that
    /// is ready, until neither makes progress. Returns `false` if the worker
    /// must stop.
    fn advance(&mut self) -> bool {
        loop {
            let mut progress = false;
            for s in 0..self.sinks.len() {
                if self.stopping() {
                    break;
                }
                match self.sinks.pump(s) {
                    Ok(None) => {}
                    // An inline call has finished: take it back before the
                    // next sink is called, so that what it settled is final
                    // sooner.
                    Ok(Some(done)) => {
                        progress = true;
                        if !self.finish(done) {
                            return false;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a thread for a sink call; \
                            partition worker stops");
                        return false;
                    }
                }
            }
            while let Some(done) = self.sinks.try_done() {
                progress = true;
                if !self.finish(done) {
                    return false;
                }
            }
            if !progress {
                return !self.stopping();
            }
        }
    }

    /// Takes back one finished call.
    fn finish(&mut self, done: Done) -> bool {
        let cx = FailureContext {
            source: &self.source,
            stop: &self.shared.stop,
            stats: &self.stats,
            dead_letter: self.dead_letter.as_deref(),
        };
        let go_on = self.sinks.finish(done, &cx, &mut self.finalizer);
        self.finalizer.end_batch();
        go_on
    }

    /// Waits for a finished call until `until` (at most [`STOP_CHECK`]),
    /// and takes it back.
    fn wait(&mut self, done: &Receiver<Done>, until: Option<Instant>) -> bool {
        let now = Instant::now();
        let timeout = until.map_or(STOP_CHECK, |u| {
            u.saturating_duration_since(now).min(STOP_CHECK)
        });
        match done.recv_timeout(timeout) {
            Ok(d) => self.finish(d),
            Err(_) => true,
        }
    }

    /// After a stop: waits for the calls still in flight and settles what
    /// they settled. Nothing new starts. A call cannot outlast its
    /// `call_timeout_ms`; the consumer commits what is final once its
    /// `drain_timeout_ms` is up, whether this is done or not.
    fn drain(&mut self) {
        let done = self.sinks.done_rx();
        while self.sinks.in_flight() > 0 {
            match done.recv_timeout(STOP_CHECK) {
                Ok(d) => {
                    self.finish(d);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Runs until everything handed to the sinks is settled (for tests,
    /// which hand batches in by [`Self::process`]). Returns `false` if the
    /// worker was stopped first.
    #[cfg(test)]
    pub fn settle(&mut self) -> bool {
        let done = self.sinks.done_rx();
        loop {
            if !self.advance() {
                return false;
            }
            if self.sinks.settled() {
                return true;
            }
            let until = self.sinks.next_due();
            if !self.wait(&done, until) {
                return false;
            }
        }
    }

    /// The worker's loop: read a batch while the sinks have room, else wait
    /// for them; then drain.
    fn run(&mut self, batcher: &mut Batcher) {
        let done = self.sinks.done_rx();
        loop {
            if !self.advance() {
                break;
            }
            let until = self.sinks.next_due();
            if !self.sinks.has_room() {
                self.shared.busy.store(true, Ordering::Release);
                if !self.wait(&done, until) {
                    break;
                }
                continue;
            }
            self.shared.busy.store(false, Ordering::Release);
            match batcher.next_batch_or(&self.shared.stop, &done, until) {
                Next::Batch(batch) => {
                    self.shared.busy.store(true, Ordering::Release);
                    self.shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                    (self.shared.queued_bytes).fetch_sub(batch.bytes(), Ordering::AcqRel);
                    if !self.process(batch) {
                        break;
                    }
                }
                Next::Woken(d) => {
                    if !self.finish(d) {
                        break;
                    }
                }
                Next::Due => {}
                Next::Closed => break,
            }
        }
        self.shared.busy.store(false, Ordering::Release);
        self.drain();
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
    let publisher = Publisher::new();
    let shared = publisher.shared().clone();
    let name = format!("flumen-{}-{}", source.topic, source.partition);
    let mut batcher = Batcher::new(rx, &pipeline.batch);
    let mut worker = Worker::new(pipeline, stages, source, publisher, stats);
    let handle = std::thread::Builder::new().name(name).spawn(move || {
        let _span = tracing::info_span!("partition", topic = %worker.source.topic,
            partition = worker.source.partition)
        .entered();
        if worker.start_guests() {
            worker.run(&mut batcher);
        }
        tracing::debug!(
            in_flight = worker.finalizer.in_flight(),
            "partition worker stopped"
        );
        worker.shared.done.store(true, Ordering::Release);
    })?;
    Ok((shared, handle))
}

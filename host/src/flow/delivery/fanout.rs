//! Fan-out to the sinks: each sink is owed the events routed to it and
//! works through them in its own [`Window`], with its own calls in flight,
//! retry clock and ordering, so a sink backing off does not hold back the
//! others. The partition's worker hands each routed batch to every window,
//! starts the calls that may go, and takes finished calls back here, from
//! the sinks' own threads (`max_in_flight` > 1) or from its own.

use super::lanes::{Done, Lanes};
use super::rate::RateLimiter;
use super::settings::Settings;
use super::window::Window;
use crate::config::{BatchConfig, RetryConfig};
use crate::contract::Source;
use crate::flow::component::{CallError, Sink};
use crate::flow::failure::{FailureContext, Guarded};
use crate::flow::finalizer::Finalizer;
use crate::flow::route::RoutedBatch;
use crate::kafka::fence::Fence;
use crate::stats::PipelineStats;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// Every sink of one partition.
pub struct Fanout<S> {
    windows: Vec<Window<S>>,
    /// Where sinks' threads report finished calls (kept so that the
    /// channel never closes while the worker waits on it).
    _done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
}

impl<S: Sink + Send + 'static> Fanout<S> {
    /// The windows of `sinks` (in configuration order) for `source`, each
    /// set up by its version's config; `rates` holds each sink's shared
    /// rate limiter, if it has one, and `fence` the member's fence, if it
    /// fences itself.
    pub fn new(
        sinks: Vec<S>,
        rates: Vec<Option<Arc<RateLimiter>>>,
        pipeline_retry: &RetryConfig,
        pipeline_batch: &BatchConfig,
        source: &Source,
        stats: &Arc<PipelineStats>,
        fence: Option<Arc<Fence>>,
    ) -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let mut rates = rates.into_iter();
        let windows = sinks
            .into_iter()
            .enumerate()
            .map(|(s, sink)| {
                let cfg = sink.config();
                let name = cfg.name.clone();
                let settings = Settings::new(&cfg.delivery(), pipeline_batch);
                let guarded = Guarded::new(sink, pipeline_retry);
                let handling = guarded.handling.clone();
                let lanes = Lanes::new(guarded, settings.max_in_flight, source, s, &done_tx);
                let rate = rates.next().flatten();
                Window::new(name, lanes, settings, handling, rate, stats, fence.clone())
            })
            .collect();
        Self {
            windows,
            _done_tx: done_tx,
            done_rx,
        }
    }

    /// The sinks' names, in configuration order (interceptors route by
    /// them).
    pub fn names(&self) -> Vec<String> {
        self.windows.iter().map(|w| w.name().to_owned()).collect()
    }

    /// Makes sure every sink's first instance is live.
    pub fn ensure_live(&mut self) -> Result<(), CallError> {
        self.windows.iter_mut().try_for_each(Window::ensure_live)
    }

    /// Hands a routed batch to the sinks it is routed to, and tells the
    /// finalizer who owes what.
    pub fn owe(&mut self, routed: RoutedBatch, finalizer: &mut Finalizer) {
        let RoutedBatch { events, routes } = routed;
        if events.is_empty() {
            return;
        }
        finalizer.owe(events.offsets(), &routes, self.windows.len());
        let batch = Arc::new(events);
        let to_all = routes.iter().all(Option::is_none);
        let now = Instant::now();
        for (s, w) in self.windows.iter_mut().enumerate() {
            let idx = (!to_all).then(|| {
                (0..batch.len())
                    .filter(|&i| routes[i].as_ref().is_none_or(|r| r.contains(&s)))
                    .collect::<Vec<_>>()
            });
            let idx = idx.filter(|idx| idx.len() < batch.len());
            w.owe(&batch, idx, now);
        }
    }

    /// How many sinks there are.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Starts every call of sink `s` that may go now. An inline call runs
    /// to its end, and is returned to be taken back with [`Self::finish`].
    pub fn pump(&mut self, s: usize) -> std::io::Result<Option<Done>> {
        match self.windows.get_mut(s) {
            Some(w) => w.pump(Instant::now()),
            None => Ok(None),
        }
    }

    /// A call finished on a sink's thread, if one is ready.
    pub fn try_done(&mut self) -> Option<Done> {
        self.done_rx.try_recv().ok()
    }

    /// Where the sinks' threads report finished calls.
    pub fn done_rx(&self) -> Receiver<Done> {
        self.done_rx.clone()
    }

    /// Takes a finished call back into its sink's window. Returns `false`
    /// if the worker was stopped before dead letters were acknowledged.
    pub fn finish(&mut self, done: Done, cx: &FailureContext<'_>, fin: &mut Finalizer) -> bool {
        match self.windows.get_mut(done.sink) {
            Some(w) => w.finish(done, cx, fin),
            None => {
                tracing::error!(sink = done.sink, "a call finished for no sink; ignored");
                true
            }
        }
    }

    /// Whether every sink can take another batch.
    pub fn has_room(&self) -> bool {
        self.windows.iter().all(Window::has_room)
    }

    /// The earliest time a window has something due.
    pub fn next_due(&self) -> Option<Instant> {
        self.windows.iter().filter_map(Window::next_due).min()
    }

    /// Calls in flight over all sinks.
    pub fn in_flight(&self) -> usize {
        self.windows.iter().map(Window::in_flight).sum()
    }

    /// Whether every sink has settled everything it was owed.
    #[cfg(test)]
    pub fn settled(&self) -> bool {
        self.windows.iter().all(Window::settled)
    }
}

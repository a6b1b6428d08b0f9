//! What happens when a component fails: the retry budget per component, and
//! what is done with an event once that budget is spent (`on_failure`).
//!
//! Interceptors and sinks share this vocabulary: a [`Failure`] says why an
//! event was given up on, [`FailureHandling`] decides when that happens,
//! [`FailureContext::give_up`] disposes of the event (through
//! [`DeadLetters`] under `dead-letter`), and [`Blocked`] marks a partition
//! that a `block` component holds up. `block` never gives up, so it needs
//! nothing here but the log line and the gauge saying that a partition is
//! stuck; `dead-letter` and `skip` finalize the event, `dead-letter` only
//! after the broker acknowledged the dead letter; `fail-open` is the
//! interceptor chain's own business (it passes the event on unchanged).

use super::component::Component;
use crate::config::{ComponentConfig, FailurePolicy, RetryConfig};
use crate::contract::{Batch, Event, Source};
use crate::stats::PipelineStats;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why a component gave up on an event: what goes into the dead letter's
/// headers and into the log.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The component that failed.
    pub component: String,
    /// Its last error message (a sink's verdict reason, a trap, …).
    pub reason: String,
    /// How many times the event was tried.
    pub attempts: u32,
}

/// Where a pipeline's partition workers put the events their components
/// gave up on under `on_failure = "dead-letter"`. [`DeadLetterQueue`] is
/// the real one; the flow's tests use fakes.
pub trait DeadLetters: Send + Sync {
    /// The topic written to, for the log.
    fn topic(&self) -> &str;

    /// Writes every event with its failure and waits until all of them are
    /// acknowledged. Returns `false` if `stop` was set first: the caller
    /// must then not finalize any of them.
    fn write(&self, source: &Source, letters: &[(&Event, &Failure)], stop: &AtomicBool) -> bool;
}

/// How an event has fared at one sink so far: what its retry budgets have
/// used. Failed calls and `retry` answers are kept apart because they are
/// budgeted apart (see [`RetryConfig`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tries {
    /// Calls that offered it, in all (what a dead letter's
    /// `flumen.attempts` says).
    pub count: u32,
    /// Calls that failed as a whole, or ended without a verdict for it:
    /// what `retry.attempts` bounds.
    pub failed_calls: u32,
    /// When the sink first answered `retry` for it, if it has: what
    /// `retry.max_elapsed_ms` is counted from.
    pub retrying_since: Option<Instant>,
}

/// How a component's failures are handled: its retry budget and backoff,
/// and what happens to an event once the budget is spent.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureHandling {
    /// Its retry budget and backoff.
    pub retry: RetryConfig,
    /// What happens once the budget is spent.
    pub policy: FailurePolicy,
}

impl FailureHandling {
    /// What `cfg` sets, with the pipeline's `pipeline_retry` for a component
    /// without retry settings of its own.
    pub fn of(cfg: &ComponentConfig, pipeline_retry: &RetryConfig) -> Self {
        Self {
            retry: cfg.retry_or(pipeline_retry).clone(),
            policy: cfg.on_failure,
        }
    }

    /// Whether an event tried `tries` times has spent the retry budget.
    pub fn spent(&self, tries: u32) -> bool {
        tries >= self.retry.attempts
    }

    /// Whether an event a sink has answered `retry` for since `since` has
    /// waited as long as `retry.max_elapsed_ms` allows, at `now`.
    pub fn waited_out(&self, since: Instant, now: Instant) -> bool {
        now.saturating_duration_since(since) >= Duration::from_millis(self.retry.max_elapsed_ms)
    }

    /// Whether the policy gives events up at all (everything but `block`).
    pub fn gives_up_events(&self) -> bool {
        self.policy != FailurePolicy::Block
    }

    /// Whether an event tried `tries` times is given up on now: its budget
    /// is spent and the policy is one that gives up.
    pub fn gives_up(&self, tries: u32) -> bool {
        self.gives_up_events() && self.spent(tries)
    }
}

/// A guest together with the failure handling configured for it.
pub struct Guarded<G> {
    /// The live guest.
    pub guest: G,
    /// The failure handling of the version live now.
    pub handling: FailureHandling,
    /// The pipeline's retry settings, for a version without its own.
    pub pipeline_retry: RetryConfig,
}

impl<G: Component> Guarded<G> {
    /// `guest` (a partition's own instance of a component) with the failure
    /// handling its config sets, or else the pipeline's `pipeline_retry`.
    pub fn new(guest: G, pipeline_retry: &RetryConfig) -> Self {
        Self {
            handling: FailureHandling::of(guest.config(), pipeline_retry),
            guest,
            pipeline_retry: pipeline_retry.clone(),
        }
    }

    /// Switches to a version a reload published, if there is one, with that
    /// version's retry settings and policy, and logs it: `next_offset` is
    /// the first event the new version sees. Called between batches, and
    /// between the retries of a failing batch (a partition blocked on a
    /// broken version must be able to pick up the fix). See
    /// [`Component::refresh`].
    pub fn switch_version(&mut self, next_offset: i64, retrying: bool) {
        let Some(version) = self.guest.refresh() else {
            return;
        };
        self.handling = FailureHandling::of(self.guest.config(), &self.pipeline_retry);
        let component = self.guest.name();
        if retrying {
            tracing::info!(
                component,
                version,
                next_offset,
                "component switched to a new version while retrying a failed batch"
            );
        } else {
            tracing::info!(
                component,
                version,
                next_offset,
                "component switched to a new version at a batch boundary"
            );
        }
    }
}

/// What a partition worker's failure handling needs from the worker.
pub struct FailureContext<'a> {
    /// The partition the worker serves.
    pub source: &'a Source,
    /// Set when the worker must stop; waits end early.
    pub stop: &'a AtomicBool,
    /// The pipeline's counters.
    pub stats: &'a PipelineStats,
    /// The pipeline's dead-letter topic, if it has one.
    pub dead_letter: Option<&'a dyn DeadLetters>,
}

impl FailureContext<'_> {
    /// Disposes of events a component with `policy` gave up on, so that they
    /// can be finalized: writes them to the dead-letter topic (waiting for
    /// the acknowledgement) or counts them as skipped. `given_up` holds
    /// indices into `events`, each with why. Returns `false` if they must
    /// not be finalized: the worker was stopped before the dead letters were
    /// acknowledged, or the policy gives nothing up.
    pub fn give_up(
        &self,
        policy: FailurePolicy,
        events: &Batch,
        given_up: &[(usize, Failure)],
    ) -> bool {
        if given_up.is_empty() {
            return true;
        }
        // Materialized only here, off the main path: a dead letter or a log
        // line needs the event whole.
        let materialized: Vec<Event> = given_up.iter().map(|(i, _)| events.event(*i)).collect();
        let letters: Vec<(&Event, &Failure)> = materialized
            .iter()
            .zip(given_up.iter().map(|(_, f)| f))
            .collect();
        let letters = letters.as_slice();
        match policy {
            FailurePolicy::Skip => {
                for (e, f) in letters {
                    tracing::warn!(component = %f.component, offset = e.offset, attempts = f.attempts,
                        reason = %f.reason, "event skipped (on_failure = skip): it is not delivered");
                }
                self.stats
                    .skipped
                    .fetch_add(letters.len() as u64, Ordering::Relaxed);
                true
            }
            FailurePolicy::DeadLetter => {
                let Some(dlq) = self.dead_letter else {
                    // Config validation requires the topic; keep the
                    // events rather than lose them if that ever changes.
                    tracing::error!("on_failure = dead-letter without a dead-letter topic");
                    return false;
                };
                if !dlq.write(self.source, letters, self.stop) {
                    return false;
                }
                for (e, f) in letters {
                    tracing::warn!(component = %f.component, offset = e.offset, attempts = f.attempts,
                        reason = %f.reason, dead_letter_topic = dlq.topic(),
                        "event written to the dead-letter topic");
                }
                self.stats
                    .dead_lettered
                    .fetch_add(letters.len() as u64, Ordering::Relaxed);
                true
            }
            FailurePolicy::Block | FailurePolicy::FailOpen => false,
        }
    }
}

/// Marks a partition as blocked (a `block` component spent its retries) for
/// as long as it is on, in the log and in the `blocked` gauge; dropping it
/// takes it out of the gauge. `S` is whatever holds the pipeline's
/// counters: a borrow for a retry loop, an `Arc` for a sink's window that
/// outlives one call.
pub struct Blocked<S: Deref<Target = PipelineStats>> {
    stats: S,
    /// The component holding the partition up, while it does.
    by: Option<String>,
}

impl<S: Deref<Target = PipelineStats>> Blocked<S> {
    /// Not blocked yet.
    pub fn new(stats: S) -> Self {
        Self { stats, by: None }
    }

    /// The partition is blocked at `offset` by `failure`; logged once.
    pub fn block(&mut self, offset: i64, failure: &Failure) {
        if self.by.is_some() {
            return;
        }
        self.by = Some(failure.component.clone());
        self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        tracing::error!(component = %failure.component, offset, attempts = failure.attempts,
            reason = %failure.reason,
            "partition BLOCKED (on_failure = block): nothing past this offset is committed; \
             retrying until the component succeeds");
    }

    /// The component succeeded: the partition moves again.
    pub fn unblock(&mut self) {
        if let Some(component) = self.leave() {
            tracing::info!(%component, "partition unblocked");
        }
    }

    /// Takes the partition out of the gauge if it was in it, returning the
    /// component that held it up.
    fn leave(&mut self) -> Option<String> {
        let by = self.by.take();
        if by.is_some() {
            self.stats.blocked.fetch_sub(1, Ordering::Relaxed);
        }
        by
    }
}

impl<S: Deref<Target = PipelineStats>> Drop for Blocked<S> {
    /// Takes the partition out of the gauge, without a log line: it is
    /// dropped when its worker stops, which does not unblock anything.
    fn drop(&mut self) {
        self.leave();
    }
}

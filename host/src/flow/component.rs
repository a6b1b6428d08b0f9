//! The seam between the flow and the guests: what a partition worker needs
//! from an interceptor or a sink, and nothing of how it runs.
//!
//! The runtime implements these traits for its WebAssembly guests; the
//! flow's own tests implement them with fakes that answer scripted
//! verdicts, which is how the at-least-once logic (owed counts, retries,
//! narrowing, failure policies, finalization) is unit-tested without a
//! wasm engine or a broker.

use crate::config::ComponentConfig;
use crate::contract::{Batch, InterceptorVerdict, SinkVerdict, Source};

/// Why a call failed. The flow only shows it (in the log, and in a dead
/// letter's `flumen.error` header), so any error will do.
pub type CallError = Box<dyn std::error::Error + Send + Sync>;

/// A call that failed because a service the component depends on (the
/// schema registry) could not answer: an outage, not bad data. The flow
/// retries such a call without counting it against `retry.attempts`, so
/// no event is ever given up (dead-lettered, skipped) for it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// What interceptors and sinks have in common.
pub trait Component {
    /// The component's name in the config.
    fn name(&self) -> &str;

    /// The configuration of the version running now: its retry budget and
    /// `on_failure` policy are read from here.
    fn config(&self) -> &ComponentConfig;

    /// Switches to a newer version if a reload published one, returning its
    /// number. The flow calls this only between batches (and between the
    /// retries of a failing batch), so a batch never sees two versions.
    fn refresh(&mut self) -> Option<u64>;

    /// Makes sure the component is ready to take a call (for a guest: a
    /// live, initialized instance), so that a broken start is reported
    /// before the first batch.
    fn ensure_live(&mut self) -> Result<(), CallError>;
}

/// An interceptor: one verdict per event of the batch.
pub trait Interceptor: Component {
    /// Calls the interceptor on a batch of `source`'s events. A successful
    /// call returns exactly one verdict per event, in order.
    fn process(
        &mut self,
        source: &Source,
        batch: &Batch,
    ) -> Result<Vec<InterceptorVerdict>, CallError>;
}

/// A sink: one verdict per event of the batch.
pub trait Sink: Component {
    /// Calls the sink on a batch of `source`'s events. A successful call
    /// returns exactly one verdict per event, in order.
    fn deliver(&mut self, source: &Source, batch: &Batch) -> Result<Vec<SinkVerdict>, CallError>;

    /// Another instance of the same component, for a second call in flight
    /// (`max_in_flight`): it shares the component and its reloads, not its
    /// state.
    fn another(&self) -> Self
    where
        Self: Sized;
}

//! The flow of one partition, from its queue to the commit: the
//! [`batcher`] groups events, the [`interceptors`] chain filters,
//! transforms and routes them, [`delivery`] hands them to each sink (its
//! calls in flight, ordering, sink-side batching, rate limit and adaptive
//! concurrency), and the [`finalizer`] decides which offsets are final and
//! publishes the committable one. [`partition`] runs that loop on a worker thread per
//! partition.
//!
//! When a component fails, [`failure`] applies its retry budget ([`retry`])
//! and `on_failure` policy, the same for interceptors and sinks, and
//! [`dead_letter`] writes the events it gives up on to a Kafka topic. The flow reaches the guests only through the
//! traits of [`component`], so all of this is tested with fakes.

pub mod batcher;
pub mod component;
pub mod dead_letter;
pub mod delivery;
pub mod failure;
pub mod finalizer;
pub mod interceptors;
pub mod offsets;
pub mod partition;
pub mod retry;
pub mod route;

pub use component::{CallError, Component, Interceptor, Sink, Unavailable};
pub use dead_letter::{DeadLetterError, DeadLetterQueue};
pub use delivery::RateLimiter;
pub use failure::DeadLetters;
pub use partition::Stages;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod tests;

//! The flow of one partition, from its queue to the commit: the
//! [`batcher`] groups events, the [`interceptors`] chain filters,
//! transforms and routes them, the [`sinks`] fan-out hands them to each
//! sink's [`window`] (its calls in flight, ordering, sink-side batching,
//! [`rate`] limit and [`adaptive`] concurrency, run on its [`lanes`]), and
//! the [`finalizer`] decides which offsets are final and publishes the
//! committable one. [`partition`] runs that loop on a worker thread per
//! partition.
//!
//! When a component fails, [`failure`] applies its retry budget ([`retry`])
//! and `on_failure` policy, and [`dead_letter`] writes the events it gives
//! up on to a Kafka topic. The flow reaches the guests only through the
//! traits of [`component`], so all of this is tested with fakes.

pub mod adaptive;
pub mod batcher;
pub mod component;
pub mod dead_letter;
pub mod failure;
pub mod finalizer;
pub mod interceptors;
pub mod lanes;
pub mod offsets;
pub mod partition;
pub mod rate;
pub mod retry;
pub mod route;
pub mod sinks;
pub mod window;

pub use component::{CallError, Component, Interceptor, Sink};
pub use dead_letter::{DeadLetterError, DeadLetterQueue, DeadLetters};
pub use partition::Stages;
pub use rate::RateLimiter;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod tests;

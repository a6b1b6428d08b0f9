//! Sink delivery: how the events routed to each sink reach it.
//!
//! The [`fanout`] hands each routed batch to every sink's [`window`], one
//! per sink and partition. A window owes events ([`owed`], as [`unit`]s of
//! shared batches) and forms calls from them by the sink's [`settings`]:
//! ordering (with [`keys`] held in key order), sink-side batching, and how
//! many calls may be in flight, a number that [`adaptive`] concurrency may
//! lower and a [`rate`] limit may hold back. Calls run on the sink's
//! [`lanes`]: inline on the worker's thread, or on instances of their own.
//! When a call finishes, [`settle`] reads its answer: what is delivered,
//! retried or given up on.
//!
//! Nothing here reaches back into the interceptor chain or the batcher; it
//! takes routed batches and reports final offsets to the finalizer.

pub mod adaptive;
pub mod fanout;
pub mod keys;
pub mod lanes;
pub mod owed;
pub mod rate;
pub mod settings;
pub mod settle;
pub mod unit;
pub mod window;

pub use fanout::Fanout;
pub use lanes::Done;
pub use rate::RateLimiter;

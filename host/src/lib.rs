//! flumen: a Kafka consumer host that passes event batches through
//! WebAssembly interceptors and sinks, and commits a partition's offset only
//! once every event before it is delivered or deliberately dropped.
//!
//! The modules follow the data flow:
//!
//! ```text
//! consumer ─► batcher ─► interceptors ─► sinks ─► offsets
//!   (Kafka)   (per partition)  (Wasm chain)  (Wasm fan-out)  (contiguous watermark → commit)
//! ```
//!
//! [`partition`] runs one worker per assigned partition that moves batches
//! along that path; [`runtime`] hosts the guests; [`pipeline`] starts and
//! stops it all from a [`config::Config`]. When a guest fails, [`failure`]
//! applies the component's retry budget and `on_failure` policy, and
//! [`dead_letter`] writes the events it gives up on to a Kafka topic.
//! [`reload`] swaps in new versions of components while events flow,
//! triggered by file changes, SIGHUP or the [`admin`] endpoint.

pub mod acked_producer;
pub mod admin;
pub mod batcher;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod demo;
pub mod event_json;
pub mod failure;
pub mod flume_import;
pub mod interceptors;
pub mod metrics;
pub mod offline;
pub mod offsets;
pub mod partition;
pub mod pipeline;
pub mod reload;
pub mod retry;
pub mod runtime;
pub mod scaffold;
pub mod sinks;
pub mod stats;
pub mod top;

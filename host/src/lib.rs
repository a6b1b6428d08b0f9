//! flumen: a Kafka consumer host that passes event batches through
//! WebAssembly interceptors and sinks, and commits a partition's offset only
//! once every event before it is delivered or deliberately dropped.
//!
//! The modules follow the data flow, each importing only from those before
//! it in this list (there are no cycles between them):
//!
//! ```text
//! contract, stats, config   the shared vocabulary: events and verdicts (from wit/),
//!                           pipeline counters, the TOML configuration
//! kafka                     consumer ─► per-partition queues; commits; the acked producer
//! flow                      batcher ─► interceptors ─► sinks ─► finalizer (contiguous watermark)
//! runtime                   the WebAssembly guests the flow calls (through flow::component)
//! ops                       starting pipelines, hot reload, the admin endpoint and /metrics
//! cli                       the `flumen` commands
//! ```
//!
//! The public API is what a library user, the tests and the benchmarks
//! need: start pipelines with [`ops::pipeline::start`] from a
//! [`config::Config`], or host a single component with [`runtime::Runtime`]
//! (as the benchmarks and the escape suite do). `kafka` and `flow` are the
//! crate's own business.
//!
//! ```no_run
//! use flumen::config::Config;
//! use flumen::ops::pipeline;
//!
//! let config = Config::load(std::path::Path::new("config/demo.toml"))?;
//! let running = pipeline::start(&config)?;
//! // … until it is time to stop: drain, commit, leave the group.
//! running.stop();
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cli;
pub mod config;
pub mod contract;
pub(crate) mod flow;
pub(crate) mod kafka;
pub mod ops;
pub mod registry;
pub mod runtime;
pub mod stats;

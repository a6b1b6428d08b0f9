//! The end-to-end tests, one module per subject, in one test binary (so that
//! wasmtime and rdkafka are linked once, not once per file). Each runs the
//! real `flumen` binary or library against real brokers and real components
//! built from guests/. The suites that print their own tables (faults,
//! escapes, reload) are separate binaries beside this one. Run one subject
//! with `cargo test --test e2e pipeline::`.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod budgets;
mod cli_check;
mod clickhouse_sink;
mod connect;
mod demo;
mod deploy;
mod docs;
mod guest_faults;
mod guest_library;
mod http_sink;
mod import_flume;
mod kafka_sink;
mod languages;
mod metrics;
mod pipeline;
mod policies;
mod reject;
mod routing;
mod s3_exactly_once;
mod s3_sink;
mod scaffold;
mod schemas;
mod slow_sink;

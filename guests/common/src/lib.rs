//! Helpers shared by flumen's Rust guests.
//!
//! Each guest generates its own bindings from `wit/`, so the event types differ
//! per crate; the helpers here take plain borrowed fields instead, and the
//! two macros, [`sink!`] and [`transform_interceptor!`], generate a guest's
//! bindings in the guest's own crate and adapt them to a trait:
//! - [`columns`]: a batch in columns, read and checked (`flumen new` copies
//!   this file into Rust guest projects);
//! - [`answer`]: an interceptor's compact answer;
//! - [`config`]: the guest's configuration;
//! - [`json_lines`]: an event as one JSON line;
//! - [`partition_file`]: the file a sink appends a partition's events to;
//! - [`sink`] and [`transform`]: the traits behind the two macros;
//! - [`dates`], [`endpoint`] and, with the `http` feature, [`http`]: date
//!   escapes, endpoint URLs and the `wasi:http` client.

pub mod answer;
pub mod columns;
pub mod config;
pub mod dates;
pub mod endpoint;
#[cfg(feature = "http")]
pub mod http;
pub mod json_lines;
pub mod partition_file;
pub mod sink;
pub mod transform;

pub use config::Config;
pub use json_lines::{headers_json, json_line, write_json_line, EventFields};
pub use partition_file::PartitionFile;
pub use sink::{Sink, Undelivered};
pub use transform::{header_name, preserve_existing, Fields, Outcome, Transform};

//! One event on its own, materialized from a [`Batch`](super::Batch).
//!
//! Guests only ever see batches in columns (since contract 0.3.0). The host
//! still needs a single event in a few places off the main path: a dead
//! letter carries one, `flumen test` reads and prints events as JSON, and
//! the unit tests' fakes script on them. Those places use this type.

use super::Header;

/// One Kafka record as the host received it, or as an interceptor replaced
/// it.
#[derive(Clone, Debug, Default)]
pub struct Event {
    /// Offset within the partition.
    pub offset: i64,
    /// Record timestamp in milliseconds since the Unix epoch, when the
    /// broker supplied one.
    pub timestamp: Option<i64>,
    /// Record key; `None` for a record without a key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Record headers, in the order the producer wrote them.
    pub headers: Vec<Header>,
}

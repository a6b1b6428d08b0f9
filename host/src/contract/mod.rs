//! The guest contract (`wit/`) as Rust: the vocabulary every stage of the
//! flow shares.
//!
//! A [`Batch`] is what the consumer reads, the batcher groups, the guests
//! see and the offset tracker finalizes; a verdict is what a guest answers
//! per event. The batch's columns and the verdicts are generated from the
//! WIT package by [`bindings`], so the host and the guests cannot disagree
//! about them.
//! This module depends on nothing else in the crate, so every other module
//! may use it.

pub mod batch;
pub mod bindings;
pub mod event;
pub mod verdict;

pub use batch::{Batch, Record, TooLarge};

pub use bindings::{Columns, Header, Level, Replacement, Source};
pub use event::Event;
pub use verdict::{Action, InterceptorVerdict, SinkVerdict};

/// The bytes of an event that count against `batch.max_bytes` and
/// `max_queued_bytes`, and that `/metrics` reports: key, value and headers,
/// the parts that vary.
pub fn event_bytes(e: &Event) -> usize {
    record_bytes(e.key.as_deref(), e.value.as_deref(), &e.headers)
}

/// [`event_bytes`] of the parts themselves (as an interceptor's replacement
/// carries them).
pub fn record_bytes(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    key.map_or(0, <[u8]>::len)
        + value.map_or(0, <[u8]>::len)
        + headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>()
}

/// Applies an interceptor's `replace` verdict: the event keeps its offset
/// and takes everything else from the replacement.
pub fn replace(event: &mut Event, r: Replacement) {
    event.timestamp = r.timestamp;
    event.key = r.key;
    event.value = r.value;
    event.headers = r.headers;
}

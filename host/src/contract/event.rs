//! One event on its own, materialized from a [`Batch`](super::Batch).
//!
//! Guests only ever see batches in columns (since contract 0.3.0). The host
//! still needs a single event in a few places off the main path: a dead
//! letter carries one, `flumen test` reads and prints events as JSON, and
//! the unit tests' fakes script on them. Those places use this type.

use super::batch::{Batch, Record, TooLarge};
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

/// Between events and batches, off the main path.
impl Batch {
    /// Appends a whole event.
    pub fn push_event(&mut self, e: &Event) -> Result<(), TooLarge> {
        self.push(Record {
            offset: e.offset,
            timestamp: e.timestamp,
            key: e.key.as_deref(),
            value: e.value.as_deref(),
            headers: e.headers.iter().map(|h| (h.name.as_bytes(), &h.value[..])),
        })
    }

    /// Event `i`, materialized.
    pub fn event(&self, i: usize) -> Event {
        Event {
            offset: self.offset(i),
            timestamp: self.timestamp(i),
            key: self.key(i).map(<[u8]>::to_vec),
            value: self.value(i).map(<[u8]>::to_vec),
            headers: self
                .headers(i)
                .map(|(name, value)| Header {
                    // Stored from a `str` (see `push`), so nothing is
                    // replaced here.
                    name: String::from_utf8_lossy(name).into_owned(),
                    value: value.to_vec(),
                })
                .collect(),
        }
    }

    /// Every event, materialized: the record form of the `list<event>`
    /// worlds.
    pub fn to_events(&self) -> Vec<Event> {
        (0..self.len()).map(|i| self.event(i)).collect()
    }

    /// The events as a batch.
    pub fn from_events(events: &[Event]) -> Result<Batch, TooLarge> {
        let mut b = Batch::with_capacity(events.len(), 0);
        for e in events {
            b.push_event(e)?;
        }
        Ok(b)
    }
}

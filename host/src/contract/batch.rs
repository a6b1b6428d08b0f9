//! A batch of events in the contract's columnar form (`types.columns`), the
//! one form a batch has from the moment it is read until it is delivered.
//!
//! The consumer appends each record straight from librdkafka's buffer into
//! a [`Batch`]: a handful of block copies into a few growing buffers, where
//! an [`Event`] per record cost an allocation for its value, one for its
//! key, and a free for each on the worker's core. A columnar guest is
//! handed the columns as they are, so the batch is not converted again per
//! call or per sink; a guest of the `list<event>` worlds gets
//! [`Batch::to_events`], and the rare paths that need one event (a dead
//! letter, a replacement) materialize just that event.

use super::bindings::{Columns, Event, Header};
use std::borrow::Cow;
use std::ops::Range;

/// `presence` bit: the event has a key.
pub const HAS_KEY: u8 = 1;
/// `presence` bit: the event has a value (clear for a tombstone).
pub const HAS_VALUE: u8 = 2;
/// `presence` bit: the broker supplied a timestamp.
pub const HAS_TIMESTAMP: u8 = 4;

/// An event whose bytes would not fit the 32-bit positions of `columns`. A
/// guest's memory is 32-bit too, so such a batch could not cross in any
/// form; the caller starts a new batch for it.
#[derive(Debug, thiserror::Error)]
#[error("the batch's {what} come to more than 4 GiB, more than a guest's memory can hold")]
pub struct TooLarge {
    /// Which column overflowed.
    what: &'static str,
}

/// One event's parts, borrowed, as [`Batch::push`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a, H> {
    /// Its offset in the partition.
    pub offset: i64,
    /// Broker or producer timestamp in ms, if any.
    pub timestamp: Option<i64>,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Its headers as (name, value), in order.
    pub headers: H,
}

/// Events of one partition, in offset order, in columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    cols: Columns,
    /// Bytes of keys, values and headers: what counts against
    /// `batch.max_bytes` and `max_queued_bytes`.
    bytes: usize,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            offsets: Vec::new(),
            timestamps: Vec::new(),
            presence: Vec::new(),
            keys: Vec::new(),
            key_ends: Vec::new(),
            values: Vec::new(),
            value_ends: Vec::new(),
            header_ends: Vec::new(),
            header_names: Vec::new(),
            header_name_ends: Vec::new(),
            header_values: Vec::new(),
            header_value_ends: Vec::new(),
        }
    }
}

impl PartialEq for Columns {
    fn eq(&self, o: &Self) -> bool {
        self.offsets == o.offsets
            && self.timestamps == o.timestamps
            && self.presence == o.presence
            && self.keys == o.keys
            && self.key_ends == o.key_ends
            && self.values == o.values
            && self.value_ends == o.value_ends
            && self.header_ends == o.header_ends
            && self.header_names == o.header_names
            && self.header_name_ends == o.header_name_ends
            && self.header_values == o.header_values
            && self.header_value_ends == o.header_value_ends
    }
}

/// Where item `i` of a column ends and the one before it ended.
fn span(ends: &[u32], i: usize) -> Range<usize> {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    start..ends[i] as usize
}

/// Bytes of items `items` of a column, together.
fn spans(ends: &[u32], items: Range<usize>) -> usize {
    if items.is_empty() {
        return 0;
    }
    span(ends, items.start)
        .start
        .abs_diff(ends[items.end - 1] as usize)
}

/// Where the first `n` items of a column end: the length its byte buffer
/// is cut to.
fn cut(ends: &[u32], n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ends[n - 1] as usize
    }
}

/// Appends `bytes` to `buf` and records where they end.
fn push_bytes(
    buf: &mut Vec<u8>,
    ends: &mut Vec<u32>,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), TooLarge> {
    let end = u32::try_from(buf.len() + bytes.len()).map_err(|_| TooLarge { what })?;
    buf.extend_from_slice(bytes);
    ends.push(end);
    Ok(())
}

impl Batch {
    /// An empty batch with room for `events` events of `bytes` value bytes.
    pub fn with_capacity(events: usize, bytes: usize) -> Self {
        let mut b = Self::default();
        b.cols.offsets.reserve(events);
        b.cols.timestamps.reserve(events);
        b.cols.presence.reserve(events);
        b.cols.key_ends.reserve(events);
        b.cols.value_ends.reserve(events);
        b.cols.header_ends.reserve(events);
        b.cols.values.reserve(bytes);
        b
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.cols.offsets.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.cols.offsets.is_empty()
    }

    /// Bytes of keys, values and headers, as [`super::event_bytes`] counts
    /// them for each event.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The offsets, in order.
    pub fn offsets(&self) -> &[i64] {
        &self.cols.offsets
    }

    /// Offset of event `i`.
    pub fn offset(&self, i: usize) -> i64 {
        self.cols.offsets[i]
    }

    /// The columns, as a columnar guest receives them.
    pub fn columns(&self) -> &Columns {
        &self.cols
    }

    /// Timestamp of event `i`, if it has one.
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        (self.cols.presence[i] & HAS_TIMESTAMP != 0).then(|| self.cols.timestamps[i])
    }

    /// Key of event `i`, if it has one.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        (self.cols.presence[i] & HAS_KEY != 0)
            .then(|| &self.cols.keys[span(&self.cols.key_ends, i)])
    }

    /// Value of event `i`; `None` for a tombstone.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        (self.cols.presence[i] & HAS_VALUE != 0)
            .then(|| &self.cols.values[span(&self.cols.value_ends, i)])
    }

    /// Headers of event `i` as (name, value), in order.
    pub fn headers(&self, i: usize) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let c = &self.cols;
        span(&c.header_ends, i).map(move |h| {
            (
                &c.header_names[span(&c.header_name_ends, h)],
                &c.header_values[span(&c.header_value_ends, h)],
            )
        })
    }

    /// Bytes of event `i`, as [`super::event_bytes`] counts them.
    pub fn event_bytes(&self, i: usize) -> usize {
        let c = &self.cols;
        let headers = span(&c.header_ends, i);
        span(&c.key_ends, i).len()
            + span(&c.value_ends, i).len()
            + spans(&c.header_name_ends, headers.clone())
            + spans(&c.header_value_ends, headers)
    }

    /// Appends one event. Header names are Kafka strings; a name that is
    /// not UTF-8 is stored converted lossily (U+FFFD for each bad
    /// sequence), since the WIT `header.name` is a `string`. On
    /// [`TooLarge`] nothing was appended.
    pub fn push<'a, H>(&mut self, r: Record<'a, H>) -> Result<(), TooLarge>
    where
        H: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let rollback = self.mark();
        let result = self.push_parts(r);
        if result.is_err() {
            self.truncate_to(rollback);
        }
        result
    }

    fn push_parts<'a, H>(&mut self, r: Record<'a, H>) -> Result<(), TooLarge>
    where
        H: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let c = &mut self.cols;
        let mut bytes = 0;
        let key = r.key.unwrap_or_default();
        let value = r.value.unwrap_or_default();
        push_bytes(&mut c.keys, &mut c.key_ends, key, "keys")?;
        push_bytes(&mut c.values, &mut c.value_ends, value, "values")?;
        bytes += key.len() + value.len();
        for (name, value) in r.headers {
            let name = String::from_utf8_lossy(name);
            push_bytes(
                &mut c.header_names,
                &mut c.header_name_ends,
                name.as_bytes(),
                "header names",
            )?;
            push_bytes(
                &mut c.header_values,
                &mut c.header_value_ends,
                value,
                "header values",
            )?;
            bytes += name.len() + value.len();
        }
        let headers =
            u32::try_from(c.header_name_ends.len()).map_err(|_| TooLarge { what: "headers" })?;
        c.header_ends.push(headers);
        c.offsets.push(r.offset);
        c.timestamps.push(r.timestamp.unwrap_or(0));
        c.presence.push(
            if r.key.is_some() { HAS_KEY } else { 0 }
                | if r.value.is_some() { HAS_VALUE } else { 0 }
                | if r.timestamp.is_some() {
                    HAS_TIMESTAMP
                } else {
                    0
                },
        );
        self.bytes += bytes;
        Ok(())
    }

    /// The lengths of every column, to roll a failed push back to.
    fn mark(&self) -> [usize; 13] {
        let c = &self.cols;
        [
            c.offsets.len(),
            c.timestamps.len(),
            c.presence.len(),
            c.keys.len(),
            c.key_ends.len(),
            c.values.len(),
            c.value_ends.len(),
            c.header_ends.len(),
            c.header_names.len(),
            c.header_name_ends.len(),
            c.header_values.len(),
            c.header_value_ends.len(),
            self.bytes,
        ]
    }

    fn truncate_to(&mut self, m: [usize; 13]) {
        let c = &mut self.cols;
        c.offsets.truncate(m[0]);
        c.timestamps.truncate(m[1]);
        c.presence.truncate(m[2]);
        c.keys.truncate(m[3]);
        c.key_ends.truncate(m[4]);
        c.values.truncate(m[5]);
        c.value_ends.truncate(m[6]);
        c.header_ends.truncate(m[7]);
        c.header_names.truncate(m[8]);
        c.header_name_ends.truncate(m[9]);
        c.header_values.truncate(m[10]);
        c.header_value_ends.truncate(m[11]);
        self.bytes = m[12];
    }

    /// Appends event `i` of `other`.
    pub fn push_from(&mut self, other: &Batch, i: usize) -> Result<(), TooLarge> {
        self.push(Record {
            offset: other.offset(i),
            timestamp: other.timestamp(i),
            key: other.key(i),
            value: other.value(i),
            headers: other.headers(i),
        })
    }

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

    /// Appends every event of `other`, in order; on [`TooLarge`], none.
    pub fn append(&mut self, other: &Batch) -> Result<(), TooLarge> {
        let rollback = self.mark();
        let result = (0..other.len()).try_for_each(|i| self.push_from(other, i));
        if result.is_err() {
            self.truncate_to(rollback);
        }
        result
    }

    /// The events at `indices` (in the order given), as a batch of their own.
    pub fn select(&self, indices: &[usize]) -> Result<Batch, TooLarge> {
        let mut b = Batch::with_capacity(indices.len(), 0);
        for &i in indices {
            b.push_from(self, i)?;
        }
        Ok(b)
    }

    /// Splits the batch in two at event `at`: `self` keeps `[0, at)`, the
    /// rest is returned.
    pub fn split_off(&mut self, at: usize) -> Batch {
        let at = at.min(self.len());
        let mut rest = Batch::with_capacity(self.len() - at, 0);
        for i in at..self.len() {
            // Cannot overflow: these events fitted together in `self`.
            let _ = rest.push_from(self, i);
        }
        let c = &self.cols;
        let headers = cut(&c.header_ends, at);
        let mark = [
            at,
            at,
            at,
            cut(&c.key_ends, at),
            at,
            cut(&c.value_ends, at),
            at,
            at,
            cut(&c.header_name_ends, headers),
            headers,
            cut(&c.header_value_ends, headers),
            headers,
            self.bytes - rest.bytes,
        ];
        self.truncate_to(mark);
        rest
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
                    // Stored from a `str` (see `push`), so this borrows.
                    name: match String::from_utf8_lossy(name) {
                        Cow::Borrowed(s) => s.to_owned(),
                        Cow::Owned(s) => s,
                    },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The events' debug forms (the generated `Event` has no `PartialEq`).
    fn shown(events: &[Event]) -> String {
        format!("{events:?}")
    }

    fn sample() -> Vec<Event> {
        vec![
            Event {
                offset: 7,
                timestamp: Some(1_700_000_000_000),
                key: Some(b"k1".to_vec()),
                value: Some(b"first".to_vec()),
                headers: vec![
                    Header {
                        name: "a".into(),
                        value: b"1".to_vec(),
                    },
                    Header {
                        name: "bb".into(),
                        value: Vec::new(),
                    },
                ],
            },
            // A tombstone without key or timestamp.
            Event {
                offset: 8,
                timestamp: None,
                key: None,
                value: None,
                headers: Vec::new(),
            },
            // Present but empty is not absent.
            Event {
                offset: 9,
                timestamp: Some(-5),
                key: Some(Vec::new()),
                value: Some(Vec::new()),
                headers: vec![Header {
                    name: "c".into(),
                    value: b"\xff".to_vec(),
                }],
            },
        ]
    }

    #[test]
    fn every_field_of_every_event_reads_back() {
        let events = sample();
        let b = Batch::from_events(&events).expect("fits");
        assert_eq!(shown(&b.to_events()), shown(&events));
        let c = b.columns();
        assert_eq!(c.offsets, [7, 8, 9]);
        assert_eq!(c.presence, [7, 0, 7]);
        assert_eq!(c.header_ends, [2, 2, 3]);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                b.event_bytes(i),
                crate::contract::event_bytes(e),
                "event {i}"
            );
        }
        assert_eq!(
            b.bytes(),
            events
                .iter()
                .map(crate::contract::event_bytes)
                .sum::<usize>()
        );
    }

    #[test]
    fn select_split_and_append_keep_every_field() {
        let events = sample();
        let b = Batch::from_events(&events).expect("fits");
        let picked = b.select(&[2, 0]).expect("fits");
        assert_eq!(
            shown(&picked.to_events()),
            shown(&[events[2].clone(), events[0].clone()])
        );
        let mut head = b.clone();
        let tail = head.split_off(1);
        assert_eq!(shown(&head.to_events()), shown(&events[..1]));
        assert_eq!(shown(&tail.to_events()), shown(&events[1..]));
        head.append(&tail).expect("fits");
        assert_eq!(head, b);
    }

    #[test]
    fn a_header_name_that_is_not_utf8_is_stored_lossily() {
        let mut b = Batch::default();
        b.push(Record {
            offset: 1,
            timestamp: None,
            key: None,
            value: Some(b"v"),
            headers: [(&b"n\xffx"[..], &b"v"[..])],
        })
        .expect("fits");
        assert_eq!(b.event(0).headers[0].name, "n\u{fffd}x");
    }

    #[test]
    fn an_empty_batch_has_empty_columns() {
        let b = Batch::from_events(&[]).expect("fits");
        assert!(b.is_empty() && b.columns().values.is_empty() && b.bytes() == 0);
    }
}

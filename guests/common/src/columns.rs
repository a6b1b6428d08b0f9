//! Reading a batch in columns (`types.columns`, contract 0.3 and later) event by
//! event, without copying.
//!
//! A guest gets its batch as a dozen flat lists instead of one record per
//! event, because that crosses into the guest several times faster.
//! [`columns!`](crate::columns!) borrows
//! them from the guest's generated `Columns` and [`Batch`] checks them once,
//! so that reading an event afterwards is a few slice lookups that cannot
//! fail:
//!
//! ```ignore
//! fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
//!     let batch = flumen_guest_common::columns!(batch)?;
//!     for e in batch.iter() {
//!         let _ = (e.offset, e.value, e.headers().count());
//!     }
//!     Ok(Vec::new()) // every event delivered
//! }
//! ```

/// `presence` bit: the event has a key.
pub const HAS_KEY: u8 = 1;
/// `presence` bit: the event has a value (clear for a tombstone).
pub const HAS_VALUE: u8 = 2;
/// `presence` bit: the broker supplied a timestamp.
pub const HAS_TIMESTAMP: u8 = 4;

/// The lists of a `types.columns`, borrowed. Build it with [`columns!`](crate::columns!),
/// which fills in every field from the generated type.
#[derive(Clone, Copy, Debug, Default)]
pub struct ColumnsRef<'a> {
    /// Offset of each event.
    pub offsets: &'a [i64],
    /// Timestamp of each event, where `presence` says it has one.
    pub timestamps: &'a [i64],
    /// Presence bits of each event.
    pub presence: &'a [u8],
    /// Every key, back to back.
    pub keys: &'a [u8],
    /// Where each event's key ends in `keys`.
    pub key_ends: &'a [u32],
    /// Every value, back to back.
    pub values: &'a [u8],
    /// Where each event's value ends in `values`.
    pub value_ends: &'a [u32],
    /// Where each event's headers end, counted in headers.
    pub header_ends: &'a [u32],
    /// Every header name, back to back.
    pub header_names: &'a [u8],
    /// Where each header's name ends.
    pub header_name_ends: &'a [u32],
    /// Every header value, back to back.
    pub header_values: &'a [u8],
    /// Where each header's value ends.
    pub header_value_ends: &'a [u32],
}

/// Checks a [`ColumnsRef`] borrowed from any guest's generated `Columns`
/// (the types differ per guest crate, the field names do not) and makes it
/// a [`Batch`]; a malformed batch is an `Err` naming what is wrong, which
/// a guest returns as its batch error.
#[macro_export]
macro_rules! columns {
    ($batch:expr) => {{
        let b = &$batch;
        $crate::columns::Batch::new($crate::columns::ColumnsRef {
            offsets: &b.offsets,
            timestamps: &b.timestamps,
            presence: &b.presence,
            keys: &b.keys,
            key_ends: &b.key_ends,
            values: &b.values,
            value_ends: &b.value_ends,
            header_ends: &b.header_ends,
            header_names: &b.header_names,
            header_name_ends: &b.header_name_ends,
            header_values: &b.header_values,
            header_value_ends: &b.header_value_ends,
        })
    }};
}

/// A checked batch in columns: every list has the length the contract
/// says, every end lies within its buffer and none goes backwards, and
/// every header name is UTF-8.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    c: ColumnsRef<'a>,
}

/// Checks that `ends` are `count` non-decreasing positions within a
/// buffer of `len` bytes (or items).
fn check_ends(ends: &[u32], count: usize, len: usize, what: &str) -> Result<(), String> {
    if ends.len() != count {
        return Err(format!(
            "malformed batch: {} entries in {what}, expected {count}",
            ends.len()
        ));
    }
    let mut last = 0;
    for &end in ends {
        if end < last || end as usize > len {
            return Err(format!(
                "malformed batch: {what} has {end} after {last}, outside 0..={len}"
            ));
        }
        last = end;
    }
    Ok(())
}

/// The range `ends[i - 1]..ends[i]` (from 0 for the first), of checked ends.
fn range(ends: &[u32], i: usize) -> std::ops::Range<usize> {
    let start = match i {
        0 => 0,
        _ => ends.get(i - 1).copied().unwrap_or(0) as usize,
    };
    start..ends.get(i).copied().unwrap_or(0) as usize
}

/// `buf[range]` of a range checked to lie within `buf`.
fn slice<T>(buf: &[T], r: std::ops::Range<usize>) -> &[T] {
    buf.get(r).unwrap_or_default()
}

impl<'a> Batch<'a> {
    /// Checks `c`; see [`Batch`] for what is checked.
    pub fn new(c: ColumnsRef<'a>) -> Result<Self, String> {
        let n = c.offsets.len();
        for (what, len) in [
            ("timestamps", c.timestamps.len()),
            ("presence", c.presence.len()),
        ] {
            if len != n {
                return Err(format!(
                    "malformed batch: {len} entries in {what}, expected {n}"
                ));
            }
        }
        check_ends(c.key_ends, n, c.keys.len(), "key-ends")?;
        check_ends(c.value_ends, n, c.values.len(), "value-ends")?;
        let headers = c.header_name_ends.len();
        check_ends(c.header_ends, n, headers, "header-ends")?;
        check_ends(
            c.header_name_ends,
            headers,
            c.header_names.len(),
            "header-name-ends",
        )?;
        check_ends(
            c.header_value_ends,
            headers,
            c.header_values.len(),
            "header-value-ends",
        )?;
        for h in 0..headers {
            std::str::from_utf8(slice(c.header_names, range(c.header_name_ends, h)))
                .map_err(|e| format!("malformed batch: header {h}'s name: {e}"))?;
        }
        Ok(Self { c })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.c.offsets.len()
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.c.offsets.is_empty()
    }

    /// Event `i`, if the batch has that many.
    pub fn get(&self, i: usize) -> Option<EventRef<'a>> {
        let c = &self.c;
        let offset = *c.offsets.get(i)?;
        let presence = c.presence.get(i).copied().unwrap_or(0);
        let present = |bit: u8, bytes: &'a [u8]| (presence & bit != 0).then_some(bytes);
        Some(EventRef {
            offset,
            timestamp: (presence & HAS_TIMESTAMP != 0)
                .then(|| c.timestamps.get(i).copied().unwrap_or(0)),
            key: present(HAS_KEY, slice(c.keys, range(c.key_ends, i))),
            value: present(HAS_VALUE, slice(c.values, range(c.value_ends, i))),
            headers: Headers {
                c: self.c,
                next: range(c.header_ends, i),
            },
        })
    }

    /// The events, in batch order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EventRef<'a>> + '_ {
        // `get` is `Some` for every index below `len`.
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }
}

/// One event of a [`Batch`], borrowed from its columns.
#[derive(Clone, Debug, Default)]
pub struct EventRef<'a> {
    /// Offset within the partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    headers: Headers<'a>,
}

impl<'a> EventRef<'a> {
    /// The event's headers as `(name, value)`, in order.
    pub fn headers(&self) -> Headers<'a> {
        self.headers.clone()
    }
}

/// The headers of one event of a [`Batch`].
#[derive(Clone, Debug, Default)]
pub struct Headers<'a> {
    c: ColumnsRef<'a>,
    next: std::ops::Range<usize>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let h = self.next.next()?;
        let name = slice(self.c.header_names, range(self.c.header_name_ends, h));
        // `Batch::new` checked that every name is UTF-8.
        let name = std::str::from_utf8(name).unwrap_or_default();
        let value = slice(self.c.header_values, range(self.c.header_value_ends, h));
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.next.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two events: one with everything, one tombstone with nothing.
    fn two() -> ColumnsRef<'static> {
        ColumnsRef {
            offsets: &[10, 11],
            timestamps: &[1_700_000_000_000, 0],
            presence: &[HAS_KEY | HAS_VALUE | HAS_TIMESTAMP, 0],
            keys: b"k",
            key_ends: &[1, 1],
            values: b"hello",
            value_ends: &[5, 5],
            header_ends: &[2, 2],
            header_names: b"abc",
            header_name_ends: &[1, 3],
            header_values: b"\xff2",
            header_value_ends: &[1, 2],
        }
    }

    #[test]
    fn reads_every_field_back() {
        let batch = Batch::new(two()).expect("well formed");
        assert_eq!(batch.len(), 2);
        let events: Vec<EventRef<'_>> = batch.iter().collect();
        let e = &events[0];
        assert_eq!(
            (e.offset, e.timestamp, e.key, e.value),
            (
                10,
                Some(1_700_000_000_000),
                Some(&b"k"[..]),
                Some(&b"hello"[..])
            )
        );
        let headers: Vec<_> = e.headers().collect();
        assert_eq!(headers, [("a", &b"\xff"[..]), ("bc", &b"2"[..])]);
        let t = &events[1];
        assert_eq!(
            (t.offset, t.timestamp, t.key, t.value),
            (11, None, None, None)
        );
        assert_eq!(t.headers().count(), 0);
        assert!(batch.get(2).is_none());
    }

    #[test]
    fn present_but_empty_is_not_absent() {
        let c = ColumnsRef {
            offsets: &[1],
            timestamps: &[0],
            presence: &[HAS_KEY | HAS_VALUE],
            key_ends: &[0],
            value_ends: &[0],
            header_ends: &[0],
            ..ColumnsRef::default()
        };
        let e = Batch::new(c)
            .expect("well formed")
            .iter()
            .next()
            .expect("one");
        assert_eq!((e.key, e.value), (Some(&b""[..]), Some(&b""[..])));
    }

    #[test]
    fn a_malformed_batch_is_refused_with_what_is_wrong() {
        let short = ColumnsRef {
            presence: &[0],
            ..two()
        };
        assert_eq!(
            Batch::new(short).unwrap_err(),
            "malformed batch: 1 entries in presence, expected 2"
        );
        let backwards = ColumnsRef {
            value_ends: &[5, 4],
            ..two()
        };
        assert!(Batch::new(backwards)
            .unwrap_err()
            .contains("value-ends has 4 after 5"));
        let past_end = ColumnsRef {
            key_ends: &[1, 9],
            ..two()
        };
        assert!(Batch::new(past_end).unwrap_err().contains("outside 0..=1"));
        let bad_name = ColumnsRef {
            header_names: b"a\xffc",
            ..two()
        };
        assert!(Batch::new(bad_name)
            .unwrap_err()
            .contains("header 1's name"));
    }
}

//! The columnar form of a batch (`types.columns`, since contract 0.2.2) and
//! the conversions between it and the record form the host works with.
//!
//! The host keeps a batch as `Vec<Event>`, because interceptors replace
//! single events and sinks retry subsets of a batch. A columnar guest gets
//! the batch converted at the call: a handful of block copies, against one
//! guest allocation per key, value and header for a `list<event>` (see the
//! `batch_layout` benchmark for what each costs).

use crate::contract::bindings::columnar_interceptor::exports::flumen::pipeline::columnar_interception as ci;
use crate::contract::bindings::columnar_sink::exports::flumen::pipeline::columnar_delivery as cd;
use crate::contract::bindings::{
    Action, Columns, Event, InterceptorVerdict, Replacement, SinkVerdict,
};

/// `presence` bit: the event has a key.
pub const HAS_KEY: u8 = 1;
/// `presence` bit: the event has a value (clear for a tombstone).
pub const HAS_VALUE: u8 = 2;
/// `presence` bit: the broker supplied a timestamp.
pub const HAS_TIMESTAMP: u8 = 4;

/// A batch whose bytes do not fit the 32-bit positions of `columns`. A
/// guest's memory is 32-bit too, so such a batch could not cross in either
/// form.
#[derive(Debug, thiserror::Error)]
#[error("the batch's {what} come to more than 4 GiB, more than a guest's memory can hold")]
pub struct TooLarge {
    /// Which column overflowed.
    what: &'static str,
}

/// Appends `bytes` to `buf` and records where they end.
fn push(
    buf: &mut Vec<u8>,
    ends: &mut Vec<u32>,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), TooLarge> {
    buf.extend_from_slice(bytes);
    ends.push(u32::try_from(buf.len()).map_err(|_| TooLarge { what })?);
    Ok(())
}

/// The batch in columns.
pub fn from_events(batch: &[Event]) -> Result<Columns, TooLarge> {
    let n = batch.len();
    let (mut key_bytes, mut value_bytes, mut headers) = (0, 0, 0);
    let (mut name_bytes, mut header_value_bytes) = (0, 0);
    for e in batch {
        key_bytes += e.key.as_ref().map_or(0, Vec::len);
        value_bytes += e.value.as_ref().map_or(0, Vec::len);
        headers += e.headers.len();
        for h in &e.headers {
            name_bytes += h.name.len();
            header_value_bytes += h.value.len();
        }
    }
    let mut c = Columns {
        offsets: Vec::with_capacity(n),
        timestamps: Vec::with_capacity(n),
        presence: Vec::with_capacity(n),
        keys: Vec::with_capacity(key_bytes),
        key_ends: Vec::with_capacity(n),
        values: Vec::with_capacity(value_bytes),
        value_ends: Vec::with_capacity(n),
        header_ends: Vec::with_capacity(n),
        header_names: Vec::with_capacity(name_bytes),
        header_name_ends: Vec::with_capacity(headers),
        header_values: Vec::with_capacity(header_value_bytes),
        header_value_ends: Vec::with_capacity(headers),
    };
    for e in batch {
        c.offsets.push(e.offset);
        c.timestamps.push(e.timestamp.unwrap_or(0));
        c.presence.push(
            if e.key.is_some() { HAS_KEY } else { 0 }
                | if e.value.is_some() { HAS_VALUE } else { 0 }
                | if e.timestamp.is_some() {
                    HAS_TIMESTAMP
                } else {
                    0
                },
        );
        push(
            &mut c.keys,
            &mut c.key_ends,
            e.key.as_deref().unwrap_or_default(),
            "keys",
        )?;
        push(
            &mut c.values,
            &mut c.value_ends,
            e.value.as_deref().unwrap_or_default(),
            "values",
        )?;
        for h in &e.headers {
            push(
                &mut c.header_names,
                &mut c.header_name_ends,
                h.name.as_bytes(),
                "header names",
            )?;
            push(
                &mut c.header_values,
                &mut c.header_value_ends,
                &h.value,
                "header values",
            )?;
        }
        c.header_ends.push(
            u32::try_from(c.header_name_ends.len()).map_err(|_| TooLarge { what: "headers" })?,
        );
    }
    Ok(c)
}

/// A columnar sink's verdict as the host's one verdict type.
pub fn sink_verdict(v: cd::Verdict) -> SinkVerdict {
    match v {
        cd::Verdict::Delivered => SinkVerdict::Delivered,
        cd::Verdict::Retry(why) => SinkVerdict::Retry(why),
        cd::Verdict::Reject(why) => SinkVerdict::Reject(why),
    }
}

/// A columnar interceptor's verdict as the host's one verdict type.
pub fn interceptor_verdict(v: ci::Verdict) -> InterceptorVerdict {
    InterceptorVerdict {
        action: match v.action {
            ci::Action::Keep => Action::Keep,
            ci::Action::Drop => Action::Drop,
            ci::Action::Replace(r) => Action::Replace(Replacement {
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }),
        },
        route: v.route,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::Header;

    fn range(ends: &[u32], i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        start..ends[i] as usize
    }

    #[test]
    fn every_field_of_every_event_can_be_read_back() {
        let events = vec![
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
        ];
        let c = from_events(&events).expect("fits");
        assert_eq!(c.offsets, [7, 8, 9]);
        assert_eq!(c.presence, [7, 0, 7]);
        assert_eq!(c.timestamps[0], 1_700_000_000_000);
        assert_eq!(c.timestamps[2], -5);
        assert_eq!(c.header_ends, [2, 2, 3]);
        for (i, e) in events.iter().enumerate() {
            let key =
                (c.presence[i] & HAS_KEY != 0).then(|| c.keys[range(&c.key_ends, i)].to_vec());
            let value = (c.presence[i] & HAS_VALUE != 0)
                .then(|| c.values[range(&c.value_ends, i)].to_vec());
            assert_eq!(key, e.key);
            assert_eq!(value, e.value);
            let first = if i == 0 {
                0
            } else {
                c.header_ends[i - 1] as usize
            };
            let headers: Vec<(&[u8], &[u8])> = (first..c.header_ends[i] as usize)
                .map(|h| {
                    (
                        &c.header_names[range(&c.header_name_ends, h)],
                        &c.header_values[range(&c.header_value_ends, h)],
                    )
                })
                .collect();
            let expected: Vec<(&[u8], &[u8])> = e
                .headers
                .iter()
                .map(|h| (h.name.as_bytes(), h.value.as_slice()))
                .collect();
            assert_eq!(headers, expected);
        }
    }

    #[test]
    fn an_empty_batch_has_empty_columns() {
        let c = from_events(&[]).expect("fits");
        assert!(c.offsets.is_empty() && c.values.is_empty() && c.header_ends.is_empty());
    }
}

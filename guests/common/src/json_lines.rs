//! One event as one JSON line: the format of the file sinks, the HTTP sink
//! and the s3 sink's JSON objects. Bytes that are not UTF-8 are kept as
//! base64, so nothing of an event is lost in the rendering.

use crate::columns;
use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The fields of one event with its batch's source, borrowed from a batch in
/// columns ([`columns::EventRef::fields`]).
pub struct EventFields<'a, H> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers as `(name, value)`.
    pub headers: H,
}

/// Renders bytes for JSON into `map`: UTF-8 text as a string under `field`,
/// anything else as base64 under `<field>_base64`, so that no byte of the
/// event is lost or mangled by the rendering.
fn put_bytes<M: SerializeMap>(
    map: &mut M,
    field: &str,
    bytes: Option<&[u8]>,
) -> Result<(), M::Error> {
    match bytes {
        None => map.serialize_entry(field, &()),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => map.serialize_entry(field, s),
            Err(_) => map.serialize_entry(
                &format!("{field}_base64"),
                &base64::engine::general_purpose::STANDARD.encode(b),
            ),
        },
    }
}

/// One event as a JSON object, serialized straight from the borrowed fields
/// (no intermediate `serde_json::Value`, whose building copied every value
/// twice and dominated a file sink's time).
struct Line<'a> {
    label: Option<&'a str>,
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [(&'a str, &'a [u8])],
}

/// One header as `{"name": …, "value": …}`.
struct HeaderJson<'a>(&'a str, &'a [u8]);

impl Serialize for HeaderJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", self.0)?;
        put_bytes(&mut m, "value", Some(self.1))?;
        m.end()
    }
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(label) = self.label {
            m.serialize_entry("label", label)?;
        }
        m.serialize_entry("topic", self.topic)?;
        m.serialize_entry("partition", &self.partition)?;
        m.serialize_entry("offset", &self.offset)?;
        m.serialize_entry("timestamp", &self.timestamp)?;
        put_bytes(&mut m, "key", self.key)?;
        put_bytes(&mut m, "value", self.value)?;
        let headers: Vec<HeaderJson<'_>> =
            self.headers.iter().map(|(n, v)| HeaderJson(n, v)).collect();
        m.serialize_entry("headers", &headers)?;
        m.end()
    }
}

/// An event's headers as the JSON array its JSON line carries (`name`,
/// and `value`, or `value_base64` for bytes that are not UTF-8): for
/// formats that hold the headers as one text column.
pub fn headers_json(headers: &[(&str, &[u8])]) -> String {
    let list: Vec<HeaderJson<'_>> = headers.iter().map(|(n, v)| HeaderJson(n, v)).collect();
    // Strings and byte arrays only: serializing cannot fail.
    serde_json::to_string(&list).unwrap_or_default()
}

/// Appends one event to `out` as a single JSON line (with the trailing
/// newline), with a `label` field first when one is given.
pub fn write_json_line<'a, H>(out: &mut Vec<u8>, event: EventFields<'a, H>, label: Option<&str>)
where
    H: Iterator<Item = (&'a str, &'a [u8])>,
{
    let headers: Vec<(&str, &[u8])> = event.headers.collect();
    let line = Line {
        label,
        topic: event.topic,
        partition: event.partition,
        offset: event.offset,
        timestamp: event.timestamp,
        key: event.key,
        value: event.value,
        headers: &headers,
    };
    // Serializing into a Vec cannot fail: every field is a string, a number
    // or null, and writes to a Vec do not error.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

/// Renders one event as a single JSON line (with the trailing newline).
pub fn json_line<'a, H>(event: EventFields<'a, H>) -> String
where
    H: Iterator<Item = (&'a str, &'a [u8])>,
{
    let mut out = Vec::new();
    write_json_line(&mut out, event, None);
    // serde_json writes UTF-8 only.
    String::from_utf8_lossy(&out).into_owned()
}

// Here rather than in `columns`, so that `columns.rs` stands alone: `flumen
// new` copies it into Rust guest projects, which have no JSON lines.
impl<'a> columns::EventRef<'a> {
    /// The event's fields, with its batch's `topic` and `partition`, as
    /// [`write_json_line`] takes them.
    pub fn fields(&self, topic: &'a str, partition: i32) -> EventFields<'a, columns::Headers<'a>> {
        EventFields {
            topic,
            partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key,
            value: self.value,
            headers: self.headers(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::columns::{Batch, ColumnsRef, HAS_KEY, HAS_TIMESTAMP, HAS_VALUE};

    #[test]
    fn renders_an_event_of_a_batch_as_one_json_line() {
        let batch = Batch::new(ColumnsRef {
            offsets: &[10],
            timestamps: &[1_700_000_000_000],
            presence: &[HAS_KEY | HAS_VALUE | HAS_TIMESTAMP],
            keys: b"k",
            key_ends: &[1],
            values: b"hello",
            value_ends: &[5],
            header_ends: &[2],
            header_names: b"abc",
            header_name_ends: &[1, 3],
            header_values: b"\xff2",
            header_value_ends: &[1, 2],
        })
        .expect("well formed");
        let e = batch.get(0).expect("first");
        assert_eq!(
            super::json_line(e.fields("t", 3)),
            "{\"topic\":\"t\",\"partition\":3,\"offset\":10,\"timestamp\":1700000000000,\
             \"key\":\"k\",\"value\":\"hello\",\"headers\":[{\"name\":\"a\",\"value_base64\":\
             \"/w==\"},{\"name\":\"bc\",\"value\":\"2\"}]}\n"
        );
    }
}

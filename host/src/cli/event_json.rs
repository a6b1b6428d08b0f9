//! Events as JSON lines: what `flumen test` reads and prints.
//!
//! The shape is the one the file sinks write (`topic`, `partition`,
//! `offset`, `timestamp`, `key`, `value`, `headers`), so a sink's output can
//! be fed back in, and `flumen test`'s output events can be piped into the
//! next component. Bytes that are not UTF-8 travel as base64 under
//! `<field>_base64`, so no byte is lost or mangled either way.

use crate::contract::{Event, Header, Source};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// One line of an events file that could not be read as an event.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EventLineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// An event read from a line, with the source the line names, if any.
#[derive(Debug, Clone)]
pub struct EventLine {
    /// `topic` of the line, if given.
    pub topic: Option<String>,
    /// `partition` of the line, if given.
    pub partition: Option<i32>,
    /// The event.
    pub event: Event,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    topic: Option<String>,
    partition: Option<i32>,
    offset: Option<i64>,
    timestamp: Option<i64>,
    key: Option<String>,
    key_base64: Option<String>,
    value: Option<String>,
    value_base64: Option<String>,
    #[serde(default)]
    headers: Vec<RawHeader>,
    /// Written by the file sinks' `label` option; carries nothing an event
    /// has, so it is accepted and ignored.
    #[serde(default, rename = "label")]
    _label: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    value: Option<String>,
    value_base64: Option<String>,
}

/// Reads the bytes of `field`: text under `field`, base64 under
/// `<field>_base64`, or neither (`None`).
fn bytes_of(
    field: &str,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Option<Vec<u8>>, String> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(format!("both `{field}` and `{field}_base64` are given")),
        (Some(t), None) => Ok(Some(t.into_bytes())),
        (None, Some(b)) => BASE64
            .decode(b.as_bytes())
            .map(Some)
            .map_err(|e| format!("`{field}_base64` is not valid base64: {e}")),
        (None, None) => Ok(None),
    }
}

/// Parses one line. `index` is the event's position in the file, its offset
/// when the line gives none; `line` is the line number for errors.
pub fn parse_line(text: &str, index: i64, line: usize) -> Result<EventLine, EventLineError> {
    let fail = |reason: String| EventLineError { line, reason };
    let raw: RawLine = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let headers = raw
        .headers
        .into_iter()
        .map(|h| {
            let value = bytes_of("value", h.value, h.value_base64)
                .map_err(|r| format!("header `{}`: {r}", h.name))?
                .unwrap_or_default();
            Ok(Header {
                name: h.name,
                value,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(fail)?;
    Ok(EventLine {
        topic: raw.topic,
        partition: raw.partition,
        event: Event {
            offset: raw.offset.unwrap_or(index),
            timestamp: raw.timestamp,
            key: bytes_of("key", raw.key, raw.key_base64).map_err(fail)?,
            value: bytes_of("value", raw.value, raw.value_base64).map_err(fail)?,
            headers,
        },
    })
}

/// Reads every event of a JSON-lines text; blank lines are skipped.
pub fn parse_lines(text: &str) -> Result<Vec<EventLine>, EventLineError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .enumerate()
        .map(|(index, (n, l))| parse_line(l, index as i64, n + 1))
        .collect()
}

/// Puts `bytes` into `map` as text under `field` or base64 under
/// `<field>_base64`.
fn put_bytes(map: &mut Map<String, Value>, field: &str, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => {
            map.insert(field.to_owned(), Value::Null);
        }
        Some(Ok(text)) => {
            map.insert(field.to_owned(), Value::from(text));
        }
        Some(Err(_)) => {
            let encoded = BASE64.encode(bytes.unwrap_or_default());
            map.insert(format!("{field}_base64"), Value::from(encoded));
        }
    }
}

/// One event of `source` as a JSON object, in the shape [`parse_line`]
/// reads.
pub fn to_json(source: &Source, event: &Event) -> Value {
    let mut map = Map::new();
    map.insert("topic".into(), Value::from(source.topic.as_str()));
    map.insert("partition".into(), Value::from(source.partition));
    map.insert("offset".into(), Value::from(event.offset));
    map.insert("timestamp".into(), json!(event.timestamp));
    put_bytes(&mut map, "key", event.key.as_deref());
    put_bytes(&mut map, "value", event.value.as_deref());
    let headers = event
        .headers
        .iter()
        .map(|h| {
            let mut m = Map::new();
            m.insert("name".into(), Value::from(h.name.as_str()));
            put_bytes(&mut m, "value", Some(&h.value));
            Value::Object(m)
        })
        .collect();
    map.insert("headers".into(), Value::Array(headers));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sink_line_reads_back() {
        let line = r#"{"label":"x","topic":"t","partition":2,"offset":7,"timestamp":5,"key":null,"value_base64":"/wA=","headers":[{"name":"h","value":"v"}]}"#;
        let e = parse_line(line, 0, 1).unwrap();
        assert_eq!(e.topic.as_deref(), Some("t"));
        assert_eq!(e.partition, Some(2));
        assert_eq!(e.event.offset, 7);
        assert_eq!(e.event.value, Some(vec![0xff, 0]));
        assert_eq!(e.event.key, None);
        assert_eq!(e.event.headers[0].value, b"v");
        let source = Source {
            topic: "t".into(),
            partition: 2,
        };
        let back = parse_line(&to_json(&source, &e.event).to_string(), 0, 1).unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
    }

    #[test]
    fn offsets_default_to_the_position_and_blank_lines_are_skipped() {
        let events = parse_lines("{\"value\":\"a\"}\n\n{\"value\":\"b\"}\n").unwrap();
        let offsets: Vec<i64> = events.iter().map(|e| e.event.offset).collect();
        assert_eq!(offsets, [0, 1]);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_problem() {
        let e = parse_lines("{\"value\":\"a\"}\n{\"valu\":\"b\"}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("unknown field `valu`"), "{e}");
        let e = parse_lines("{\"value\":\"a\",\"value_base64\":\"YQ==\"}").unwrap_err();
        assert!(
            e.to_string().contains("both `value` and `value_base64`"),
            "{e}"
        );
        let e = parse_lines("{\"key_base64\":\"!!\"}").unwrap_err();
        assert!(
            e.to_string().contains("`key_base64` is not valid base64"),
            "{e}"
        );
        let e = parse_lines("not json").unwrap_err();
        assert_eq!(e.line, 1);
    }
}

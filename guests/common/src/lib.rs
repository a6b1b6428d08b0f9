//! Helpers shared by flumen's Rust guests.
//!
//! Each guest generates its own bindings from `wit/`, so the event types differ
//! per crate; the helpers here take plain borrowed fields instead.

pub mod answer;
pub mod columns;
pub mod dates;
pub mod endpoint;
#[cfg(feature = "http")]
pub mod http;

use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A guest's configuration as the host passes it to `init`: `(key, value)`
/// pairs from the guest's TOML table.
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs and refuses any key not in `known`, so that a typo in
    /// the operator's TOML is an error at start-up rather than a silently
    /// ignored setting.
    pub fn new(entries: Vec<(String, String)>, known: &[&str]) -> Result<Self, String> {
        if let Some((key, _)) = entries.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown config key `{key}`; expected one of: {}",
                known.join(", ")
            ));
        }
        Ok(Self { entries })
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming the missing key.
    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("missing required config key `{key}`"))
    }

    /// The unsigned integer value of `key`, or `default` when unset.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                format!("config key `{key}` must be a non-negative integer, got `{v}`")
            }),
        }
    }

    /// The value of `key`, which must be one of `allowed`; the first of
    /// them when unset.
    pub fn one_of<'a>(&self, key: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
        let value = self.get(key).unwrap_or(allowed[0]);
        allowed
            .iter()
            .copied()
            .find(|a| *a == value)
            .ok_or_else(|| {
                let quoted: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                let (last, rest) = quoted.split_last().expect("at least one allowed value");
                let choices = if rest.is_empty() {
                    last.clone()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                format!("config key `{key}` must be {choices}, got `{value}`")
            })
    }

    /// The boolean value of `key`, or `default` when unset.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "config key `{key}` must be true or false, got `{other}`"
            )),
        }
    }
}

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

/// One output file per partition. Each partition is served by its own guest
/// instance, and instances appending to one shared file would interleave
/// their writes (WASI splits a large write into several), tearing lines.
/// So the `path` template must contain `%{partition}` (and may contain
/// `%{topic}`); the file is opened on the first batch, when they are known.
/// A sink with several calls in flight per partition (`max_in_flight`) has
/// several instances per partition: its template must also contain
/// `%{instance}`, which each instance fills with an id of its own.
pub struct PartitionFile {
    template: String,
    open: Option<(String, std::fs::File)>,
}

impl PartitionFile {
    /// Checks the template and that its directory is visible to the guest.
    pub fn new(template: &str) -> Result<Self, String> {
        if !template.contains("%{partition}") {
            return Err(format!(
                "config key `path` must contain `%{{partition}}` (got `{template}`): each \
                 partition has its own sink instance, and instances sharing one file would \
                 interleave their lines; e.g. \"/out/events-%{{topic}}-%{{partition}}.jsonl\""
            ));
        }
        if let Some((dir, _)) = template.rsplit_once('/') {
            let dir = if dir.is_empty() { "/" } else { dir };
            if !dir.contains("%{") && !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
                return Err(format!(
                    "directory `{dir}` of `path` is not visible to this component: grant it \
                     read-write with `dirs` in the host config"
                ));
            }
        }
        // Random per instance: `RandomState` is seeded from WASI's random.
        use std::hash::BuildHasher;
        let id = std::collections::hash_map::RandomState::new().hash_one(0u8);
        Ok(Self {
            template: template.replace("%{instance}", &format!("{id:016x}")),
            open: None,
        })
    }

    /// The file for `topic`/`partition`, opened for appending on first use.
    pub fn get(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<(&str, &mut std::fs::File), String> {
        let path = self
            .template
            .replace("%{topic}", topic)
            .replace("%{partition}", &partition.to_string());
        if self.open.as_ref().is_none_or(|(p, _)| *p != path) {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open `{path}` for appending: {e}"))?;
            self.open = Some((path, file));
        }
        match self.open.as_mut() {
            Some((p, f)) => Ok((p.as_str(), f)),
            None => Err("no open file".to_owned()),
        }
    }
}

/// One event as a library interceptor sees it: its fields, copied out of
/// the batch's columns and moved into a `Replacement` when the interceptor
/// changed them.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers as `(name, value)`, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Fields {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets header `name` to `value`: replaces every header of that name
    /// (keeping the first one's place) or appends one. With `preserve`, an
    /// existing header is left as it is. Returns whether anything changed.
    pub fn set_header(&mut self, name: &str, value: Vec<u8>, preserve: bool) -> bool {
        match self.headers.iter().position(|(n, _)| n == name) {
            Some(_) if preserve => false,
            Some(first) => {
                self.headers[first].1 = value;
                let mut i = 0;
                self.headers.retain(|(n, _)| {
                    i += 1;
                    i - 1 == first || n != name
                });
                true
            }
            None => {
                self.headers.push((name.to_owned(), value));
                true
            }
        }
    }
}

/// What a library interceptor did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed on unchanged.
    Keep,
    /// Passed on with the changes made to its [`Fields`].
    Changed,
    /// Dropped.
    Drop,
}

/// A library interceptor: configured once, then applied to each event.
/// [`transform_interceptor!`] turns an implementation into a component.
pub trait Transform: Sized {
    /// The config keys it accepts; any other key is refused at `init`.
    const KEYS: &'static [&'static str];
    /// Builds the interceptor from its config, or says what is wrong.
    fn new(config: &Config) -> Result<Self, String>;
    /// Applies it to one event of `topic`/`partition` at `offset`.
    fn apply(&mut self, topic: &str, partition: i32, offset: i64, event: &mut Fields) -> Outcome;
}

/// A `preserve_existing` key (`true`/`false`): whether a header the event
/// already has is kept rather than overwritten.
pub fn preserve_existing(config: &Config, default: bool) -> Result<bool, String> {
    config.bool_or("preserve_existing", default)
}

/// A header name from config key `key`, or `default`; never empty.
pub fn header_name(config: &Config, key: &str, default: &str) -> Result<String, String> {
    match config.get(key).unwrap_or(default) {
        "" => Err(format!("config key `{key}` must not be empty")),
        name => Ok(name.to_owned()),
    }
}

/// Makes the interceptor component of a [`Transform`]: generates the
/// `interceptor` world's bindings from `wit/` and exports them,
/// calling `Transform::new` from `init` and `Transform::apply` for each event
/// of a batch. The crate must depend on `wit-bindgen` and sit two folders
/// below `guests/` (as `guests/library/<name>` does): the WIT path is
/// relative to it.
///
/// Each event's fields are copied out of the batch's columns into the
/// [`Fields`] that `apply` may change, and moved into a replacement when it
/// did; the answer holds no action bytes at all while every event is kept.
#[macro_export]
macro_rules! transform_interceptor {
    ($t:ty) => {
        wit_bindgen::generate!({ world: "interceptor", path: "../../../wit" });

        use exports::flumen::pipeline::interception as __interception;
        use flumen::pipeline::types::Header as __Header;

        std::thread_local! {
            static __STATE: std::cell::RefCell<Option<$t>> =
                const { std::cell::RefCell::new(None) };
        }

        struct __Interceptor;

        impl __interception::Guest for __Interceptor {
            fn init(config: Vec<(String, String)>) -> Result<(), String> {
                let config = $crate::Config::new(config, <$t as $crate::Transform>::KEYS)?;
                let state = <$t as $crate::Transform>::new(&config)?;
                __STATE.with(|s| *s.borrow_mut() = Some(state));
                Ok(())
            }

            fn process(
                source: __interception::Source,
                batch: __interception::Columns,
            ) -> Result<__interception::Verdicts, String> {
                let batch = $crate::columns!(batch)?;
                __STATE.with(|s| {
                    let mut s = s.borrow_mut();
                    let t = s.as_mut().ok_or("process called before init")?;
                    let mut actions = $crate::answer::Actions::new(batch.len());
                    let mut replacements = Vec::new();
                    for (i, e) in batch.iter().enumerate() {
                        let mut fields = $crate::Fields {
                            timestamp: e.timestamp,
                            key: e.key.map(<[u8]>::to_vec),
                            value: e.value.map(<[u8]>::to_vec),
                            headers: e
                                .headers()
                                .map(|(name, value)| (name.to_owned(), value.to_vec()))
                                .collect(),
                        };
                        let outcome = <$t as $crate::Transform>::apply(
                            t, &source.topic, source.partition, e.offset, &mut fields,
                        );
                        match outcome {
                            $crate::Outcome::Keep => {}
                            $crate::Outcome::Drop => actions.set(i, $crate::answer::DROP),
                            $crate::Outcome::Changed => {
                                actions.set(i, $crate::answer::REPLACE);
                                replacements.push(__interception::Replacement {
                                    timestamp: fields.timestamp,
                                    key: fields.key,
                                    value: fields.value,
                                    headers: fields
                                        .headers
                                        .into_iter()
                                        .map(|(name, value)| __Header { name, value })
                                        .collect(),
                                });
                            }
                        }
                    }
                    Ok(__interception::Verdicts {
                        actions: actions.into_bytes(),
                        replacements,
                        routes: Vec::new(),
                    })
                })
            }
        }

        export!(__Interceptor);
    };
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
    use super::columns::{Batch, ColumnsRef, HAS_KEY, HAS_TIMESTAMP, HAS_VALUE};

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

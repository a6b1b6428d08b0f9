//! The regex extractor interceptor (Flume's `regex_extractor`): copies the
//! capture groups of a regular expression's first match in the value into
//! headers.
//!
//! Config keys:
//! - `pattern` (required): a regular expression (Rust `regex` syntax),
//!   matched against the value's raw bytes.
//! - `headers`: comma-separated header names for capture groups 1, 2, …
//!   (Flume's `serializers.*.name`); an empty name skips its group. Without
//!   it, the pattern's named groups (`(?P<level>\w+)`) name the headers.
//! - `preserve_existing` (default `false`): leave a header the event already
//!   has.
//!
//! An event whose value does not match, or a tombstone, passes unchanged; so
//! does a group that did not take part in the match.

use flumen_guest_common::{preserve_existing, Config, Fields, Outcome, Transform};
use regex::bytes::Regex;

struct Extractor {
    pattern: Regex,
    /// Header name per capture group index (0 is the whole match: unused).
    names: Vec<Option<String>>,
    preserve: bool,
}

impl Transform for Extractor {
    const KEYS: &'static [&'static str] = &["pattern", "headers", "preserve_existing"];

    fn new(config: &Config) -> Result<Self, String> {
        let pattern = Regex::new(config.required("pattern")?)
            .map_err(|e| format!("config key `pattern` is not a valid regex: {e}"))?;
        let groups = pattern.captures_len() - 1;
        let names: Vec<Option<String>> = match config.get("headers") {
            Some(list) => {
                let given: Vec<&str> = list.split(',').map(str::trim).collect();
                if given.len() != groups {
                    return Err(format!(
                        "config key `headers` names {} headers but `pattern` has {groups} \
                         capture groups",
                        given.len()
                    ));
                }
                std::iter::once(None)
                    .chain(
                        given
                            .into_iter()
                            .map(|n| (!n.is_empty()).then(|| n.to_owned())),
                    )
                    .collect()
            }
            None => pattern
                .capture_names()
                .map(|n| n.map(str::to_owned))
                .collect(),
        };
        if names.iter().all(Option::is_none) {
            return Err(
                "nothing to extract: give `pattern` named groups like (?P<level>\\w+), or name \
                 its groups with `headers`"
                    .into(),
            );
        }
        Ok(Self {
            pattern,
            names,
            preserve: preserve_existing(config, false)?,
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        let Some(caps) = e.value.as_deref().and_then(|v| self.pattern.captures(v)) else {
            return Outcome::Keep;
        };
        let found: Vec<(&str, Vec<u8>)> = self
            .names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| Some((name.as_deref()?, caps.get(i)?.as_bytes().to_vec())))
            .collect();
        let mut changed = false;
        for (name, value) in found {
            changed |= e.set_header(name, value, self.preserve);
        }
        if changed {
            Outcome::Changed
        } else {
            Outcome::Keep
        }
    }
}

flumen_guest_common::transform_interceptor!(Extractor);

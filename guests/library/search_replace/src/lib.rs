//! The search-and-replace interceptor (Flume's `search_replace`): rewrites
//! every match of a regular expression in the value.
//!
//! Config keys:
//! - `search_pattern` (required): a regular expression (Rust `regex`
//!   syntax), matched against the value's raw bytes.
//! - `replace_string` (default empty): the replacement; `$1` or `${name}`
//!   insert capture groups, `$$` a literal `$`.
//!
//! An event without a match, or a tombstone, passes unchanged.

use flumen_guest_common::{Config, Fields, Outcome, Transform};
use regex::bytes::Regex;
use std::borrow::Cow;

struct SearchReplace {
    pattern: Regex,
    replacement: Vec<u8>,
}

impl Transform for SearchReplace {
    const KEYS: &'static [&'static str] = &["search_pattern", "replace_string"];

    fn new(config: &Config) -> Result<Self, String> {
        let pattern = Regex::new(config.required("search_pattern")?)
            .map_err(|e| format!("config key `search_pattern` is not a valid regex: {e}"))?;
        Ok(Self {
            pattern,
            replacement: config
                .get("replace_string")
                .unwrap_or("")
                .as_bytes()
                .to_vec(),
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        let Some(value) = e.value.as_deref() else {
            return Outcome::Keep;
        };
        match self.pattern.replace_all(value, self.replacement.as_slice()) {
            Cow::Borrowed(_) => Outcome::Keep,
            Cow::Owned(new) => {
                e.value = Some(new);
                Outcome::Changed
            }
        }
    }
}

flumen_guest_common::transform_interceptor!(SearchReplace);

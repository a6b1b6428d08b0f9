//! The static interceptor (Flume's `static`): adds one fixed header to every
//! event.
//!
//! Config keys:
//! - `header` (required): the header's name (Flume's `key`).
//! - `value` (required): its value.
//! - `preserve_existing` (default `true`, as in Flume): leave the header of
//!   an event that already has one.

use flumen_guest_common::{preserve_existing, Config, Fields, Outcome, Transform};

struct Static {
    header: String,
    value: Vec<u8>,
    preserve: bool,
}

impl Transform for Static {
    const KEYS: &'static [&'static str] = &["header", "value", "preserve_existing"];

    fn new(config: &Config) -> Result<Self, String> {
        let header = config.required("header")?;
        if header.is_empty() {
            return Err("config key `header` must not be empty".into());
        }
        Ok(Self {
            header: header.to_owned(),
            value: config.required("value")?.as_bytes().to_vec(),
            preserve: preserve_existing(config, true)?,
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        if e.set_header(&self.header, self.value.clone(), self.preserve) {
            Outcome::Changed
        } else {
            Outcome::Keep
        }
    }
}

flumen_guest_common::transform_interceptor!(Static);

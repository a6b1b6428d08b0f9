//! The UUID interceptor (Flume's `UUIDInterceptor`): gives each event a
//! random (version 4) UUID in a header, so that duplicates delivered by an
//! at-least-once pipeline can be recognised downstream.
//!
//! Config keys:
//! - `header` (default `id`): the header to set.
//! - `prefix` (default empty): prepended to each UUID.
//! - `preserve_existing` (default `true`, as in Flume): leave the header of
//!   an event that already has one.
//!
//! A redelivered event gets a new UUID unless it already carries one from an
//! earlier stage; put this interceptor where the events enter the system.

use flumen_guest_common::{header_name, preserve_existing, Config, Fields, Outcome, Transform};

struct UuidHeader {
    header: String,
    prefix: String,
    preserve: bool,
}

impl Transform for UuidHeader {
    const KEYS: &'static [&'static str] = &["header", "prefix", "preserve_existing"];

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Self {
            header: header_name(config, "header", "id")?,
            prefix: config.get("prefix").unwrap_or("").to_owned(),
            preserve: preserve_existing(config, true)?,
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        if self.preserve && e.header(&self.header).is_some() {
            return Outcome::Keep;
        }
        let id = format!("{}{}", self.prefix, uuid::Uuid::new_v4());
        e.set_header(&self.header, id.into_bytes(), false);
        Outcome::Changed
    }
}

flumen_guest_common::transform_interceptor!(UuidHeader);

//! The timestamp interceptor (Flume's `timestamp`): stamps each event with
//! a time, in milliseconds since the Unix epoch, in a header.
//!
//! Config keys:
//! - `header` (default `timestamp`): the header to set.
//! - `from` (default `now`): `now` is the time the event passes through, as
//!   Flume's interceptor does; `event` is the Kafka record's own timestamp
//!   (an event without one gets the time it passes through).
//! - `preserve_existing` (default `false`): leave the header of an event
//!   that already has one.

use flumen_guest_common::{header_name, preserve_existing, Config, Fields, Outcome, Transform};
use std::time::{SystemTime, UNIX_EPOCH};

struct Timestamp {
    header: String,
    from_event: bool,
    preserve: bool,
}

impl Transform for Timestamp {
    const KEYS: &'static [&'static str] = &["header", "from", "preserve_existing"];

    fn new(config: &Config) -> Result<Self, String> {
        let from_event = config.one_of("from", &["now", "event"])? == "event";
        Ok(Self {
            header: header_name(config, "header", "timestamp")?,
            from_event,
            preserve: preserve_existing(config, false)?,
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        let millis = match e.timestamp.filter(|_| self.from_event) {
            Some(t) => t,
            // A clock before 1970 is not worth failing a batch over.
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        if e.set_header(&self.header, millis.to_string().into_bytes(), self.preserve) {
            Outcome::Changed
        } else {
            Outcome::Keep
        }
    }
}

flumen_guest_common::transform_interceptor!(Timestamp);

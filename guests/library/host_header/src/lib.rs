//! The host interceptor (Flume's `host`): stamps each event with the name
//! of the machine it passed through, in a header.
//!
//! A component cannot look up the machine's name or address: the sandbox
//! gives it no network and no system calls. So the name comes from the
//! config, or from the `HOSTNAME` environment variable when the pipeline
//! grants it (`env_from_host = ["HOSTNAME"]`, or `env = { HOSTNAME = "…" }`).
//! Flume's `useIP` has no equivalent.
//!
//! Config keys:
//! - `hostname`: the name to stamp; default: `$HOSTNAME`.
//! - `header` (default `host`): the header to set.
//! - `preserve_existing` (default `false`): leave the header of an event
//!   that already has one.

use flumen_guest_common::{header_name, preserve_existing, Config, Fields, Outcome, Transform};

struct Host {
    header: String,
    hostname: Vec<u8>,
    preserve: bool,
}

impl Transform for Host {
    const KEYS: &'static [&'static str] = &["hostname", "header", "preserve_existing"];

    fn new(config: &Config) -> Result<Self, String> {
        let hostname = match config.get("hostname") {
            Some(name) => name.to_owned(),
            None => std::env::var("HOSTNAME").map_err(|_| {
                "no host name: set config key `hostname`, or grant the variable with \
                 env_from_host = [\"HOSTNAME\"] (the sandbox cannot look the name up)"
                    .to_owned()
            })?,
        };
        if hostname.is_empty() {
            return Err("the host name is empty".into());
        }
        Ok(Self {
            header: header_name(config, "header", "host")?,
            hostname: hostname.into_bytes(),
            preserve: preserve_existing(config, false)?,
        })
    }

    fn apply(&mut self, _topic: &str, _partition: i32, _offset: i64, e: &mut Fields) -> Outcome {
        if e.set_header(&self.header, self.hostname.clone(), self.preserve) {
            Outcome::Changed
        } else {
            Outcome::Keep
        }
    }
}

flumen_guest_common::transform_interceptor!(Host);

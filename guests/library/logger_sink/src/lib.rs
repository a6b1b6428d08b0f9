//! The logger sink (Flume's `logger`): writes each event into flumen's own
//! log, through the `log` import, and reports it delivered. For debugging
//! a pipeline, not for production volumes.
//!
//! Config keys:
//! - `level` (default `info`): `trace`, `debug`, `info`, `warn` or `error`.
//! - `max_bytes` (default `16`, as Flume's `maxBytesToLog`): how much of the
//!   value (and key) to show; the rest is counted, not printed. `0` shows
//!   all of it.
//!
//! Each line reads `offset=… timestamp=… key=… value=… headers=[name=value,…]`,
//! with bytes that are not printable ASCII escaped (`\xNN`). The host adds
//! the component, pipeline, topic and partition.

use flumen::pipeline::log::{log, Level};
use flumen_guest_common::columns::{Batch, EventRef};
use flumen_guest_common::{Config, Sink, Undelivered};
use std::fmt::Write as _;

flumen_guest_common::sink!(LoggerSink);

/// At most `max` bytes of `bytes`, escaped, and how many were left out.
fn shown(bytes: &[u8], max: usize) -> String {
    let cut = if max == 0 {
        bytes.len()
    } else {
        bytes.len().min(max)
    };
    let mut out: String = bytes[..cut].escape_ascii().to_string();
    if cut < bytes.len() {
        let _ = write!(out, "…(+{} bytes)", bytes.len() - cut);
    }
    out
}

fn line(e: &EventRef<'_>, max: usize) -> String {
    let mut out = format!("offset={}", e.offset);
    if let Some(t) = e.timestamp {
        let _ = write!(out, " timestamp={t}");
    }
    if let Some(k) = e.key {
        let _ = write!(out, " key={}", shown(k, max));
    }
    match e.value {
        Some(v) => {
            let _ = write!(out, " value={}", shown(v, max));
        }
        None => out.push_str(" value=<tombstone>"),
    }
    let headers: Vec<String> = e
        .headers()
        .map(|(name, value)| format!("{name}={}", shown(value, max)))
        .collect();
    if !headers.is_empty() {
        let _ = write!(out, " headers=[{}]", headers.join(","));
    }
    out
}

struct LoggerSink {
    level: Level,
    max: usize,
}

impl Sink for LoggerSink {
    const KEYS: &'static [&'static str] = &["level", "max_bytes"];

    fn new(config: &Config) -> Result<Self, String> {
        let level = match config.get("level").unwrap_or("info") {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            other => {
                return Err(format!(
                    "config key `level` must be trace, debug, info, warn or error, got `{other}`"
                ))
            }
        };
        let max = usize::try_from(config.u64_or("max_bytes", 16)?)
            .map_err(|_| "config key `max_bytes` is too large".to_owned())?;
        Ok(LoggerSink { level, max })
    }

    fn deliver(&mut self, _: &str, _: i32, batch: &Batch<'_>) -> Result<Vec<Undelivered>, String> {
        for e in batch.iter() {
            log(self.level, &line(&e, self.max));
        }
        Ok(Vec::new())
    }
}

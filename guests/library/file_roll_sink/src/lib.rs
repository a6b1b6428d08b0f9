//! The rolling file sink (Flume's `file_roll`, with the HDFS sink's path
//! escapes): appends events to files named from a template and starts a new
//! file by count, size or age.
//!
//! Config keys:
//! - `path` (required): the file as the guest sees it. Escapes: `%{topic}`,
//!   `%{partition}` (required: each partition has its own instance, and two
//!   instances appending to one file would interleave their lines),
//!   `%{seq}` (the roll number, from 0 when the instance starts), and
//!   `%Y %m %d %H %M %S` (UTC date and time of the event). Directories in
//!   it are created under the granted one.
//! - `time` (default `event`): the date escapes use the event's timestamp
//!   (or the current time for an event without one), or `now`.
//! - `roll_events`, `roll_bytes`, `roll_interval_s` (default `0`, off): a
//!   file is closed and the next one started (`%{seq}` + 1) once it holds
//!   that many events or bytes, or was opened that many seconds ago.
//!   Without `%{seq}` in `path`, a roll reopens the same name (appending),
//!   so roll with the date escapes instead.
//! - `format` (default `json`): `json` writes each event as a JSON line,
//!   like `file_sink`; `value` writes the raw value and a newline (Flume's
//!   TEXT serializer).
//! - `sync` (default `true`): fsync every file a batch touched before the
//!   batch is reported delivered.
//!
//! A batch is delivered only once every line of it is written and flushed
//! (and synced): any failure fails the whole call, which flumen retries.

use flumen::pipeline::log::{log, Level};
use flumen_guest_common::columns::Batch;
use flumen_guest_common::dates::{self, now_millis};
use flumen_guest_common::{write_json_line, Config, Sink, Undelivered};
use std::io::Write;
use std::time::Instant;

struct Settings {
    template: String,
    event_time: bool,
    roll_events: u64,
    roll_bytes: u64,
    roll_interval_s: u64,
    json: bool,
    sync: bool,
}

/// The file being written.
struct Open {
    path: String,
    file: std::fs::File,
    events: u64,
    bytes: u64,
    opened: Instant,
}

flumen_guest_common::sink!(State);

struct State {
    settings: Settings,
    seq: u64,
    open: Option<Open>,
}

impl Settings {
    /// The path for an event at `millis` with roll number `seq`.
    fn path(&self, topic: &str, partition: i32, seq: u64, millis: i64) -> String {
        let named = self
            .template
            .replace("%{topic}", topic)
            .replace("%{partition}", &partition.to_string())
            .replace("%{seq}", &seq.to_string());
        dates::render(&named, millis)
    }

    fn due(&self, open: &Open, adding: u64) -> bool {
        (self.roll_events > 0 && open.events >= self.roll_events)
            || (self.roll_bytes > 0 && open.bytes > 0 && open.bytes + adding > self.roll_bytes)
            || (self.roll_interval_s > 0 && open.opened.elapsed().as_secs() >= self.roll_interval_s)
    }
}

impl State {
    /// Writes `line` (of an event at `millis`) to the file for `path`,
    /// rolling first if due; records each file it switches to in `touched`.
    fn write(
        &mut self,
        mut path: String,
        line: &[u8],
        touched: &mut Vec<String>,
        (topic, partition): (&str, i32),
        millis: i64,
    ) -> Result<(), String> {
        if let Some(open) = &self.open {
            if open.path == path && self.settings.due(open, line.len() as u64) {
                self.close()?;
                self.seq += 1;
                path = self.settings.path(topic, partition, self.seq, millis);
            }
        }
        if self.open.as_ref().is_none_or(|o| o.path != path) {
            self.close()?;
            if let Some((dir, _)) = path.rsplit_once('/') {
                if !dir.is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create directory {dir}: {e}"))?;
                }
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open {path}: {e}"))?;
            self.open = Some(Open {
                path: path.clone(),
                file,
                events: 0,
                bytes: 0,
                opened: Instant::now(),
            });
        }
        let Some(open) = self.open.as_mut() else {
            return Err("no open file".into());
        };
        open.file
            .write_all(line)
            .map_err(|e| format!("cannot write {}: {e}", open.path))?;
        open.events += 1;
        open.bytes += line.len() as u64;
        if touched.last() != Some(&open.path) {
            touched.push(open.path.clone());
        }
        Ok(())
    }

    /// Flushes and (with `sync`) syncs the open file, then closes it.
    fn close(&mut self) -> Result<(), String> {
        if let Some(mut open) = self.open.take() {
            open.finish(self.settings.sync)?;
            log(
                Level::Debug,
                &format!(
                    "closed {} ({} events, {} bytes)",
                    open.path, open.events, open.bytes
                ),
            );
        }
        Ok(())
    }
}

impl Open {
    /// Flushes what was written and, with `sync`, gets it onto the disk.
    fn finish(&mut self, sync: bool) -> Result<(), String> {
        self.file
            .flush()
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) })
            .map_err(|e| format!("cannot flush {}: {e}", self.path))
    }
}

impl Sink for State {
    const KEYS: &'static [&'static str] = &[
        "path",
        "time",
        "roll_events",
        "roll_bytes",
        "roll_interval_s",
        "format",
        "sync",
    ];

    fn new(config: &Config) -> Result<Self, String> {
        let template = config.required("path")?.to_owned();
        if !template.contains("%{partition}") {
            return Err(format!(
                "config key `path` must contain `%{{partition}}` (got `{template}`): each \
                 partition has its own sink instance, and instances sharing one file would \
                 interleave their lines"
            ));
        }
        let event_time = config.one_of("time", &["event", "now"])? == "event";
        let json = config.one_of("format", &["json", "value"])? == "json";
        let settings = Settings {
            template,
            event_time,
            roll_events: config.u64_or("roll_events", 0)?,
            roll_bytes: config.u64_or("roll_bytes", 0)?,
            roll_interval_s: config.u64_or("roll_interval_s", 0)?,
            json,
            sync: config.bool_or("sync", true)?,
        };
        Ok(State {
            settings,
            seq: 0,
            open: None,
        })
    }

    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        let mut touched = Vec::new();
        let mut line = Vec::new();
        for e in batch.iter() {
            line.clear();
            if self.settings.json {
                write_json_line(&mut line, e.fields(topic, partition), None);
            } else {
                line.extend_from_slice(e.value.unwrap_or_default());
                line.push(b'\n');
            }
            let millis = e
                .timestamp
                .filter(|_| self.settings.event_time)
                .unwrap_or_else(now_millis);
            let path = self.settings.path(topic, partition, self.seq, millis);
            self.write(path, &line, &mut touched, (topic, partition), millis)?;
        }
        // Everything written goes to disk before the batch counts as
        // delivered; a file closed by a roll above was finished then.
        if let Some(open) = self.open.as_mut() {
            open.finish(self.settings.sync)?;
        }
        log(
            Level::Trace,
            &format!("{} events, {} file switches", batch.len(), touched.len()),
        );
        Ok(Vec::new())
    }
}

//! The file sink: appends each event as one JSON line to a file per
//! partition.
//!
//! Config keys:
//! - `path` (required): the file, as the guest sees it, with `%{partition}`
//!   and optionally `%{topic}` filled in per partition, e.g.
//!   `/out/events-%{topic}-%{partition}.jsonl`. The operator must grant its
//!   directory read-write to this component (`dirs` in the host's TOML);
//!   without the grant the sink refuses to start.
//! - `sync` (default `true`): `fsync` the file before reporting a batch
//!   delivered. With `false` the data is only flushed to the OS, which
//!   survives a crash of flumen but not of the machine.
//! - `label` (optional): added to every line as `"label"`, to tell apart the
//!   output of several sinks, or of a sink's versions across reloads.
//!
//! A batch is reported delivered only after its lines are written and
//! flushed (and synced), so a committed offset never points past data that
//! is not in the file. A failed write fails the whole call; the host retries
//! it, which may append some lines twice (at-least-once).
//!
//! It reads its batch in columns, the cheapest form
//! to cross into a guest; it renders each event straight from them.

use flumen::pipeline::log::{log, Level};
use flumen_guest_common::columns::Batch;
use flumen_guest_common::{write_json_line, Config, PartitionFile, Sink, Undelivered};
use std::io::Write;

flumen_guest_common::sink!(FileSink);

struct FileSink {
    file: PartitionFile,
    sync: bool,
    label: Option<String>,
}

impl Sink for FileSink {
    const KEYS: &'static [&'static str] = &["path", "sync", "label"];

    fn new(config: &Config) -> Result<Self, String> {
        let label = config.get("label").map(str::to_owned);
        let path = config.required("path")?;
        let file = PartitionFile::new(path)?;
        let sync = config.bool_or("sync", true)?;
        log(Level::Debug, &format!("appending to {path} (sync={sync})"));
        Ok(FileSink { file, sync, label })
    }

    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut buf = Vec::with_capacity(batch.len() * 128);
        for e in batch.iter() {
            write_json_line(&mut buf, e.fields(topic, partition), self.label.as_deref());
        }
        let sync = self.sync;
        let (path, file) = self.file.get(topic, partition)?;
        let write = |f: &mut std::fs::File| -> std::io::Result<()> {
            f.write_all(&buf)?;
            f.flush()?;
            if sync {
                f.sync_data()?;
            }
            Ok(())
        };
        write(file).map_err(|e| format!("writing {} events to {path}: {e}", batch.len()))?;
        Ok(Vec::new())
    }
}

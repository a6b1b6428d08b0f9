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

wit_bindgen::generate!({ world: "sink", path: "../../../wit" });

use exports::flumen::pipeline::delivery::{Columns, Failure, Guest, Source};
use flumen::pipeline::log::{log, Level};
use flumen_guest_common::{write_json_line, Config, PartitionFile};
use std::cell::RefCell;
use std::io::Write;

struct State {
    file: PartitionFile,
    sync: bool,
    label: Option<String>,
}

thread_local! {
    // Components are single-threaded; the state lives for the instance.
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct FileSink;

impl Guest for FileSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["path", "sync", "label"])?;
        let label = config.get("label").map(str::to_owned);
        let path = config.required("path")?;
        let file = PartitionFile::new(path)?;
        let sync = config.bool_or("sync", true)?;
        log(Level::Debug, &format!("appending to {path} (sync={sync})"));
        STATE.with(|s| *s.borrow_mut() = Some(State { file, sync, label }));
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let state = state.as_mut().ok_or("deliver called before init")?;
            let mut buf = Vec::with_capacity(batch.len() * 128);
            for e in batch.iter() {
                let fields = e.fields(&source.topic, source.partition);
                write_json_line(&mut buf, fields, state.label.as_deref());
            }
            let sync = state.sync;
            let (path, file) = state.file.get(&source.topic, source.partition)?;
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
        })
    }
}

export!(FileSink);

//! {{name}}: a flumen sink. It appends one line per event, `offset<TAB>value`,
//! to a file per partition: config key `path` (default
//! `/out/{{name}}-%{partition}.txt`), whose directory the pipeline grants with
//! `dirs = [{ host = "...", guest = "/out" }]`.

wit_bindgen::generate!({ world: "sink", path: "wit" });

// flumen's guest helper: reads the batch's columns event by event.
mod columns;

use exports::flumen::pipeline::delivery::{Columns, Failure, Guest, Source};
use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static PATH: RefCell<String> = RefCell::new("/out/{{name}}-%{partition}.txt".into());
}

struct Component;

impl Guest for Component {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in config {
            match key.as_str() {
                "path" => PATH.with(|p| *p.borrow_mut() = value),
                other => return Err(format!("unknown config key `{other}`; expected path")),
            }
        }
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
        let batch = columns!(batch)?;
        let path = PATH.with(|p| p.borrow().replace("%{partition}", &source.partition.to_string()));
        let mut lines = Vec::new();
        for e in batch.iter() {
            lines.extend_from_slice(format!("{}\t", e.offset).as_bytes());
            lines.extend_from_slice(e.value.unwrap_or_default());
            lines.push(b'\n');
        }
        // Delivered means written: an error fails the whole call, and flumen
        // retries it (nothing is committed before).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&lines).and_then(|()| f.flush()))
            .map_err(|e| format!("cannot append to {path}: {e}"))?;
        // The events not delivered, none here: every event was written.
        Ok(Vec::new())
    }
}

export!(Component);

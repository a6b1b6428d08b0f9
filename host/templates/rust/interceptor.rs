//! {{name}}: a flumen interceptor. It drops every event whose value
//! contains the config key `drop_containing` (default `DROP`) and keeps the
//! rest unchanged.

wit_bindgen::generate!({ world: "interceptor", path: "wit" });

// flumen's guest helper: reads the batch's columns event by event.
mod columns;

use exports::flumen::pipeline::interception::{Columns, Guest, Source, Verdicts};
use std::cell::RefCell;

thread_local! {
    // One instance serves one partition, so state set by `init` lives as
    // long as the instance does.
    static NEEDLE: RefCell<Vec<u8>> = RefCell::new(b"DROP".to_vec());
}

struct Component;

impl Guest for Component {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in config {
            match key.as_str() {
                "drop_containing" if !value.is_empty() => {
                    NEEDLE.with(|n| *n.borrow_mut() = value.into_bytes())
                }
                "drop_containing" => return Err("`drop_containing` must not be empty".into()),
                other => {
                    return Err(format!("unknown config key `{other}`; expected drop_containing"))
                }
            }
        }
        Ok(())
    }

    fn process(_source: Source, batch: Columns) -> Result<Verdicts, String> {
        let batch = columns!(batch)?;
        NEEDLE.with(|n| {
            let needle = n.borrow();
            // One action byte per event: 0 keeps it, 1 drops it. (An empty
            // list would keep every event.)
            let actions = batch
                .iter()
                .map(|e| {
                    let drop = e
                        .value
                        .is_some_and(|v| v.windows(needle.len()).any(|w| w == needle.as_slice()));
                    u8::from(drop)
                })
                .collect();
            Ok(Verdicts {
                actions,
                replacements: Vec::new(),
                routes: Vec::new(),
            })
        })
    }
}

export!(Component);

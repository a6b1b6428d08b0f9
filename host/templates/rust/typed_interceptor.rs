//! {{name}}: a flumen interceptor for typed events, after `schema_decode`
//! (which turns Avro, Protobuf or JSON Schema into a JSON object). It drops
//! every event whose field `field` (default `status`) equals `equals`
//! (default `cancelled`) and keeps the rest, and any event whose value is
//! not a JSON object, unchanged.

wit_bindgen::generate!({ world: "interceptor", path: "wit" });

// flumen's guest helper: reads the batch's columns event by event.
mod columns;

use exports::flumen::pipeline::interception::{Columns, Guest, Source, Verdicts};
use serde_json::Value;
use std::cell::RefCell;

thread_local! {
    // One instance serves one partition, so state set by `init` lives as
    // long as the instance does.
    static SETTINGS: RefCell<(String, String)> =
        RefCell::new(("status".into(), "cancelled".into()));
}

struct Component;

impl Guest for Component {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        SETTINGS.with(|s| {
            let mut s = s.borrow_mut();
            for (key, value) in config {
                match key.as_str() {
                    "field" => s.0 = value,
                    "equals" => s.1 = value,
                    other => {
                        return Err(format!("unknown config key `{other}`; expected field or equals"))
                    }
                }
            }
            Ok(())
        })
    }

    fn process(_source: Source, batch: Columns) -> Result<Verdicts, String> {
        let batch = columns!(batch)?;
        SETTINGS.with(|s| {
            let (field, equals) = &*s.borrow();
            let actions = batch
                .iter()
                .map(|e| {
                    // The decoded value, as a JSON object.
                    let fields: Option<Value> = e.value.and_then(|v| serde_json::from_slice(v).ok());
                    let drop = fields
                        .as_ref()
                        .and_then(|f| f.get(field))
                        .and_then(Value::as_str)
                        == Some(equals.as_str());
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

//! The null sink: accepts every event and does nothing with it. The baseline
//! for measuring the host's own cost: it does not even read the batch. So
//! it is the one library sink not made with `flumen_guest_common::sink!`,
//! which checks every batch's columns before the sink sees them.

wit_bindgen::generate!({ world: "sink", path: "../../../wit" });

use exports::flumen::pipeline::delivery::{Columns, Failure, Guest, Source};

struct NullSink;

impl Guest for NullSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        match config.first() {
            Some((key, _)) => Err(format!("the null sink takes no config, got `{key}`")),
            None => Ok(()),
        }
    }

    fn deliver(_source: Source, _batch: Columns) -> Result<Vec<Failure>, String> {
        Ok(Vec::new())
    }
}

export!(NullSink);

//! The null sink: accepts every event and does nothing with it. The baseline
//! for measuring the host's own cost, so it takes its batches in columns
//! (world `columnar-sink`), the cheapest form to cross into a guest.

wit_bindgen::generate!({ world: "columnar-sink", path: "../../../wit" });

use exports::flumen::pipeline::columnar_delivery::{Columns, Guest, Source, Verdict};

struct NullSink;

impl Guest for NullSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        match config.first() {
            Some((key, _)) => Err(format!("the null sink takes no config, got `{key}`")),
            None => Ok(()),
        }
    }

    fn deliver(_source: Source, batch: Columns) -> Result<Vec<Verdict>, String> {
        Ok(vec![Verdict::Delivered; batch.offsets.len()])
    }
}

export!(NullSink);

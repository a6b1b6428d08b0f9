//! A test guest built against an older release of the contract: a sink
//! generated from `wit/pipeline.wit` as it was at `flumen:pipeline@0.2.0`
//! (kept in this crate's wit/). It delivers every event and logs the batch
//! size, so that both an export and an import of the old version are used.
//! The contract promises that additions only bump the patch version while
//! at 0.x, so a component built against any 0.2.y must keep loading.

wit_bindgen::generate!({ world: "sink", path: "wit" });

use exports::flumen::pipeline::delivery::{Event, Guest, Source, Verdict};
use flumen::pipeline::log::{log, Level};

struct CompatSink;

impl Guest for CompatSink {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn deliver(_source: Source, batch: Vec<Event>) -> Result<Vec<Verdict>, String> {
        log(
            Level::Info,
            &format!("contract 0.2.0 sink: {} events", batch.len()),
        );
        Ok(vec![Verdict::Delivered; batch.len()])
    }
}

export!(CompatSink);

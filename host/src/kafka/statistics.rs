//! The part of librdkafka's statistics flumen reads: the high watermark of
//! each assigned partition, for the lag in `/metrics` and the progress
//! lines.

use std::collections::{BTreeMap, HashMap};

/// The part of librdkafka's statistics JSON flumen reads. Parsed by itself,
/// rather than through rdkafka's full `Statistics`, so that a field a
/// librdkafka version adds or drops elsewhere cannot fail the parse.
#[derive(serde::Deserialize)]
struct RdStats {
    #[serde(default)]
    topics: HashMap<String, RdTopic>,
}

#[derive(serde::Deserialize)]
struct RdTopic {
    #[serde(default)]
    partitions: HashMap<String, RdPartition>,
}

#[derive(serde::Deserialize)]
struct RdPartition {
    partition: i32,
    #[serde(default)]
    desired: bool,
    #[serde(default = "unknown_offset")]
    hi_offset: i64,
}

fn unknown_offset() -> i64 {
    -1
}

/// The high watermarks of the partitions this member consumes, read from
/// one statistics JSON document; `None` if it cannot be read.
pub fn high_watermarks(statistics: &[u8]) -> Option<BTreeMap<(String, i32), i64>> {
    let parsed: RdStats = match serde_json::from_slice(statistics) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read librdkafka's statistics");
            return None;
        }
    };
    Some(
        parsed
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .into_values()
                    // -1 is librdkafka's internal unassigned partition;
                    // `desired` marks the partitions this member consumes.
                    .filter(|p| p.partition >= 0 && p.desired && p.hi_offset >= 0)
                    .map(move |p| ((topic.clone(), p.partition), p.hi_offset))
            })
            .collect(),
    )
}

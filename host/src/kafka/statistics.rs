//! The part of librdkafka's statistics flumen reads: the high watermark of
//! each assigned partition, for the lag in `/metrics` and the progress
//! lines, and the member's contact with its group coordinator, for the
//! self-fencing of [`super::fence`].

use super::fence::Contact;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The part of librdkafka's statistics JSON flumen reads. Parsed by itself,
/// rather than through rdkafka's full `Statistics`, so that a field a
/// librdkafka version adds or drops elsewhere cannot fail the parse.
#[derive(serde::Deserialize)]
pub struct Statistics {
    /// When librdkafka made them: its monotonic clock, in microseconds.
    #[serde(default)]
    ts: i64,
    #[serde(default)]
    topics: HashMap<String, RdTopic>,
    #[serde(default)]
    brokers: HashMap<String, RdBroker>,
    cgrp: Option<RdGroup>,
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
    #[serde(default = "unknown")]
    hi_offset: i64,
}

#[derive(serde::Deserialize)]
struct RdBroker {
    #[serde(default)]
    state: String,
    /// Microseconds since the connection last received anything, or -1.
    #[serde(default = "unknown")]
    rxidle: i64,
}

#[derive(serde::Deserialize)]
struct RdGroup {
    #[serde(default)]
    join_state: String,
    #[serde(default)]
    rebalance_cnt: u64,
}

fn unknown() -> i64 {
    -1
}

/// The name librdkafka gives the connection to the group coordinator
/// (a logical broker: heartbeats, joins and commits go through it).
const COORDINATOR: &str = "GroupCoordinator";

impl Statistics {
    /// Reads one statistics JSON document; `None` if it cannot be read.
    pub fn parse(statistics: &[u8]) -> Option<Self> {
        serde_json::from_slice(statistics)
            .map_err(|e| tracing::debug!(error = %e, "cannot read librdkafka's statistics"))
            .ok()
    }

    /// The high watermarks of the partitions this member consumes.
    pub fn high_watermarks(&self) -> BTreeMap<(String, i32), i64> {
        self.topics
            .iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .values()
                    // -1 is librdkafka's internal unassigned partition;
                    // `desired` marks the partitions this member consumes.
                    .filter(|p| p.partition >= 0 && p.desired && p.hi_offset >= 0)
                    .map(move |p| ((topic.clone(), p.partition), p.hi_offset))
            })
            .collect()
    }

    /// The member's contact with its coordinator, as of `now_us` on
    /// librdkafka's clock (see [`monotonic_us`]): statistics read late
    /// count as older contact.
    pub fn contact(&self, now_us: i64) -> Contact {
        let late = Duration::from_micros(u64::try_from(now_us - self.ts).unwrap_or(0));
        let idle = self
            .brokers
            .get(COORDINATOR)
            .filter(|b| b.state == "UP")
            .and_then(|b| u64::try_from(b.rxidle).ok())
            .map(|us| Duration::from_micros(us) + late);
        let group = self.cgrp.as_ref();
        Contact {
            idle,
            steady: group.is_some_and(|g| g.join_state == "steady"),
            rebalances: group.map_or(0, |g| g.rebalance_cnt),
        }
    }
}

/// librdkafka's clock (`rd_clock`: `CLOCK_MONOTONIC`) now, in
/// microseconds, to compare with the `ts` of its statistics.
pub fn monotonic_us() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on
    // every platform librdkafka's clock uses it on.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{ "ts": 5000000, "topics": { "t": { "partitions": {
        "0": { "partition": 0, "desired": true, "hi_offset": 42 },
        "-1": { "partition": -1, "desired": false, "hi_offset": -1 } } } },
      "brokers": {
        "127.0.0.1:9092/1": { "state": "UP", "rxidle": 10 },
        "GroupCoordinator": { "state": "UP", "rxidle": 300000 } },
      "cgrp": { "state": "up", "join_state": "steady", "rebalance_cnt": 3 } }"#;

    #[test]
    fn reads_watermarks_and_contact() {
        let s = Statistics::parse(DOC.as_bytes()).expect("parsed");
        assert_eq!(
            s.high_watermarks().into_iter().collect::<Vec<_>>(),
            vec![(("t".to_owned(), 0), 42)]
        );
        // Read 200 ms after librdkafka made them: 500 ms without contact.
        let c = s.contact(5_200_000);
        assert_eq!(c.idle, Some(Duration::from_millis(500)));
        assert!(c.steady);
        assert_eq!(c.rebalances, 3);
    }

    #[test]
    fn a_coordinator_not_up_is_no_contact() {
        let doc = DOC.replace(
            r#""state": "UP", "rxidle": 300000"#,
            r#""state": "DOWN", "rxidle": -1"#,
        );
        let s = Statistics::parse(doc.as_bytes()).expect("parsed");
        assert_eq!(s.contact(5_000_000).idle, None);
        assert!(Statistics::parse(b"{").is_none());
    }

    #[test]
    fn the_clock_is_librdkafkas() {
        let a = monotonic_us();
        std::thread::sleep(Duration::from_millis(5));
        assert!(monotonic_us() - a >= 5_000);
    }
}

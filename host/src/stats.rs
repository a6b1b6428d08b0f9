//! Counters for one pipeline, shared by its partition workers and read by
//! the demo summary, the tests and (later) the metrics endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Event counters and committed offsets of one pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events read from Kafka and handed to a partition worker.
    pub consumed: AtomicU64,
    /// Events dropped by an interceptor (or routed to no sink).
    pub dropped: AtomicU64,
    /// Events finalized: dropped, or delivered by every sink routed to.
    pub finalized: AtomicU64,
    /// Failed guest calls and rejected/retried events that were retried.
    pub retries: AtomicU64,
    /// Events written to the dead-letter topic (and acknowledged).
    pub dead_lettered: AtomicU64,
    /// Events given up on under `on_failure = "skip"`.
    pub skipped: AtomicU64,
    /// Events an interceptor failed on and passed on unchanged (`fail-open`).
    pub failed_open: AtomicU64,
    /// Partitions currently blocked by a `block` component that spent its
    /// retries (a gauge).
    pub blocked: AtomicU64,
    /// Per sink name: events it reported delivered.
    delivered: Mutex<BTreeMap<String, u64>>,
    /// Per (topic, partition): last offset the broker acknowledged as
    /// committed.
    committed: Mutex<BTreeMap<(String, i32), i64>>,
    /// Per assigned (topic, partition): the high watermark librdkafka last
    /// reported in its statistics.
    high_watermarks: Mutex<BTreeMap<(String, i32), i64>>,
    /// Per (topic, partition) stopped at a record that cannot be decoded:
    /// the offset it stopped at (see [`crate::kafka::unreadable`]).
    unreadable: Mutex<BTreeMap<(String, i32), i64>>,
    /// Whether `unreadable` has any entry, so that the consumer's hot path
    /// does not take its lock.
    any_unreadable: AtomicBool,
    /// The consumer has joined its group (had its first assignment).
    pub joined: AtomicBool,
    /// The consumer thread is running.
    pub consumer_alive: AtomicBool,
}

impl PipelineStats {
    /// Counts `n` events delivered by `sink`.
    pub fn add_delivered(&self, sink: &str, n: u64) {
        if let Ok(mut m) = self.delivered.lock() {
            *m.entry(sink.to_owned()).or_default() += n;
        }
    }

    /// Events delivered per sink.
    pub fn delivered(&self) -> BTreeMap<String, u64> {
        self.delivered.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Records an acknowledged commit. The group's committed offset is the
    /// last one acknowledged, even where it is behind an earlier one, and
    /// the committer sends a partition's watermark only when it differs
    /// from this record: keeping the highest instead once left a commit
    /// unsent (see `kafka::rebalance::revoked_to_retry`).
    pub fn set_committed(&self, topic: &str, partition: i32, offset: i64) {
        if let Ok(mut m) = self.committed.lock() {
            m.insert((topic.to_owned(), partition), offset);
        }
    }

    /// Committed offsets acknowledged by the broker.
    pub fn committed(&self) -> BTreeMap<(String, i32), i64> {
        self.committed.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Replaces the high watermarks with those of the partitions assigned
    /// now (so a revoked partition stops being reported).
    pub fn set_high_watermarks(&self, marks: BTreeMap<(String, i32), i64>) {
        if let Ok(mut m) = self.high_watermarks.lock() {
            *m = marks;
        }
    }

    /// High watermarks of the assigned partitions.
    pub fn high_watermarks(&self) -> BTreeMap<(String, i32), i64> {
        self.high_watermarks
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Events not yet committed per assigned partition: high watermark minus
    /// committed offset (for partitions with a commit).
    pub fn lag(&self) -> Vec<((String, i32), i64)> {
        let committed = self.committed();
        self.high_watermarks()
            .into_iter()
            .filter_map(|(k, hi)| {
                let c = committed.get(&k)?;
                Some((k, (hi - c).max(0)))
            })
            .collect()
    }

    /// Records that `partition` of `topic` stopped at `offset`, at a record
    /// that cannot be decoded; whether that is news (not recorded already).
    pub fn set_unreadable(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let Ok(mut m) = self.unreadable.lock() else {
            return false;
        };
        self.any_unreadable.store(true, Ordering::Release);
        m.insert((topic.to_owned(), partition), offset) != Some(offset)
    }

    /// Records that `partition` of `topic` is read again.
    pub fn clear_unreadable(&self, topic: &str, partition: i32) {
        if !self.any_unreadable.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut m) = self.unreadable.lock() {
            m.retain(|(t, p), _| !(t == topic && *p == partition));
            self.any_unreadable.store(!m.is_empty(), Ordering::Release);
        }
    }

    /// The partitions stopped at an undecodable record, with its offset.
    pub fn unreadable(&self) -> BTreeMap<(String, i32), i64> {
        self.unreadable
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Whether the pipeline is consuming: its consumer thread runs and has
    /// joined the group.
    pub fn ready(&self) -> bool {
        self.joined.load(Ordering::Acquire) && self.consumer_alive.load(Ordering::Acquire)
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit behind an earlier one is what the group now holds, so it is
    /// what the committer must compare its next watermark with.
    #[test]
    fn the_last_acknowledged_commit_is_recorded_even_behind_an_earlier_one() {
        let stats = PipelineStats::default();
        stats.set_committed("t", 2, 15000);
        stats.set_committed("t", 2, 11000);
        assert_eq!(stats.committed().get(&("t".to_owned(), 2)), Some(&11000));
    }
}

//! Counters for one pipeline, shared by its partition workers and read by
//! the demo summary, the tests and the `/metrics` endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Per sink name: its calls in flight, windows and batching waits.
    sinks: Mutex<BTreeMap<String, Arc<SinkStats>>>,
    /// Per (topic, partition): the furthest offset the broker acknowledged
    /// as committed by this member (since the partition was last assigned
    /// to it).
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
    /// This member has fenced itself: no contact with its group
    /// coordinator for longer than its fence allows.
    pub fenced: AtomicBool,
}

/// One sink's calls, summed over the partitions of the pipeline.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Calls in flight now.
    pub in_flight: AtomicI64,
    /// The calls that may be in flight now (`max_in_flight`, or the
    /// adaptive window), summed over the partitions.
    pub window: AtomicI64,
    /// Calls formed from new events.
    pub calls: AtomicU64,
    /// Events in those calls.
    pub events: AtomicU64,
    /// Summed over those calls: how long the oldest event of each had
    /// waited for the call (sink-side batching), in microseconds.
    pub waited_us: AtomicU64,
    /// Events it reported delivered: an atomic add per call, where a map
    /// behind a mutex took a lock per call on every partition's thread.
    pub delivered: AtomicU64,
    /// Partitions waiting on its destination: events it answered `retry`
    /// for are offered again, with backoff, until it takes them or
    /// `retry.max_elapsed_ms` passes.
    pub waiting: AtomicI64,
}

impl SinkStats {
    /// A call of `events` new events formed, whose oldest waited `waited`.
    pub fn record_wait(&self, waited: Duration, events: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Ordering::Relaxed);
    }
}

impl PipelineStats {
    /// The counters of sink `name`, made on first use.
    pub fn sink(&self, name: &str) -> Arc<SinkStats> {
        let mut m = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_owned()).or_default().clone()
    }

    /// Every sink's counters, by name.
    pub fn sinks(&self) -> BTreeMap<String, Arc<SinkStats>> {
        self.sinks.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Events delivered per sink, for the sinks that delivered any.
    pub fn delivered(&self) -> BTreeMap<String, u64> {
        self.sinks()
            .into_iter()
            .map(|(name, s)| (name, s.delivered.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Records an acknowledged commit, keeping the furthest per partition.
    /// While this member owns a partition nobody else commits it, and this
    /// member never sends an offset at or behind the one recorded (see
    /// `kafka::commit::commit`), so the furthest is the group's committed
    /// offset. A partition's record is forgotten when it is assigned (see
    /// [`PipelineStats::forget_committed`]).
    pub fn set_committed(&self, topic: &str, partition: i32, offset: i64) {
        if let Ok(mut m) = self.committed.lock() {
            let at = m.entry((topic.to_owned(), partition)).or_insert(offset);
            *at = (*at).max(offset);
        }
    }

    /// Forgets what was recorded for partitions being assigned to this
    /// member. Another member may have owned one since this member last
    /// committed it, and what it committed may be behind this member's
    /// record (its late revoke commit can land after the next owner read its
    /// start offset): a stale record would hold back this member's commits
    /// up to it.
    pub fn forget_committed(&self, partitions: &[(String, i32)]) {
        if let Ok(mut m) = self.committed.lock() {
            for k in partitions {
                m.remove(k);
            }
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

    /// Commits of one assignment only move forward, so a record behind
    /// the furthest is an older acknowledgement arriving late.
    #[test]
    fn the_furthest_acknowledged_commit_is_recorded() {
        let stats = PipelineStats::default();
        stats.set_committed("t", 2, 15000);
        stats.set_committed("t", 2, 11000);
        assert_eq!(stats.committed().get(&("t".to_owned(), 2)), Some(&15000));
    }

    #[test]
    fn an_assigned_partition_starts_with_no_record() {
        let stats = PipelineStats::default();
        stats.set_committed("t", 1, 900);
        stats.set_committed("t", 2, 15000);
        stats.forget_committed(&[("t".to_owned(), 2)]);
        stats.set_committed("t", 2, 11000);
        let committed = stats.committed();
        assert_eq!(committed.get(&("t".to_owned(), 2)), Some(&11000));
        assert_eq!(committed.get(&("t".to_owned(), 1)), Some(&900));
    }
}

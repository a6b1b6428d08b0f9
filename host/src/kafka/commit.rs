//! Committing what the partition workers finalized: synchronously, so that
//! flumen knows what the broker acknowledged, and periodically from a
//! thread of its own.

use super::assignment::{lock, Partitions};
use crate::config::PipelineConfig;
use crate::stats::PipelineStats;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Commits `(topic, partition, offset)` triples and records what the broker
/// acknowledged. Returns whether it did; a failure is logged.
pub fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &[(String, i32, i64)],
    stats: &PipelineStats,
) -> bool {
    if offsets.is_empty() {
        return true;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::error!(%topic, partition, error = %e, "cannot build commit request");
            return false;
        }
    }
    tracing::debug!(?offsets, "committing");
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            record_committed(stats, &tpl);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed; it is retried");
            false
        }
    }
}

/// Records the offsets of an acknowledged commit in the pipeline's stats.
pub fn record_committed(stats: &PipelineStats, offsets: &TopicPartitionList) {
    for e in offsets.elements() {
        if let Offset::Offset(o) = e.offset() {
            stats.set_committed(e.topic(), e.partition(), o);
        }
    }
}

/// The thread that commits what the partition workers have finalized, every
/// `commit.interval_ms`.
///
/// Commits are synchronous: rdkafka 0.39 never reports the result of a
/// manual async commit (fede1024/rust-rdkafka#856), and flumen must know what
/// the broker acknowledged, not just what it asked for. On the polling
/// thread each commit's broker round trip stopped consumption, which cost
/// 5–20 % of throughput when committing after every batch; here it runs
/// beside it.
pub struct Committer {
    /// Dropping it wakes the thread and ends it.
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Committer {
    /// Starts the thread. It holds `exclusive` for each commit, so that a
    /// revocation holding it too never sees a periodic commit land after
    /// its own.
    pub fn spawn<C: ConsumerContext + 'static>(
        pipeline: &PipelineConfig,
        consumer: Arc<BaseConsumer<C>>,
        partitions: Arc<Mutex<Partitions>>,
        exclusive: Arc<Mutex<()>>,
        stats: Arc<PipelineStats>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        let every = Duration::from_millis(pipeline.commit.interval_ms);
        let thread = std::thread::Builder::new()
            .name(format!("flumen-commit-{}", pipeline.name))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _exclusive = lock(&exclusive);
                    commit_published(&consumer, &partitions, &stats);
                }
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread after its current commit; the final commit is the
    /// caller's.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Commits every partition whose published offset the broker has not yet
/// acknowledged; a failed commit is simply sent again next time.
fn commit_published<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &Mutex<Partitions>,
    stats: &PipelineStats,
) {
    let acknowledged = stats.committed();
    let offsets: Vec<(String, i32, i64)> = lock(partitions)
        .iter()
        .filter_map(|((t, p), h)| {
            let c = h.shared.committable()?;
            (acknowledged.get(&(t.clone(), *p)) != Some(&c)).then(|| (t.clone(), *p, c))
        })
        .collect();
    commit(consumer, &offsets, stats);
}

//! Late commits: the final offsets of revoked partitions that the broker
//! refused during a rebalance, sent once it is over, where the commit rule
//! allows it.

use super::PipelineConsumer;
use crate::kafka::assignment::lock;
use crate::kafka::commit::commit;
use crate::kafka::rebalance::revoked_to_retry;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

impl PipelineConsumer {
    /// Commits the final offsets of revoked partitions that the broker refused
    /// during the rebalance, where the commit rule allows a late commit
    /// (at-least-once pipelines: see `commit_rule`). Kafka lets any group
    /// member commit for any partition, and each of these offsets is a
    /// watermark this member finalized, so committing it late never skips
    /// an undelivered event. It is only sent where it still advances the
    /// group's committed offset, so it does not move back what the new
    /// owner has committed since. A
    /// partition assigned to this member again gets it too: its new worker
    /// started from the older offset, and `commit` keeps that worker's
    /// commits from moving the late one back.
    pub(super) fn retry_revoked(&self) {
        let pending = std::mem::take(&mut *lock(&self.consumer.context().revoked_uncommitted));
        if pending.is_empty() {
            return;
        }
        let pending = revoked_to_retry(pending);
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, _) in &pending {
            tpl.add_partition(topic, *partition);
        }
        let current = match self.consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read committed offsets yet");
                lock(&self.consumer.context().revoked_uncommitted).extend(pending);
                return;
            }
        };
        let advancing: Vec<_> = pending
            .into_iter()
            .filter(
                |(t, p, o)| match current.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(c)) => *o > c,
                    _ => true,
                },
            )
            .collect();
        if advancing.is_empty() {
            tracing::debug!("the group's committed offsets are already at or past them");
        } else if self.commit_exclusively(&advancing) {
            tracing::info!(pipeline = %self.pipeline.name, offsets = ?advancing,
                "committed the final offsets of revoked partitions after the rebalance");
        } else {
            lock(&self.consumer.context().revoked_uncommitted).extend(advancing);
        }
    }

    /// Commits while holding the commit lock, so that the periodic
    /// committer's check of what is acknowledged and its commit cannot
    /// interleave with this one.
    fn commit_exclusively(&self, offsets: &[(String, i32, i64)]) -> bool {
        let _exclusive = lock(&self.consumer.context().commit_lock);
        commit(&self.consumer, offsets, &self.stats)
    }
}

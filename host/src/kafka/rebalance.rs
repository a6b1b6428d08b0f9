//! What happens when the group rebalances. librdkafka calls these hooks
//! inside `poll`, on the consumer thread: a revocation stops the revoked
//! partitions' workers, waits (bounded) for their in-flight batches and
//! commits what they finalized before the partitions are released.

use super::assignment::{drain, lock, stop, Partitions};
use super::commit::{commit, record_committed};
use super::commit_rule::{CommitRule, Standing};
use super::fence::{Change, Fence, Watch};
use super::fetch_queue::FetchQueue;
use super::statistics::{monotonic_us, Statistics};
use crate::stats::PipelineStats;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The offsets that revocations could not commit, to send late: per
/// partition the furthest. Each is a watermark this member finalized, and
/// everything below it was finalized, by this member or before its
/// assignment began.
pub fn revoked_to_retry(pending: Vec<(String, i32, i64)>) -> Vec<(String, i32, i64)> {
    let mut furthest: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (topic, partition, offset) in pending {
        let at = furthest.entry((topic, partition)).or_insert(offset);
        *at = (*at).max(offset);
    }
    furthest
        .into_iter()
        .map(|((topic, partition), offset)| (topic, partition, offset))
        .collect()
}

/// The (topic, partition) pairs of a rebalance's list.
fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// The rdkafka context: where librdkafka's rebalance and commit callbacks
/// land. Both run inside `poll`, on the consumer thread.
pub struct PipelineContext {
    pub partitions: Arc<Mutex<Partitions>>,
    /// Offsets of revoked partitions whose commit the broker refused during
    /// the rebalance; committed once it settles (see `retry_revoked`),
    /// where the commit rule allows a late commit.
    pub revoked_uncommitted: Mutex<Vec<(String, i32, i64)>>,
    /// Which commits this member may send.
    pub rule: CommitRule,
    /// Held by the committer thread for each periodic commit and by the
    /// revoke callback for the whole revocation, so a periodic commit never
    /// lands after the revoke's own commit of a partition (a stale offset
    /// there would send the next owner back over finalized events).
    pub commit_lock: Arc<Mutex<()>>,
    pub stats: Arc<PipelineStats>,
    pub drain_timeout: Duration,
    pub pipeline: String,
    /// Where assigned partitions' messages are routed, once the consumer
    /// exists; taken away before the consumer closes.
    pub fetch: Mutex<Option<Arc<FetchQueue>>>,
    /// The member's fence and what watches it, if it fences itself.
    pub fence: Option<(Arc<Fence>, Mutex<Watch>)>,
}

impl ClientContext for PipelineContext {
    // librdkafka's statistics (every `statistics.interval.ms`, on the
    // consumer thread): the high watermarks, for the lag, and the contact
    // with the coordinator, for the fence.
    fn stats_raw(&self, statistics: &[u8]) {
        let Some(s) = Statistics::parse(statistics) else {
            return;
        };
        self.stats.set_high_watermarks(s.high_watermarks());
        let Some((fence, watch)) = &self.fence else {
            return;
        };
        let contact = s.contact(monotonic_us());
        let change = lock(watch).observe(fence, contact, std::time::Instant::now());
        match change {
            Some(Change::Closed(idle)) => {
                self.stats.fenced.store(true, Ordering::Release);
                tracing::warn!(pipeline = %self.pipeline, idle_ms = idle.as_millis() as u64,
                    limit_ms = fence.limit().as_millis() as u64,
                    "no contact with the group coordinator for longer than the fence allows: \
                     starting no sink call and sending no commit until contact returns and this \
                     member still owns its partitions (the group may give them away at its \
                     session timeout)");
            }
            Some(Change::Reopened) => {
                self.stats.fenced.store(false, Ordering::Release);
                tracing::info!(pipeline = %self.pipeline,
                    "contact with the group coordinator is back and the assignment held: \
                     sink calls and commits resume");
            }
            None => {}
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = partitions_of(tpl);
                tracing::info!(pipeline = %self.pipeline, partitions = ?revoked, "partitions revoked; draining");
                let handles: Vec<_> = {
                    let mut parts = lock(&self.partitions);
                    revoked
                        .iter()
                        .filter_map(|k| parts.remove_entry(k))
                        .collect()
                };
                // The workers start nothing new from here on, even while a
                // periodic commit holds the lock below: one sent to a broker
                // that went silent waits for its request timeout, and the
                // revoked partitions' workers would go on delivering
                // meanwhile (the fault suite's cut-off member did, for 11 s
                // past its session).
                stop(&handles);
                let _no_periodic_commit = lock(&self.commit_lock);
                // The commit must happen before the partitions are released,
                // or the next owner starts from an older offset. Apache Kafka
                // accepts it here; brokers that refuse commits while the group
                // is rebalancing (librdkafka's mock cluster) get it again
                // once the rebalance is over.
                //
                // A lost assignment (this member's session expired: it
                // stalled, or was cut off) is drained all the same, so that
                // no call outlives it, but under the owner rule nothing is
                // committed for it: another member may own it by now.
                let lost = consumer.assignment_lost();
                let standing = if lost {
                    Standing::Lost
                } else {
                    Standing::Revoking
                };
                let offsets = drain(handles, self.drain_timeout);
                if !self.rule.may_commit(standing) {
                    tracing::warn!(pipeline = %self.pipeline, partitions = ?revoked,
                        "the group took these partitions while this member's session had \
                         expired (a stall or a lost connection); not committing them, as their \
                         new owner may have started (exactly-once sink): their new owner \
                         continues from the group's committed offset");
                } else if !commit(consumer, &offsets, &self.stats) {
                    if self.rule.may_commit(Standing::Released) {
                        lock(&self.revoked_uncommitted).extend(offsets);
                    } else {
                        tracing::info!(pipeline = %self.pipeline, offsets = ?offsets,
                            "the broker refused the revoked partitions' commit; not sending it \
                             after the release (exactly-once sink): their new owner continues \
                             from the group's committed offset");
                    }
                }
            }
            Rebalance::Assign(tpl) => {
                self.stats.joined.store(true, Ordering::Release);
                tracing::info!(pipeline = %self.pipeline, count = tpl.count(), "partitions assigned");
                self.stats.forget_committed(&partitions_of(tpl));
                // Before the assignment starts fetching: see `FetchQueue`.
                let unrouted = match lock(&self.fetch).as_ref() {
                    Some(fetch) => fetch.route(consumer, tpl),
                    None => Vec::new(),
                };
                if !unrouted.is_empty() {
                    tracing::warn!(pipeline = %self.pipeline, partitions = ?unrouted,
                        "these partitions are read one message at a time (slower): librdkafka \
                         could not route them to the batch queue");
                }
            }
            Rebalance::Error(e) => {
                tracing::error!(pipeline = %self.pipeline, error = %e, "rebalance error")
            }
        }
    }

    // librdkafka keeps a partition's application pause flag through an
    // unassignment (its assignment code resets only its own, library pause
    // flag), while flumen forgets a pause with the revoked worker and
    // resumes only partitions it knows it paused. A partition paused when
    // revoked and later assigned to this member again could then stay
    // paused for good. Every newly assigned partition is therefore resumed;
    // resuming one that is not paused does nothing. (The fault suite's
    // `rebalance-while-paused` drives this path; it has not caught such a
    // stall without this guard.)
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(pipeline = %self.pipeline, error = %e,
                    "cannot resume the newly assigned partitions; one paused before a rebalance \
                     may not be fetched");
            }
        }
    }

    // Results of the commits librdkafka makes by itself (on close); flumen's
    // own commits are synchronous and record their result directly.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => record_committed(&self.stats, offsets),
            Err(e) => tracing::warn!(pipeline = %self.pipeline, error = %e,
                "offset commit failed; the offsets are committed again on the next commit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_is_retried_once_at_its_furthest_offset() {
        let pending = vec![
            ("t".to_owned(), 0, 14932),
            ("t".to_owned(), 2, 15000),
            ("t".to_owned(), 0, 3000),
            ("t".to_owned(), 1, 2000),
        ];
        assert_eq!(
            revoked_to_retry(pending),
            vec![
                ("t".to_owned(), 0, 14932),
                ("t".to_owned(), 1, 2000),
                ("t".to_owned(), 2, 15000)
            ]
        );
    }
}

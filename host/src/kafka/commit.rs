//! Committing what the partition workers finalized: synchronously, so that
//! flumen knows what the broker acknowledged, and periodically from a
//! thread of its own.

use super::assignment::{lock, Partitions};
use super::commit_rule::{CommitRule, StallFence, Standing};
use super::fence::Fence;
use crate::config::PipelineConfig;
use crate::stats::PipelineStats;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Commits `(topic, partition, offset)` triples and records what the broker
/// acknowledged. Returns whether it did; a failure is logged.
///
/// An offset at or behind the one this member has recorded for its
/// partition is not sent: the broker has it already, or further. Commits
/// thus never move a partition back, which could happen when a revoked
/// partition's late commit (see `PipelineConsumer::retry_revoked`) lands
/// after the partition was assigned to this member again, and its new
/// worker, which started from the older offset, commits its way up.
/// Commits never run at the same time (each holds the pipeline's commit
/// lock, or the committer thread has stopped), so a record cannot change
/// between this check and the commit.
pub fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &[(String, i32, i64)],
    stats: &PipelineStats,
) -> bool {
    let offsets = advancing(offsets, &stats.committed());
    if offsets.is_empty() {
        return true;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in &offsets {
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

/// The offsets past what is acknowledged for their partition (all of a
/// partition with no record).
fn advancing<'a>(
    offsets: &'a [(String, i32, i64)],
    acknowledged: &BTreeMap<(String, i32), i64>,
) -> Vec<&'a (String, i32, i64)> {
    offsets
        .iter()
        .filter(|(t, p, o)| acknowledged.get(&(t.clone(), *p)).is_none_or(|c| o > c))
        .collect()
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
    /// Ends with where the partitions stood at its last look.
    thread: std::thread::JoinHandle<Standing>,
}

impl Committer {
    /// Starts the thread. It holds `exclusive` for each commit, so that a
    /// revocation holding it too never sees a periodic commit land after
    /// its own. Under [`CommitRule::Owner`], a stall of this process past
    /// `session` (the group's session timeout) fences its commits for a
    /// while (see [`StallFence`]): the partitions may have been taken; so
    /// does a closed `fence` (no contact with the group coordinator).
    pub fn spawn<C: ConsumerContext + 'static>(
        pipeline: &PipelineConfig,
        consumer: Arc<BaseConsumer<C>>,
        partitions: Arc<Mutex<Partitions>>,
        exclusive: Arc<Mutex<()>>,
        stats: Arc<PipelineStats>,
        (rule, session): (CommitRule, Duration),
        fence: Option<Arc<Fence>>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        let every = Duration::from_millis(pipeline.commit.interval_ms);
        let name = pipeline.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("flumen-commit-{}", pipeline.name))
            .spawn(move || {
                let mut stall = (rule == CommitRule::Owner)
                    .then(|| StallFence::new(session, every, Instant::now()));
                let cut_off = || fence.as_ref().is_some_and(|f| !f.open(Instant::now()));
                let mut standing = || match stall.as_mut().map(|f| f.check(Instant::now())) {
                    Some(Err(gap)) => {
                        tracing::warn!(pipeline = %name, stalled_ms = gap.as_millis() as u64,
                            "this process was frozen past the group's session timeout; holding \
                             commits back for a session timeout, until the group has had time \
                             to say whether this member still owns its partitions");
                        Standing::Lost
                    }
                    Some(Ok(false)) => Standing::Lost,
                    _ if cut_off() => Standing::Lost,
                    _ => Standing::Owned,
                };
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if rule.may_commit(standing()) {
                        let _exclusive = lock(&exclusive);
                        commit_published(&consumer, &partitions, &stats);
                    }
                }
                standing()
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread after its current commit; the final commit is the
    /// caller's, where the partitions stand as returned (`Lost` while a
    /// stall's fence holds).
    pub fn stop(self) -> Standing {
        drop(self.stop);
        self.thread.join().unwrap_or(Standing::Lost)
    }
}

/// Commits every partition's published offset that the broker has not yet
/// acknowledged (`commit` leaves out the others); a failed commit is simply
/// sent again next time.
fn commit_published<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &Mutex<Partitions>,
    stats: &PipelineStats,
) {
    let offsets: Vec<(String, i32, i64)> = lock(partitions)
        .iter()
        .filter_map(|((t, p), h)| Some((t.clone(), *p, h.shared.committable()?)))
        .collect();
    commit(consumer, &offsets, stats);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A revoked partition's late commit of 15000 landed; the partition's
    /// new worker on this member started at 10000 and commits its way up.
    #[test]
    fn a_commit_at_or_behind_the_acknowledged_one_is_not_sent() {
        let acknowledged: BTreeMap<_, _> = [(("t".to_owned(), 2), 15000)].into_iter().collect();
        let offsets = vec![
            ("t".to_owned(), 2, 11000),
            ("t".to_owned(), 2, 15000),
            ("t".to_owned(), 3, 40),
        ];
        assert_eq!(
            advancing(&offsets, &acknowledged),
            vec![&("t".to_owned(), 3, 40)]
        );
        let further = vec![("t".to_owned(), 2, 15001)];
        assert_eq!(advancing(&further, &acknowledged), vec![&further[0]]);
    }
}

//! Finalization: the one place that decides an offset is done with, and so
//! may be committed.
//!
//! An event is *final* when it was dropped by an interceptor (or routed to
//! no sink), given up on by an interceptor whose policy disposed of it
//! (dead-lettered and acknowledged, or skipped), or settled by every sink
//! it was routed to (delivered, or given up on in the same way). The
//! [`Finalizer`] keeps, for every event at the sinks (several batches may be
//! there at once, and sinks settle them in any order), how many sinks still
//! owe it; it marks an offset final in the partition's
//! [`OffsetTracker`] only when nothing is owed any more, and publishes the
//! tracker's contiguous watermark for the consumer thread to commit. No
//! other code touches the tracker or the committable offset, so the commit
//! rule holds if this module is right, which its tests check.

use super::offsets::{OffsetTracker, TrackerError};
use super::route::Route;
use crate::kafka::Publisher;
use crate::stats::PipelineStats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One partition's finalization state.
pub struct Finalizer {
    tracker: OffsetTracker,
    /// Where the committable offset is published, for the consumer thread:
    /// the finalizer holds the partition's one publisher.
    publisher: Publisher,
    stats: Arc<PipelineStats>,
    /// For each event at the sinks, in offset order: its offset and how
    /// many sinks still owe it a delivery or a give-up. Settled entries
    /// leave from the front.
    owed: VecDeque<(i64, u32)>,
    /// Counted here and added to the pipeline's counters once per batch:
    /// every partition's worker shares those counters, and an atomic add
    /// per event made their cache line bounce between the cores.
    finalized: u64,
    dropped: u64,
}

impl Finalizer {
    /// Nothing tracked yet; publishes through `publisher`, counts into
    /// `stats`.
    pub fn new(publisher: Publisher, stats: Arc<PipelineStats>) -> Self {
        Self {
            tracker: OffsetTracker::new(),
            publisher,
            stats,
            owed: VecDeque::new(),
            finalized: 0,
            dropped: 0,
        }
    }

    /// Registers a batch as read and in flight. Its offsets must be above
    /// every offset tracked before; the consumer guarantees that, and an
    /// error here means the worker must stop rather than commit something
    /// unproven.
    pub fn track(&mut self, offsets: &[i64]) -> Result<(), TrackerError> {
        offsets.iter().try_for_each(|&o| self.tracker.track(o))
    }

    /// An interceptor dropped the event, or routed it to no sink.
    pub fn dropped(&mut self, offset: i64) {
        self.dropped += 1;
        self.finalize(offset);
    }

    /// An interceptor gave the event up and its policy disposed of it: the
    /// dead letter was acknowledged, or the event was skipped. (A
    /// `fail-open` event is passed on, not given up.)
    pub fn given_up(&mut self, offset: i64) {
        self.finalize(offset);
    }

    /// A batch reaches the sinks: the event at `offsets[i]` is owed by the
    /// sinks in `routes[i]`, or by all `sinks` if its route is `None`.
    pub fn owe(&mut self, offsets: &[i64], routes: &[Route], sinks: usize) {
        self.owed.extend(
            offsets
                .iter()
                .zip(routes)
                .map(|(&o, r)| (o, r.as_ref().map_or(sinks, Vec::len) as u32)),
        );
    }

    /// One sink is done with the event at `offset`: delivered it, or gave
    /// it up and had it disposed of. The event is final once no sink owes
    /// it any more.
    pub fn settled(&mut self, offset: i64) {
        // Sinks mostly settle in offset order, so the front is tried first.
        let idx = if self.owed.front().is_some_and(|&(o, _)| o == offset) {
            Ok(0)
        } else {
            self.owed.binary_search_by_key(&offset, |&(o, _)| o)
        };
        let Ok(idx) = idx else {
            tracing::error!(offset, "settled an event no sink owes; ignored");
            return;
        };
        let owed = &mut self.owed[idx].1;
        if *owed == 0 {
            tracing::error!(offset, "settled an event no sink owes any more; ignored");
            return;
        }
        *owed -= 1;
        if *owed == 0 {
            self.finalize(offset);
            while self.owed.front().is_some_and(|&(_, n)| n == 0) {
                self.owed.pop_front();
            }
        }
    }

    /// How many sinks still owe the event at `offset`.
    #[cfg(test)]
    pub fn owed(&self, offset: i64) -> usize {
        (self.owed.binary_search_by_key(&offset, |&(o, _)| o))
            .map_or(0, |i| self.owed[i].1 as usize)
    }

    /// Adds what this batch finalized and dropped to the pipeline's
    /// counters. Called once per batch, however it ended.
    pub fn end_batch(&mut self) {
        let finalized = std::mem::take(&mut self.finalized);
        let dropped = std::mem::take(&mut self.dropped);
        if finalized > 0 {
            self.stats.finalized.fetch_add(finalized, Ordering::Relaxed);
        }
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Tracked offsets not final yet (or final behind one that is not).
    pub fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    fn finalize(&mut self, offset: i64) {
        match self.tracker.finalize(offset) {
            Ok(()) => {
                self.finalized += 1;
                if let Some(c) = self.tracker.committable() {
                    self.publisher.publish(c);
                }
            }
            Err(e) => tracing::error!(error = %e, "finalize of an unknown offset ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finalizer() -> (
        Finalizer,
        Arc<crate::kafka::PartitionShared>,
        Arc<PipelineStats>,
    ) {
        let publisher = Publisher::new();
        let shared = publisher.shared().clone();
        let stats = Arc::new(PipelineStats::default());
        (Finalizer::new(publisher, stats.clone()), shared, stats)
    }

    #[test]
    fn an_event_is_final_once_every_routed_sink_settled_it() {
        let (mut f, shared, stats) = finalizer();
        f.track(&[0, 1, 2]).unwrap();
        // 0 to sink 0 only, 1 to sinks 0 and 1, 2 to all (two) sinks.
        f.owe(&[0, 1, 2], &[Some(vec![0]), Some(vec![0, 1]), None], 2);
        assert_eq!((f.owed(0), f.owed(1), f.owed(2)), (1, 2, 2));
        f.settled(1);
        f.settled(2);
        assert_eq!(shared.committable(), None, "0 is owed");
        f.settled(0);
        assert_eq!(shared.committable(), Some(1), "1 and 2 still owed once");
        f.settled(2);
        assert_eq!(shared.committable(), Some(1), "1 is owed by sink 1");
        f.settled(1);
        assert_eq!(shared.committable(), Some(3));
        f.end_batch();
        assert_eq!(PipelineStats::get(&stats.finalized), 3);
    }

    #[test]
    fn settling_more_than_owed_changes_nothing() {
        let (mut f, shared, _) = finalizer();
        f.track(&[0, 1]).unwrap();
        f.owe(&[0, 1], &[Some(vec![0, 1]), None], 2);
        f.settled(0);
        f.settled(5);
        assert_eq!(shared.committable(), None);
        f.settled(0);
        f.settled(0);
        assert_eq!(f.owed(0), 0);
        assert_eq!(shared.committable(), Some(1));
    }

    #[test]
    fn drops_and_give_ups_are_final_at_once_but_never_pass_a_gap() {
        let (mut f, shared, stats) = finalizer();
        f.track(&[3, 7, 9]).unwrap();
        f.dropped(7);
        f.given_up(9);
        assert_eq!(shared.committable(), None, "3 is in flight");
        f.owe(&[3], &[None], 1);
        f.settled(3);
        assert_eq!(shared.committable(), Some(10));
        f.end_batch();
        assert_eq!(PipelineStats::get(&stats.dropped), 1);
        assert_eq!(PipelineStats::get(&stats.finalized), 3);
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn batches_at_the_sinks_at_once_settle_in_any_order() {
        let (mut f, shared, _) = finalizer();
        f.track(&[0, 1, 2, 3]).unwrap();
        f.owe(&[0, 1], &[None, None], 1);
        f.owe(&[2, 3], &[None, None], 1);
        f.settled(3);
        f.settled(2);
        assert_eq!(shared.committable(), None, "the first batch is still out");
        f.settled(1);
        assert_eq!(shared.committable(), None);
        f.settled(0);
        assert_eq!(shared.committable(), Some(4));
        assert_eq!(f.owed.len(), 0, "settled entries leave");
    }
}

//! The per-partition offset tracker: which offset may be committed.
//!
//! Kafka's committed offset means "everything before this is done". So the
//! tracker only ever reports the *contiguous* watermark: `N + 1` where every
//! tracked offset `<= N` is finalized (delivered everywhere it was routed, or
//! dropped). An event that finalizes early never moves the watermark past an
//! earlier one that has not — committing "the latest delivered offset" is the
//! classic way consumers lose events on a restart.
//!
//! Offsets within a partition need not be consecutive (compaction and
//! transaction markers leave gaps), so the tracker keeps the offsets it was
//! given rather than assuming `N + 1` follows `N`.

use std::collections::VecDeque;

/// Tracks in-flight offsets of one partition, in the order they were read.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Tracked, not yet retired offsets in increasing order, with whether each
    /// is finalized.
    pending: VecDeque<(i64, bool)>,
    /// The offset to commit: one past the last retired offset.
    watermark: Option<i64>,
}

/// A contract violation by the caller: offsets must be tracked in increasing
/// order and finalized once tracked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// `track` was called with an offset not above the last tracked one.
    #[error("offset {offset} tracked after {last}: offsets must increase")]
    OutOfOrder {
        /// The offset given.
        offset: i64,
        /// The last tracked offset.
        last: i64,
    },
    /// `finalize` was called with an offset that is not in flight.
    #[error("offset {0} finalized but not in flight")]
    Unknown(i64),
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an offset as read and in flight.
    pub fn track(&mut self, offset: i64) -> Result<(), TrackerError> {
        let last = self
            .pending
            .back()
            .map(|&(o, _)| o)
            .or(self.watermark.map(|w| w - 1));
        if let Some(last) = last {
            if offset <= last {
                return Err(TrackerError::OutOfOrder { offset, last });
            }
        }
        self.pending.push_back((offset, false));
        Ok(())
    }

    /// Marks an in-flight offset finalized and advances the watermark over
    /// every finalized offset at the front. Finalizing twice is harmless.
    pub fn finalize(&mut self, offset: i64) -> Result<(), TrackerError> {
        // Events are mostly finalized in the order they were read, so the
        // front is tried before searching.
        let idx = if self.pending.front().is_some_and(|&(o, _)| o == offset) {
            0
        } else {
            self.pending
                .binary_search_by_key(&offset, |&(o, _)| o)
                .map_err(|_| TrackerError::Unknown(offset))?
        };
        self.pending[idx].1 = true;
        while let Some(&(o, true)) = self.pending.front() {
            self.watermark = Some(o + 1);
            self.pending.pop_front();
        }
        Ok(())
    }

    /// The offset to commit (one past the last offset of the finalized
    /// prefix), or `None` if nothing has been finalized yet.
    pub fn committable(&self) -> Option<i64> {
        self.watermark
    }

    /// Number of tracked offsets not yet retired.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watermark a correct tracker must report, computed the slow way.
    fn expected(offsets: &[i64], done: &[bool]) -> Option<i64> {
        let mut w = None;
        for (o, d) in offsets.iter().zip(done) {
            if !d {
                break;
            }
            w = Some(o + 1);
        }
        w
    }

    #[test]
    fn later_success_never_passes_earlier_failure() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.track(o).unwrap();
        }
        t.finalize(11).unwrap();
        t.finalize(14).unwrap();
        assert_eq!(t.committable(), None, "10 is not finalized");
        t.finalize(10).unwrap();
        assert_eq!(t.committable(), Some(12));
        t.finalize(12).unwrap();
        t.finalize(13).unwrap();
        assert_eq!(t.committable(), Some(15));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn gaps_in_offsets_are_fine() {
        let mut t = OffsetTracker::new();
        for o in [3, 7, 8, 20] {
            t.track(o).unwrap();
        }
        t.finalize(7).unwrap();
        t.finalize(3).unwrap();
        assert_eq!(t.committable(), Some(8));
        t.finalize(20).unwrap();
        assert_eq!(t.committable(), Some(8));
        t.finalize(8).unwrap();
        assert_eq!(t.committable(), Some(21));
    }

    #[test]
    fn misuse_is_reported_not_absorbed() {
        let mut t = OffsetTracker::new();
        t.track(5).unwrap();
        assert_eq!(
            t.track(5),
            Err(TrackerError::OutOfOrder { offset: 5, last: 5 })
        );
        assert_eq!(t.finalize(6), Err(TrackerError::Unknown(6)));
        t.finalize(5).unwrap();
        // Retired offsets cannot come back.
        assert_eq!(
            t.track(4),
            Err(TrackerError::OutOfOrder { offset: 4, last: 5 })
        );
        assert_eq!(t.finalize(5), Err(TrackerError::Unknown(5)));
    }

    #[test]
    fn randomized_completion_orders_match_the_contiguous_watermark() {
        for seed in 0..500u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let n = rng.usize(1..200);
            // Increasing offsets with random gaps.
            let mut offsets = Vec::with_capacity(n);
            let mut o = rng.i64(0..1000);
            for _ in 0..n {
                offsets.push(o);
                o += rng.i64(1..4);
            }
            let mut t = OffsetTracker::new();
            // Interleave tracking and finalizing: only tracked offsets can
            // finalize, in a random order.
            let mut done = vec![false; n];
            let mut tracked = 0;
            let mut open: Vec<usize> = Vec::new();
            while tracked < n || !open.is_empty() {
                if tracked < n && (open.is_empty() || rng.bool()) {
                    t.track(offsets[tracked]).unwrap();
                    open.push(tracked);
                    tracked += 1;
                } else {
                    let i = open.swap_remove(rng.usize(..open.len()));
                    t.finalize(offsets[i]).unwrap();
                    done[i] = true;
                }
                assert_eq!(t.committable(), expected(&offsets, &done), "seed {seed}");
            }
            assert_eq!(t.committable(), Some(offsets[n - 1] + 1), "seed {seed}");
            assert_eq!(t.in_flight(), 0);
        }
    }
}

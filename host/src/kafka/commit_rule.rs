//! Which commits a member may send for a partition, and when.
//!
//! Kafka lets any member of a group commit any partition's offset, and a
//! commit carries no proof that the sender still owns the partition. Two
//! rules follow from what the pipeline's sinks promise:
//! - **at-least-once** ([`CommitRule::Finalized`]): any watermark this
//!   member finalized may be committed, even after the partition was
//!   revoked or lost. Everything below it was delivered, so a late commit
//!   never skips an undelivered event; it only spares the next owner some
//!   redelivery.
//! - **exactly-once** ([`CommitRule::Owner`], a pipeline with a sink that
//!   sets `exactly_once = true`): a member commits a partition only while
//!   it owns it in its current generation, and not once it may have lost
//!   it. The s3 sink's written-once objects make a late commit harmless
//!   (`docs/sinks/s3.md`), but the group's offset is the one place where
//!   two members' views of a partition meet, and a member that is not the
//!   owner has no business moving it.
//!
//! `docs/reliability.md` ("Which commits a member sends") lists every
//! commit path against these rules.

use std::time::{Duration, Instant};

/// What a pipeline's sinks need of its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRule {
    /// Any finalized watermark, whenever it can be sent.
    Finalized,
    /// Only by the partition's owner in the current generation.
    Owner,
}

/// Where a partition stands for this member when a commit would be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Assigned to this member, its worker running.
    Owned,
    /// Being revoked in an orderly rebalance: this member still owns it
    /// until the revocation callback returns, and the next owner starts
    /// from what it commits now.
    Revoking,
    /// May have been taken away without a rebalance this member took
    /// part in: librdkafka reports the assignment lost (the session
    /// expired), or this process was frozen past its session timeout and
    /// the group has not had time to say since. Another member may own the
    /// partition already.
    Lost,
    /// Revoked earlier; the commit would arrive after the release.
    Released,
}

impl CommitRule {
    /// Whether a member may commit a partition that stands so.
    pub fn may_commit(self, standing: Standing) -> bool {
        match (self, standing) {
            (_, Standing::Owned | Standing::Revoking) => true,
            (CommitRule::Finalized, Standing::Lost | Standing::Released) => true,
            (CommitRule::Owner, Standing::Lost | Standing::Released) => false,
        }
    }
}

/// Notices that this process was frozen (SIGSTOP, a VM pause, a starved
/// host) for longer than the group's session timeout, and fences commits
/// for a while after it: the group may have given this member's partitions
/// away meanwhile, and librdkafka learns that only on its next exchange
/// with the coordinator. Commits resume once a session timeout has passed
/// since the stall without the assignment being taken: by then librdkafka
/// has heard from the coordinator, and a lost assignment would have been
/// revoked. Under [`CommitRule::Owner`] only.
///
/// This narrows the window in which a member that stalled sends a commit
/// it may no longer send; it cannot close it (a stall can fall between the
/// check and the send). Correctness does not rest on it.
#[derive(Debug)]
pub struct StallFence {
    /// A gap between wake-ups longer than this is a stall.
    stall: Duration,
    /// How long commits stay fenced after one.
    session: Duration,
    last: Instant,
    fenced_until: Option<Instant>,
}

impl StallFence {
    /// A fence for a group with this session timeout, checked every
    /// `every` (a late wake-up by less than the session is no stall).
    pub fn new(session: Duration, every: Duration, now: Instant) -> Self {
        Self {
            stall: session + every,
            session,
            last: now,
            fenced_until: None,
        }
    }

    /// Called on every wake-up of the committer: whether it may commit
    /// now. `Err(gap)` the first time a stall of `gap` is seen.
    pub fn check(&mut self, now: Instant) -> Result<bool, Duration> {
        let gap = now.saturating_duration_since(self.last);
        self.last = now;
        if gap > self.stall {
            self.fenced_until = Some(now + self.session);
            return Err(gap);
        }
        match self.fenced_until {
            Some(until) if now < until => Ok(false),
            _ => {
                self.fenced_until = None;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_commits_for_an_exactly_once_sink() {
        use Standing::*;
        let owner = CommitRule::Owner;
        assert!(owner.may_commit(Owned));
        // The orderly revocation commits before the release: the next
        // owner starts from it.
        assert!(owner.may_commit(Revoking));
        // The session expired: someone else may own it now.
        assert!(!owner.may_commit(Lost));
        // A refused revoke-time commit is not sent after the rebalance.
        assert!(!owner.may_commit(Released));
    }

    #[test]
    fn at_least_once_commits_any_finalized_watermark() {
        use Standing::*;
        for s in [Owned, Revoking, Lost, Released] {
            assert!(CommitRule::Finalized.may_commit(s), "{s:?}");
        }
    }

    #[test]
    fn a_stall_past_the_session_fences_commits_for_a_session() {
        let t0 = Instant::now();
        let s = Duration::from_secs(6);
        let mut f = StallFence::new(s, Duration::from_millis(200), t0);
        assert_eq!(f.check(t0 + Duration::from_millis(200)), Ok(true));
        // Frozen for 12 s.
        let resumed = t0 + Duration::from_secs(12);
        assert!(f.check(resumed).is_err());
        assert_eq!(f.check(resumed + Duration::from_secs(1)), Ok(false));
        assert_eq!(f.check(resumed + Duration::from_secs(5)), Ok(false));
        assert_eq!(f.check(resumed + Duration::from_millis(6_100)), Ok(true));
        // A gap just under the session and an interval is no stall.
        let later = resumed + Duration::from_millis(6_100) + Duration::from_millis(6_150);
        assert_eq!(f.check(later), Ok(true));
    }
}

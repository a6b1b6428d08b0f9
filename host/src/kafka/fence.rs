//! Self-fencing: a member that has not heard from its group coordinator
//! for long enough that the group may have given its partitions away stops
//! starting sink calls and stops committing, before the group's deadline.
//!
//! The group expires a member `session.timeout.ms` after the last heartbeat
//! it received from it, and may then give its partitions to another member.
//! A member cut off from the broker learns that only when contact returns
//! (librdkafka revokes the assignment as lost at its own session timeout).
//! Until then it is a *zombie*: it may still reach its destination and
//! deliver, side by side with the partition's new owner.
//!
//! **The timing** (`docs/reliability.md`, "A member that fences itself"):
//! let `R` be the last time the member received anything on its
//! coordinator connection. The member heartbeats every
//! `heartbeat.interval.ms` (`H`), so the last heartbeat the coordinator
//! received was sent no earlier than `R − H`, and the group cannot expire
//! the member before `R − H + S` (`S`: the session timeout). The fence
//! closes at `R + limit`, `limit = S − H − C − SLACK`, where `C` bounds a
//! call (`limits.call_timeout_ms`: the host ends a call's HTTP requests by
//! then too). A call started before the fence closed has ended by
//! `R + S − H − SLACK`, before the group's deadline. `SLACK` covers the
//! one-way delay of that heartbeat and a request the destination had whole
//! when its call gave up on it.
//!
//! **Reading `R`**: librdkafka's statistics give, per broker connection,
//! the time since its last receive (`rxidle`) and when they were made
//! (`ts`). Statistics that arrive late only make `R` look older, so the
//! fence errs towards closing; a consumer thread that stops serving them
//! closes it by itself, as the fence is a deadline the workers read.
//!
//! **Reopening**: once contact returns, the member resumes only if it
//! still owns its partitions: the coordinator answers, the group handler
//! is steady, and it stays so with no rebalance over two readings at least
//! [`REOPEN_AFTER`] apart. A member the group expired is told so by its
//! first exchange with the coordinator; librdkafka then revokes the lost
//! partitions (their workers stop) before the second reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the timing argument adds for what it cannot measure: the one-way
/// delay of the last heartbeat, and a write the destination had whole when
/// its call gave up.
pub const SLACK: Duration = Duration::from_millis(500);

/// How long contact must hold, with no rebalance, before a fenced member
/// starts calls again.
pub const REOPEN_AFTER: Duration = Duration::from_millis(400);

/// How often librdkafka reports statistics to a fenced pipeline: the
/// fence's view of contact is at most this stale.
pub const STATISTICS_INTERVAL: Duration = Duration::from_millis(500);

/// The settings a fence's limit is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The group's `session.timeout.ms`.
    pub session: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat: Duration,
    /// The longest a sink call may take (`limits.call_timeout_ms`).
    pub call: Duration,
}

impl Timing {
    /// How long after its last contact a member may still start a call:
    /// `session − heartbeat − call − SLACK`, or an error naming what to
    /// change when that leaves no room. In steady work contact is renewed
    /// at least every heartbeat and read every [`STATISTICS_INTERVAL`], so
    /// the limit must exceed both, or the fence would close between
    /// heartbeats of a healthy member.
    pub fn limit(&self) -> Result<Duration, String> {
        let needed = self.heartbeat + STATISTICS_INTERVAL + SLACK;
        let spent = self.heartbeat + self.call + SLACK;
        match self.session.checked_sub(spent) {
            Some(limit) if limit >= needed => Ok(limit),
            _ => {
                let ms = |d: Duration| d.as_millis();
                let room = self
                    .session
                    .saturating_sub(2 * self.heartbeat + STATISTICS_INTERVAL + 2 * SLACK);
                Err(format!(
                    "a member cut off from the broker must end its sink calls before the group \
                     can give its partitions away: session.timeout.ms ({}) must cover a \
                     heartbeat.interval.ms ({}) since the last heartbeat, a whole call \
                     (limits.call_timeout_ms = {}), {} ms of slack, and still leave the member \
                     {} ms to renew contact in steady work. Lower limits.call_timeout_ms to at \
                     most {}, lower heartbeat.interval.ms, or \
                     raise session.timeout.ms to at least {}",
                    ms(self.session),
                    ms(self.heartbeat),
                    ms(self.call),
                    ms(SLACK),
                    ms(needed),
                    ms(room),
                    ms(spent + needed),
                ))
            }
        }
    }
}

/// The fence of a pipeline whose members fence themselves (`timing`, from
/// [`super::client_config::fence_timing`], already validated). With
/// `FLUMEN_SELF_FENCE=off` in the environment there is none: for a test
/// that shows what the fence prevents, never for production.
pub fn for_pipeline(pipeline: &str, timing: Option<Timing>) -> Option<Arc<Fence>> {
    let limit = timing?.limit().ok()?;
    if std::env::var("FLUMEN_SELF_FENCE").as_deref() == Ok("off") {
        tracing::warn!(%pipeline, "FLUMEN_SELF_FENCE=off: this member does not fence itself \
            when cut off from its group (a test switch; an exactly-once sink may then write \
            beside the partitions' next owner)");
        return None;
    }
    tracing::info!(%pipeline, limit_ms = limit.as_millis() as u64,
        "this member fences itself after this long without contact with its group coordinator");
    Some(Arc::new(Fence::new(limit)))
}

/// A pipeline's fence, read by every partition worker before it starts a
/// sink call and by the committer before it commits: a deadline, moved on
/// by the consumer thread each time it sees contact with the coordinator.
#[derive(Debug)]
pub struct Fence {
    epoch: Instant,
    /// Microseconds after `epoch` until which calls may start; 0 while
    /// closed before the first contact.
    open_until_us: AtomicU64,
    limit: Duration,
}

impl Fence {
    /// A closed fence (nothing may start until the first contact) that
    /// stays open for `limit` after each contact.
    pub fn new(limit: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            open_until_us: AtomicU64::new(0),
            limit,
        }
    }

    /// How long it stays open after a contact.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether a call may start (or a commit be sent) at `now`.
    pub fn open(&self, now: Instant) -> bool {
        self.until().is_some_and(|u| now < u)
    }

    /// Until when it is open, if it was ever opened.
    pub fn until(&self) -> Option<Instant> {
        match self.open_until_us.load(Ordering::Acquire) {
            0 => None,
            us => Some(self.epoch + Duration::from_micros(us)),
        }
    }

    /// Keeps it open until `limit` after a contact at `at` (never moving
    /// the deadline back).
    fn contact(&self, at: Instant) {
        let until = (at + self.limit).saturating_duration_since(self.epoch);
        let us = u64::try_from(until.as_micros()).unwrap_or(u64::MAX).max(1);
        self.open_until_us.fetch_max(us, Ordering::AcqRel);
    }
}

/// What one statistics reading says of the member's contact with its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// How long before the reading was taken the coordinator connection
    /// last received anything; `None` while it is not up.
    pub idle: Option<Duration>,
    /// Whether the group handler is steady (joined, assignment handled).
    pub steady: bool,
    /// Rebalances so far (assignments and revocations).
    pub rebalances: u64,
}

/// A change of the fence worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It closed: no contact for this long.
    Closed(Duration),
    /// Contact returned and held: calls start again.
    Reopened,
}

/// The consumer thread's side of a [`Fence`]: turns statistics readings
/// into contact, and decides when a closed fence may reopen.
#[derive(Debug)]
pub struct Watch {
    limit: Duration,
    /// A reading with contact while closed: when, and the rebalance count.
    reopening: Option<(Instant, u64)>,
    /// Whether the closing was reported.
    closed: bool,
}

impl Watch {
    /// Watches a fence that stays open for `limit` after each contact.
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            reopening: None,
            closed: false,
        }
    }

    /// Takes one reading, made at `now`, and moves `fence` on.
    pub fn observe(&mut self, fence: &Fence, c: Contact, now: Instant) -> Option<Change> {
        let last = c.idle.and_then(|i| now.checked_sub(i));
        let fresh = last.is_some_and(|l| now.saturating_duration_since(l) < self.limit);
        if fence.open(now) {
            self.closed = false;
            if let Some(l) = last {
                fence.contact(l);
            }
            return None;
        }
        let first = fence.until().is_none();
        let mut change = None;
        if !self.closed && !first {
            self.closed = true;
            let idle = last.map_or(self.limit, |l| now.saturating_duration_since(l));
            change = Some(Change::Closed(idle));
        }
        if !(fresh && c.steady) {
            self.reopening = None;
            return change;
        }
        let Some(l) = last else { return change };
        if first {
            // Joining: nothing was owned before.
            fence.contact(l);
            return change;
        }
        match self.reopening {
            Some((since, n))
                if n == c.rebalances && now.saturating_duration_since(since) >= REOPEN_AFTER =>
            {
                self.reopening = None;
                self.closed = false;
                fence.contact(l);
                Some(Change::Reopened)
            }
            Some((_, n)) if n == c.rebalances => change,
            _ => {
                self.reopening = Some((now, c.rebalances));
                change
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn contact(idle_ms: u64, rebalances: u64) -> Contact {
        Contact {
            idle: Some(ms(idle_ms)),
            steady: true,
            rebalances,
        }
    }

    #[test]
    fn the_limit_leaves_room_for_a_call_and_a_heartbeat() {
        // librdkafka's defaults and flumen's call timeout.
        let t = Timing {
            session: ms(45_000),
            heartbeat: ms(3_000),
            call: ms(30_000),
        };
        assert_eq!(t.limit(), Ok(ms(11_500)));
        // A 6 s session with heartbeats every half session leaves nothing.
        let t = Timing {
            session: ms(6_000),
            heartbeat: ms(3_000),
            call: ms(2_000),
        };
        let e = t.limit().unwrap_err();
        assert!(e.contains("limits.call_timeout_ms to at most"), "{e}");
        // Heartbeats every sixth of a 10 s session, 3 s calls.
        let t = Timing {
            session: ms(10_000),
            heartbeat: ms(1_666),
            call: ms(3_000),
        };
        assert_eq!(t.limit(), Ok(ms(4_834)));
    }

    #[test]
    fn the_suggested_fix_holds() {
        let t = Timing {
            session: ms(6_000),
            heartbeat: ms(1_000),
            call: ms(30_000),
        };
        let e = t.limit().unwrap_err();
        let at_most: u64 = e
            .split("at most ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .expect("a number");
        let fixed = Timing {
            call: ms(at_most),
            ..t
        };
        assert!(fixed.limit().is_ok(), "{fixed:?}");
        let fixed = Timing {
            call: ms(at_most + 1),
            ..t
        };
        assert!(fixed.limit().is_err());
    }

    #[test]
    fn it_closes_by_itself_when_contact_stops() {
        let t0 = Instant::now();
        let fence = Fence::new(ms(4_000));
        let mut w = Watch::new(ms(4_000));
        assert!(!fence.open(t0), "closed before the first contact");
        assert_eq!(w.observe(&fence, contact(100, 1), t0), None);
        assert!(fence.open(t0));
        // Contact at t0 + 900 ms, read at t0 + 1 s.
        w.observe(&fence, contact(100, 1), t0 + ms(1_000));
        assert!(fence.open(t0 + ms(4_800)));
        // No reading after that (a consumer thread that stopped serving
        // them, or readings that show no contact): the deadline passes.
        assert!(!fence.open(t0 + ms(4_900)));
        // Later readings with old contact report the closing once.
        let closed = w.observe(&fence, contact(4_100, 1), t0 + ms(5_000));
        assert_eq!(closed, Some(Change::Closed(ms(4_100))));
        assert_eq!(w.observe(&fence, contact(5_100, 1), t0 + ms(6_000)), None);
    }

    #[test]
    fn contact_that_returns_reopens_only_once_it_holds_without_a_rebalance() {
        let t0 = Instant::now();
        let fence = Fence::new(ms(4_000));
        let mut w = Watch::new(ms(4_000));
        w.observe(&fence, contact(0, 1), t0);
        let cut = t0 + ms(5_000);
        w.observe(&fence, contact(5_000, 1), cut);
        assert!(!fence.open(cut));
        // The first answer after the heal: not yet.
        let heal = t0 + ms(9_000);
        assert_eq!(w.observe(&fence, contact(50, 1), heal), None);
        assert!(!fence.open(heal));
        // That answer told librdkafka the member was expired: a
        // rebalance followed. Start over.
        assert_eq!(w.observe(&fence, contact(50, 2), heal + ms(500)), None);
        assert!(!fence.open(heal + ms(500)));
        // Not steady while it rejoins.
        let joining = Contact {
            steady: false,
            ..contact(50, 3)
        };
        assert_eq!(w.observe(&fence, joining, heal + ms(1_000)), None);
        // Steady, then steady again with no rebalance: reopened.
        assert_eq!(w.observe(&fence, contact(50, 4), heal + ms(1_500)), None);
        assert_eq!(
            w.observe(&fence, contact(50, 4), heal + ms(2_000)),
            Some(Change::Reopened)
        );
        assert!(fence.open(heal + ms(2_000)));
    }

    #[test]
    fn no_connection_is_no_contact() {
        let t0 = Instant::now();
        let fence = Fence::new(ms(4_000));
        let mut w = Watch::new(ms(4_000));
        let down = Contact {
            idle: None,
            steady: true,
            rebalances: 0,
        };
        w.observe(&fence, down, t0);
        assert!(!fence.open(t0));
    }
}

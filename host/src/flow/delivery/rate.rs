//! A sink's rate limit: a token bucket shared by every partition's worker of
//! the pipeline, since the destination sees their sum.
//!
//! A call may start while the bucket holds any token at all and takes as
//! many as it costs (events or 1), going into debt; the next call then waits
//! until the debt is paid back. So a call larger than a second's worth is
//! never refused, and over time the rate is exact.

use crate::config::Rate;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One sink's token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens now (negative: debt), at most a second's worth.
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// A full bucket for `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            state: Mutex::new(Bucket {
                tokens: per_second(rate),
                refilled: Instant::now(),
            }),
        }
    }

    /// Takes the cost of a call of `events` events, or says when to ask
    /// again.
    pub fn take(&self, events: usize, now: Instant) -> Result<(), Instant> {
        let per_s = per_second(self.rate);
        let cost = match self.rate {
            Rate::Events(_) => events as f64,
            Rate::Calls(_) => 1.0,
        };
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_s).min(per_s);
        b.refilled = now;
        if b.tokens > 0.0 {
            b.tokens -= cost;
            return Ok(());
        }
        let wait = (-b.tokens + f64::EPSILON) / per_s;
        Err(now + Duration::from_secs_f64(wait.min(3600.0)).max(Duration::from_micros(100)))
    }
}

fn per_second(rate: Rate) -> f64 {
    match rate {
        Rate::Events(r) | Rate::Calls(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_into_debt_and_wait_it_out() {
        let t0 = Instant::now();
        let r = RateLimiter::new(Rate::Events(100.0));
        assert!(
            r.take(150, t0).is_ok(),
            "a full bucket lets a large call go"
        );
        let again = r.take(1, t0).unwrap_err();
        // 50 events of debt at 100/s: half a second.
        let wait = again - t0;
        assert!(wait >= Duration::from_millis(499) && wait <= Duration::from_millis(501));
        assert!(r.take(1, t0 + Duration::from_millis(490)).is_err());
        assert!(r.take(1, t0 + Duration::from_millis(510)).is_ok());
    }

    #[test]
    fn a_calls_rate_counts_calls() {
        let t0 = Instant::now();
        let r = RateLimiter::new(Rate::Calls(2.0));
        assert!(r.take(1000, t0).is_ok());
        assert!(r.take(1000, t0).is_ok());
        assert!(r.take(1000, t0).is_err());
        assert!(r.take(1000, t0 + Duration::from_millis(600)).is_ok());
    }
}

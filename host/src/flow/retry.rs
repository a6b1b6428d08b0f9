//! Exponential backoff with equal jitter (each delay uniform between half
//! the cap and the cap) between retries of a failed guest
//! call. Jitter keeps many partitions that failed together (a sink's
//! destination went down) from retrying in lock-step.

use crate::config::RetryConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Backoff state for one sequence of retries.
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts a new sequence.
    pub fn new(cfg: &RetryConfig) -> Self {
        Self {
            initial: Duration::from_millis(cfg.initial_backoff_ms),
            max: Duration::from_millis(cfg.max_backoff_ms),
            attempt: 0,
        }
    }

    /// Attempts made so far.
    #[cfg(test)]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay: uniform in `[cap/2, cap]` where `cap` doubles per
    /// attempt up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps for the next delay, waking early if `stop` is set. Returns
    /// `false` if stopped.
    pub fn wait(&mut self, stop: &AtomicBool) -> bool {
        let delay = self.next_delay();
        sleep_until(Instant::now() + delay, stop)
    }
}

/// Sleeps until `deadline`, checking `stop` every few milliseconds. Returns
/// `false` if stopped.
pub fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(20);
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(step));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let mut b = Backoff::new(&RetryConfig {
            attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            ..RetryConfig::default()
        });
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[2] >= Duration::from_millis(200) && d[2] <= Duration::from_millis(400));
        assert!(d.iter().all(|x| *x <= Duration::from_millis(1000)));
        assert!(d[7] >= Duration::from_millis(500));
        assert_eq!(b.attempts(), 8);
    }
}

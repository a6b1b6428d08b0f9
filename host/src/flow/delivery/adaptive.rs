//! Adaptive concurrency: the number of a sink's calls in flight, between 1
//! and `max_in_flight`, adapted like TCP's congestion window (additive
//! increase, multiplicative decrease), as Vector's adaptive request
//! concurrency does.
//!
//! A call that comes back quickly and fully delivered adds about one call to
//! the window per window's worth of calls. A call pushed back (a `retry`
//! verdict, or the whole call failing) or one much slower than the sink's
//! usual latency halves it, at most once per latency period, so that one
//! congested moment is not counted once per call still in flight.

use std::time::{Duration, Instant};

/// How much slower than the usual latency a call must be to count as
/// congestion.
const SLOW: f64 = 2.0;
/// Weight of each call in the usual latency (an exponential average).
const WEIGHT: f64 = 0.05;

/// One sink's adaptive window for one partition.
#[derive(Debug)]
pub struct Adaptive {
    window: f64,
    max: usize,
    /// The usual latency, in seconds, once there is one.
    usual: Option<f64>,
    last_cut: Option<Instant>,
}

impl Adaptive {
    /// Starts at one call, up to `max`.
    pub fn new(max: usize) -> Self {
        Self {
            window: 1.0,
            max,
            usual: None,
            last_cut: None,
        }
    }

    /// The calls that may be in flight now.
    pub fn window(&self) -> usize {
        (self.window as usize).clamp(1, self.max)
    }

    /// A call ended at `now` after `elapsed`; `pushed_back` if the sink
    /// asked for a retry of any of it or the call failed.
    pub fn observe(&mut self, elapsed: Duration, pushed_back: bool, now: Instant) {
        let rtt = elapsed.as_secs_f64();
        let usual = *self.usual.get_or_insert(rtt);
        let slow = rtt > usual * SLOW;
        if !slow {
            // Congested calls would drag the usual latency up with them.
            self.usual = Some(usual + (rtt - usual) * WEIGHT);
        }
        if pushed_back || slow {
            let period = Duration::from_secs_f64(usual);
            if self
                .last_cut
                .is_none_or(|t| now.duration_since(t) >= period)
            {
                self.window = (self.window / 2.0).max(1.0);
                self.last_cut = Some(now);
            }
        } else {
            self.window = (self.window + 1.0 / self.window).min(self.max as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_while_calls_are_fast_and_halves_on_a_retry() {
        let mut a = Adaptive::new(16);
        let t = Instant::now();
        let ms = Duration::from_millis(20);
        for _ in 0..1000 {
            a.observe(ms, false, t);
        }
        assert_eq!(a.window(), 16);
        a.observe(ms, true, t);
        assert_eq!(a.window(), 8);
        // Within the same latency period, other pushed-back calls do not
        // cut again.
        a.observe(ms, true, t + Duration::from_millis(5));
        assert_eq!(a.window(), 8);
        a.observe(ms, true, t + Duration::from_millis(30));
        assert_eq!(a.window(), 4);
    }

    #[test]
    fn a_call_much_slower_than_usual_counts_as_congestion() {
        let mut a = Adaptive::new(64);
        let t = Instant::now();
        for _ in 0..200 {
            a.observe(Duration::from_millis(20), false, t);
        }
        let before = a.window();
        assert!(before > 16, "{before}");
        a.observe(Duration::from_millis(200), false, t);
        assert_eq!(a.window(), before / 2);
    }
}

//! Groups a partition's events into batches: up to `max_events`, or whatever
//! arrived within `max_wait` of the batch's first event.
//!
//! Guests are called once per batch, so the batch is what amortizes the cost
//! of crossing into WebAssembly; `max_wait` bounds the latency that buys on a
//! quiet partition.

use crate::runtime::bindings::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often a waiting batcher looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Collects batches from one partition's queue.
pub struct Batcher {
    rx: Receiver<Event>,
    max_events: usize,
    max_wait: Duration,
}

impl Batcher {
    /// A batcher reading `rx`.
    pub fn new(rx: Receiver<Event>, max_events: usize, max_wait: Duration) -> Self {
        Self {
            rx,
            max_events,
            max_wait,
        }
    }

    /// Waits for the next batch. Returns `None` once `stop` is set or the
    /// queue is closed and empty; events still queued then are abandoned —
    /// they were never handed to a guest, so they are not committed and will
    /// be read again by whoever owns the partition next.
    pub fn next_batch(&self, stop: &AtomicBool) -> Option<Vec<Event>> {
        let first = loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            match self.rx.recv_timeout(STOP_CHECK) {
                Ok(e) => break e,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        };
        let deadline = Instant::now() + self.max_wait;
        let mut batch = Vec::with_capacity(self.max_events.min(4096));
        batch.push(first);
        while batch.len() < self.max_events {
            // Take what is already queued without waiting.
            match self.rx.try_recv() {
                Ok(e) => {
                    batch.push(e);
                    continue;
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline || stop.load(Ordering::Acquire) {
                break;
            }
            match self.rx.recv_timeout((deadline - now).min(STOP_CHECK)) {
                Ok(e) => batch.push(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn ev(offset: i64) -> Event {
        Event {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: None,
            headers: vec![],
        }
    }

    #[test]
    fn full_batches_then_a_partial_one_after_max_wait() {
        let (tx, rx) = channel();
        for o in 0..7 {
            tx.send(ev(o)).unwrap();
        }
        let b = Batcher::new(rx, 3, Duration::from_millis(30));
        let stop = AtomicBool::new(false);
        let sizes: Vec<usize> = (0..3).map(|_| b.next_batch(&stop).unwrap().len()).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        drop(tx);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn stop_ends_waiting() {
        let (_tx, rx) = channel::<Event>();
        let b = Batcher::new(rx, 3, Duration::from_millis(30));
        let stop = AtomicBool::new(true);
        assert!(b.next_batch(&stop).is_none());
    }
}

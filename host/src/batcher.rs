//! Groups a partition's events into batches: up to `max_events`, or whatever
//! arrived within `max_wait` of the batch's first event.
//!
//! Guests are called once per batch, so the batch is what amortizes the cost
//! of crossing into WebAssembly; `max_wait` bounds the latency that buys on a
//! quiet partition.

use crate::runtime::bindings::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// How often a waiting batcher looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Collects batches from one partition's queue. The consumer hands events
/// over in chunks (one per read burst); a chunk may end up split across
/// batches.
pub struct Batcher {
    rx: Receiver<Vec<Event>>,
    /// The rest of the last chunk received.
    carry: VecDeque<Event>,
    max_events: usize,
    max_wait: Duration,
}

impl Batcher {
    /// A batcher reading `rx`.
    pub fn new(rx: Receiver<Vec<Event>>, max_events: usize, max_wait: Duration) -> Self {
        Self {
            rx,
            carry: VecDeque::new(),
            max_events,
            max_wait,
        }
    }

    /// Moves carried events into `batch`, up to `max_events`.
    fn take_carry(&mut self, batch: &mut Vec<Event>) {
        let n = (self.max_events - batch.len()).min(self.carry.len());
        batch.extend(self.carry.drain(..n));
    }

    /// Adds a received chunk: what fits goes into `batch`, the rest is
    /// carried to the next batch.
    fn take(&mut self, chunk: Vec<Event>, batch: &mut Vec<Event>) {
        self.carry.extend(chunk);
        self.take_carry(batch);
    }

    /// Waits for the next batch. Returns `None` once `stop` is set or the
    /// queue is closed and empty; events still queued then are abandoned —
    /// they were never handed to a guest, so they are not committed and will
    /// be read again by whoever owns the partition next.
    pub fn next_batch(&mut self, stop: &AtomicBool) -> Option<Vec<Event>> {
        let mut batch = Vec::with_capacity(self.max_events.min(4096));
        self.take_carry(&mut batch);
        while batch.is_empty() {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            match self.rx.recv_timeout(STOP_CHECK) {
                Ok(chunk) => self.take(chunk, &mut batch),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
        if stop.load(Ordering::Acquire) {
            return None;
        }
        let deadline = Instant::now() + self.max_wait;
        while batch.len() < self.max_events {
            // Take what is already queued without waiting.
            match self.rx.try_recv() {
                Ok(chunk) => {
                    self.take(chunk, &mut batch);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline || stop.load(Ordering::Acquire) {
                break;
            }
            match self.rx.recv_timeout((deadline - now).min(STOP_CHECK)) {
                Ok(chunk) => self.take(chunk, &mut batch),
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
        // Chunks of 2, 4 and 1 events: batches of 3 split them.
        tx.send((0..2).map(ev).collect()).unwrap();
        tx.send((2..6).map(ev).collect()).unwrap();
        tx.send(vec![ev(6)]).unwrap();
        let mut b = Batcher::new(rx, 3, Duration::from_millis(30));
        let stop = AtomicBool::new(false);
        let batches: Vec<Vec<i64>> = (0..3)
            .map(|_| {
                let batch = b.next_batch(&stop).unwrap();
                batch.iter().map(|e| e.offset).collect()
            })
            .collect();
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        drop(tx);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn stop_ends_waiting() {
        let (_tx, rx) = channel::<Vec<Event>>();
        let mut b = Batcher::new(rx, 3, Duration::from_millis(30));
        let stop = AtomicBool::new(true);
        assert!(b.next_batch(&stop).is_none());
    }
}

//! Groups a partition's events into batches: up to `max_events` and
//! `max_bytes`, or whatever arrived within `max_wait` of the batch's first
//! event.
//!
//! Guests are called once per batch, so the batch is what amortizes the cost
//! of crossing into WebAssembly; `max_wait` bounds the latency that buys on a
//! quiet partition.

use crate::config::BatchConfig;
use crate::contract::{event_bytes, Event};
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
    max_bytes: usize,
    max_wait: Duration,
}

/// A batch being filled.
struct Filling {
    events: Vec<Event>,
    bytes: usize,
    /// The next event would not fit: hand the batch on now.
    full: bool,
}

impl Batcher {
    /// A batcher reading `rx`, with the limits of `batch`.
    pub fn new(rx: Receiver<Vec<Event>>, batch: &BatchConfig) -> Self {
        Self {
            rx,
            carry: VecDeque::new(),
            max_events: batch.max_events,
            max_bytes: batch.max_bytes,
            max_wait: Duration::from_millis(batch.max_wait_ms),
        }
    }

    /// Moves carried events into `batch` while they fit.
    fn take_carry(&mut self, batch: &mut Filling) {
        while !batch.full {
            let Some(size) = self.carry.front().map(event_bytes) else {
                return;
            };
            if !batch.events.is_empty() && batch.bytes + size > self.max_bytes {
                batch.full = true;
                return;
            }
            if let Some(e) = self.carry.pop_front() {
                batch.bytes += size;
                batch.events.push(e);
            }
            batch.full = batch.events.len() >= self.max_events;
        }
    }

    /// Adds a received chunk: what fits goes into `batch`, the rest is
    /// carried to the next batch.
    fn take(&mut self, chunk: Vec<Event>, batch: &mut Filling) {
        self.carry.extend(chunk);
        self.take_carry(batch);
    }

    /// Waits for the next batch. Returns `None` once `stop` is set or the
    /// queue is closed and empty; events still queued then are abandoned —
    /// they were never handed to a guest, so they are not committed and will
    /// be read again by whoever owns the partition next. With the batch come
    /// its bytes, as [`event_bytes`] counts them.
    pub fn next_batch(&mut self, stop: &AtomicBool) -> Option<(Vec<Event>, usize)> {
        let mut batch = Filling {
            events: Vec::with_capacity(self.max_events.min(4096)),
            bytes: 0,
            full: false,
        };
        self.take_carry(&mut batch);
        while batch.events.is_empty() {
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
        while !batch.full {
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
        Some((batch.events, batch.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn ev(offset: i64) -> Event {
        sized(offset, 0)
    }

    fn sized(offset: i64, bytes: usize) -> Event {
        Event {
            offset,
            timestamp: None,
            key: None,
            value: Some(vec![b'x'; bytes]),
            headers: vec![],
        }
    }

    fn limits(max_events: usize, max_bytes: usize) -> BatchConfig {
        BatchConfig {
            max_events,
            max_wait_ms: 30,
            max_bytes,
        }
    }

    fn offsets(batch: Vec<Event>) -> Vec<i64> {
        batch.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn full_batches_then_a_partial_one_after_max_wait() {
        let (tx, rx) = channel();
        // Chunks of 2, 4 and 1 events: batches of 3 split them.
        tx.send((0..2).map(ev).collect()).unwrap();
        tx.send((2..6).map(ev).collect()).unwrap();
        tx.send(vec![ev(6)]).unwrap();
        let mut b = Batcher::new(rx, &limits(3, 1 << 20));
        let stop = AtomicBool::new(false);
        let batches: Vec<Vec<i64>> = (0..3)
            .map(|_| offsets(b.next_batch(&stop).unwrap().0))
            .collect();
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        drop(tx);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn stop_ends_waiting() {
        let (_tx, rx) = channel::<Vec<Event>>();
        let mut b = Batcher::new(rx, &limits(3, 1 << 20));
        let stop = AtomicBool::new(true);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn bytes_close_a_batch_before_max_events() {
        let (tx, rx) = channel();
        // 400-byte values under a 1000-byte bound: two per batch. An event
        // larger than the bound still goes, alone.
        tx.send((0..5).map(|o| sized(o, 400)).collect()).unwrap();
        tx.send(vec![sized(5, 5000), sized(6, 10)]).unwrap();
        let mut b = Batcher::new(rx, &limits(100, 1000));
        let stop = AtomicBool::new(false);
        let batches: Vec<Vec<i64>> = (0..5)
            .map(|_| offsets(b.next_batch(&stop).unwrap().0))
            .collect();
        assert_eq!(
            batches,
            vec![vec![0, 1], vec![2, 3], vec![4], vec![5], vec![6]]
        );
    }

    #[test]
    fn headers_and_keys_count_as_bytes() {
        let e = Event {
            key: Some(vec![0; 3]),
            headers: vec![crate::contract::Header {
                name: "ab".into(),
                value: vec![0; 5],
            }],
            ..sized(0, 10)
        };
        assert_eq!(event_bytes(&e), 20);
    }
}

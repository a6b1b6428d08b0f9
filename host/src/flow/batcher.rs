//! Groups a partition's events into batches: up to `max_events` and
//! `max_bytes`, or whatever arrived within `max_wait` of the batch's first
//! event.
//!
//! Guests are called once per batch, so the batch is what amortizes the cost
//! of crossing into WebAssembly; `max_wait` bounds the latency that buys on a
//! quiet partition.

use crate::config::BatchConfig;
use crate::contract::Batch;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a waiting batcher looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Collects batches from one partition's queue. The consumer hands events
/// over in chunks of at most one batch; a chunk that fits is taken whole
/// (moved, not copied), and one that does not is split across batches.
pub struct Batcher {
    rx: Receiver<Batch>,
    /// The rest of the last chunk received.
    carry: Option<Batch>,
    max_events: usize,
    max_bytes: usize,
    max_wait: Duration,
}

/// A batch being filled.
struct Filling {
    batch: Batch,
    /// The next event would not fit: hand the batch on now.
    full: bool,
}

impl Batcher {
    /// A batcher reading `rx`, with the limits of `batch`.
    pub fn new(rx: Receiver<Batch>, batch: &BatchConfig) -> Self {
        Self {
            rx,
            carry: None,
            max_events: batch.max_events,
            max_bytes: batch.max_bytes,
            max_wait: Duration::from_millis(batch.max_wait_ms),
        }
    }

    /// Adds a chunk: what fits goes into `filling`, the rest is carried to
    /// the next batch.
    fn take(&mut self, mut chunk: Batch, filling: &mut Filling) {
        let b = &mut filling.batch;
        // How many of the chunk's events fit; an event larger than
        // `max_bytes` still goes, alone.
        let (mut fit, mut bytes) = (0, b.bytes());
        while fit < chunk.len() && b.len() + fit < self.max_events {
            let size = chunk.event_bytes(fit);
            if (b.len() + fit) > 0 && bytes + size > self.max_bytes {
                break;
            }
            bytes += size;
            fit += 1;
        }
        if fit < chunk.len() {
            self.carry = Some(chunk.split_off(fit));
            filling.full = true;
        }
        if b.is_empty() {
            *b = chunk;
        } else if b.append(&chunk).is_err() {
            // Past the 32-bit positions of a guest's batch: this chunk
            // starts the next one.
            let mut rest = chunk;
            if let Some(carried) = self.carry.take() {
                // Cannot overflow: `rest` and `carried` were one chunk.
                let _ = rest.append(&carried);
            }
            self.carry = Some(rest);
            filling.full = true;
            return;
        }
        filling.full |= b.len() >= self.max_events;
    }

    /// Waits for the next batch. Returns `None` once `stop` is set or the
    /// queue is closed and empty; events still queued then are abandoned —
    /// they were never handed to a guest, so they are not committed and will
    /// be read again by whoever owns the partition next.
    #[cfg(test)]
    pub fn next_batch(&mut self, stop: &AtomicBool) -> Option<Batch> {
        match self.next_batch_or(stop, &crossbeam_channel::never::<()>(), None) {
            Next::Batch(b) => Some(b),
            Next::Woken(()) | Next::Due | Next::Closed => None,
        }
    }

    /// Like [`Self::next_batch`], but while no event has arrived it also
    /// returns what arrives on `wake` (a sink call that finished), or
    /// [`Next::Due`] once `until` has passed (a retry or a sink's batch is
    /// due), so that the worker never sleeps on a quiet partition with work
    /// to finish. Once a batch has begun, it is filled as before.
    pub fn next_batch_or<T>(
        &mut self,
        stop: &AtomicBool,
        wake: &Receiver<T>,
        until: Option<Instant>,
    ) -> Next<T> {
        let mut filling = Filling {
            batch: Batch::default(),
            full: false,
        };
        if let Some(carry) = self.carry.take() {
            self.take(carry, &mut filling);
        }
        while filling.batch.is_empty() {
            if stop.load(Ordering::Acquire) {
                return Next::Closed;
            }
            let now = Instant::now();
            let timeout = match until {
                Some(u) if u <= now => Duration::ZERO,
                Some(u) => (u - now).min(STOP_CHECK),
                None => STOP_CHECK,
            };
            crossbeam_channel::select! {
                recv(self.rx) -> chunk => match chunk {
                    Ok(chunk) => self.take(chunk, &mut filling),
                    Err(_) => return Next::Closed,
                },
                recv(wake) -> woken => {
                    if let Ok(w) = woken {
                        return Next::Woken(w);
                    }
                }
                default(timeout) => {
                    if until.is_some_and(|u| u <= Instant::now()) {
                        return Next::Due;
                    }
                }
            }
        }
        if stop.load(Ordering::Acquire) {
            return Next::Closed;
        }
        let deadline = Instant::now() + self.max_wait;
        while !filling.full {
            // Take what is already queued without waiting.
            match self.rx.try_recv() {
                Ok(chunk) => {
                    self.take(chunk, &mut filling);
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
                Ok(chunk) => self.take(chunk, &mut filling),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Next::Batch(filling.batch)
    }
}

/// What ended a worker's wait for its next batch.
// The batch is moved once per batch; boxing it would allocate as often.
#[allow(clippy::large_enum_variant)]
pub enum Next<T> {
    /// A batch.
    Batch(Batch),
    /// Something arrived on the wake channel first.
    Woken(T),
    /// The wait's deadline passed first.
    Due,
    /// Stopped, or the queue is closed and empty.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{event_bytes, Event};
    use crossbeam_channel::unbounded as channel;

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

    fn offsets(batch: Batch) -> Vec<i64> {
        batch.offsets().to_vec()
    }

    fn chunk(events: impl IntoIterator<Item = Event>) -> Batch {
        Batch::from_events(&events.into_iter().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn full_batches_then_a_partial_one_after_max_wait() {
        let (tx, rx) = channel();
        // Chunks of 2, 4 and 1 events: batches of 3 split them.
        tx.send(chunk((0..2).map(ev))).unwrap();
        tx.send(chunk((2..6).map(ev))).unwrap();
        tx.send(chunk([ev(6)])).unwrap();
        let mut b = Batcher::new(rx, &limits(3, 1 << 20));
        let stop = AtomicBool::new(false);
        let batches: Vec<Vec<i64>> = (0..3)
            .map(|_| offsets(b.next_batch(&stop).unwrap()))
            .collect();
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        drop(tx);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn stop_ends_waiting() {
        let (_tx, rx) = channel::<Batch>();
        let mut b = Batcher::new(rx, &limits(3, 1 << 20));
        let stop = AtomicBool::new(true);
        assert!(b.next_batch(&stop).is_none());
    }

    #[test]
    fn bytes_close_a_batch_before_max_events() {
        let (tx, rx) = channel();
        // 400-byte values under a 1000-byte bound: two per batch. An event
        // larger than the bound still goes, alone.
        tx.send(chunk((0..5).map(|o| sized(o, 400)))).unwrap();
        tx.send(chunk([sized(5, 5000), sized(6, 10)])).unwrap();
        let mut b = Batcher::new(rx, &limits(100, 1000));
        let stop = AtomicBool::new(false);
        let batches: Vec<Vec<i64>> = (0..5)
            .map(|_| offsets(b.next_batch(&stop).unwrap()))
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

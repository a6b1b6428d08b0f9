//! The partitions this member works on: one handle per partition whose
//! worker is running, keyed by topic and partition, and the drain that
//! stops workers and collects what they finalized.

use super::handoff::PartitionShared;
use crate::contract::Batch;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A partition this member is working on.
pub struct PartitionHandle {
    pub tx: Sender<Batch>,
    /// Events read and not yet handed to the worker, already in the form
    /// the guests take. If the partition is revoked first they are dropped
    /// with the handle: never handed over, so never committed, so read
    /// again by the next owner. The worker's queue counters are raised once
    /// per chunk, not once per event: the worker lowers them from another
    /// core, and an atomic add per event made their cache line bounce
    /// between the two.
    pub pending: Batch,
    pub shared: Arc<PartitionShared>,
    pub thread: std::thread::JoinHandle<()>,
    /// Paused by flumen: its messages are held back on the partition's own
    /// librdkafka queue (see `FetchQueue::hold`).
    pub paused: bool,
    /// Paused in librdkafka as well, which stops fetching and drops what it
    /// held: the held messages reached the partition's queue bounds.
    pub fetch_stopped: bool,
    /// Last offset read for the worker; guards against re-reads.
    pub last_offset: i64,
    /// A record could not be queued (see `PipelineConsumer::queue`): nothing
    /// after it is queued either, so nothing past it is committed.
    pub stuck: bool,
}

impl PartitionHandle {
    /// Hands the pending events to the worker, in order, as one chunk.
    pub fn flush(&mut self, topic: &str, partition: i32) {
        if self.pending.is_empty() {
            return;
        }
        let next = Batch::sized_like(&self.pending);
        let chunk = std::mem::replace(&mut self.pending, next);
        // Counted before the send, so the worker never lowers a counter
        // below zero.
        self.shared.queued.fetch_add(chunk.len(), Ordering::AcqRel);
        self.shared
            .queued_bytes
            .fetch_add(chunk.bytes(), Ordering::AcqRel);
        if self.tx.send(chunk).is_err() {
            tracing::error!(%topic, partition,
                "partition worker has stopped; events of this partition are not processed \
                 or committed until it is reassigned or flumen restarts");
        }
    }
}

/// Looked up once per message, so keyed with rustc's Fx hash rather than
/// SipHash: the keys are the broker's topic names and partition numbers of
/// this member's own assignment, not input an attacker chooses freely, and
/// SipHash of the key was a visible share of the consumer thread's time.
pub type Partitions = HashMap<(String, i32), PartitionHandle, rustc_hash::FxBuildHasher>;

/// Locks one of the consumer's mutexes.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker never holds these locks, so poisoning can only come from a
    // panic on the consumer thread itself; the data is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tells the workers of `handles` to start nothing new and wind down.
pub fn stop(handles: &[((String, i32), PartitionHandle)]) {
    for (_, h) in handles {
        h.shared.stop.store(true, Ordering::Release);
    }
}

/// Stops the given workers, waits up to `timeout` for their in-flight
/// batches, and returns what each has finalized: `(topic, partition, offset)`.
pub fn drain(
    handles: Vec<((String, i32), PartitionHandle)>,
    timeout: Duration,
) -> Vec<(String, i32, i64)> {
    let deadline = Instant::now() + timeout;
    stop(&handles);
    let mut offsets = Vec::new();
    for ((topic, partition), h) in handles {
        drop(h.tx);
        while !h.shared.done.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.shared.done.load(Ordering::Acquire) {
            let _ = h.thread.join();
        } else {
            tracing::warn!(%topic, partition, "in-flight batch did not finish within the drain \
                timeout; committing what is finalized, the rest will be redelivered");
        }
        if let Some(c) = h.shared.committable() {
            offsets.push((topic, partition, c));
        }
    }
    offsets
}

//! What the consumer thread and a partition's worker share: the queue the
//! consumer fills and the worker drains, the counters the consumer pauses
//! the partition by, the stop flag, and the committable offset the worker
//! publishes. Only the holder of the partition's [`Publisher`] (its
//! finalizer) can write that offset. The consumer starts workers through
//! [`PartitionWorkers`], so it knows nothing of what a worker does with the
//! events.

use crate::contract::Batch;
use crossbeam_channel::Receiver;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// State a partition worker shares with the consumer thread.
#[derive(Debug)]
pub struct PartitionShared {
    /// Set by the consumer: start no new batch, abandon retries.
    pub stop: AtomicBool,
    /// Set by the worker when it has exited.
    pub done: AtomicBool,
    /// Events queued for the worker and not yet batched (for pausing).
    pub queued: AtomicUsize,
    /// Their bytes, as [`crate::contract::event_bytes`] counts them (for
    /// pausing).
    pub queued_bytes: AtomicUsize,
    /// Offset to commit, or -1 if nothing is finalized yet; written only
    /// through the partition's [`Publisher`].
    committable: AtomicI64,
    /// Set by the worker while it works on a batch. The consumer then lets
    /// the partition's pending events grow to a whole batch instead of
    /// handing over each read burst: the worker could not take them sooner,
    /// and a chunk that is a whole batch becomes the next batch as it is,
    /// where smaller chunks are copied together into one.
    pub busy: AtomicBool,
}

impl PartitionShared {
    /// Nothing queued, nothing committable. Private: shared state comes
    /// with its one [`Publisher`].
    fn new() -> Self {
        Self {
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            committable: AtomicI64::new(-1),
            busy: AtomicBool::new(false),
        }
    }

    /// The committable offset, if any.
    pub fn committable(&self) -> Option<i64> {
        let c = self.committable.load(Ordering::Acquire);
        (c >= 0).then_some(c)
    }
}

/// The one right to publish a partition's committable offset, made together
/// with the partition's shared state and handed to the worker's finalizer.
/// It is not `Clone`: whoever holds it is the only writer of the offset the
/// consumer commits.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<PartitionShared>,
}

impl Publisher {
    /// A partition's shared state (nothing queued, nothing committable)
    /// and the right to publish its committable offset.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(PartitionShared::new()),
        }
    }

    /// The state this publishes to.
    pub fn shared(&self) -> &Arc<PartitionShared> {
        &self.shared
    }

    /// Publishes `offset` as the partition's committable offset.
    pub fn publish(&self, offset: i64) {
        self.shared.committable.store(offset, Ordering::Release);
    }
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}

/// A started partition worker, as the consumer holds it.
pub struct WorkerHandle {
    /// What it shares with the consumer.
    pub shared: Arc<PartitionShared>,
    /// Its thread, joined when the partition is drained.
    pub thread: JoinHandle<()>,
}

/// Starts the worker of a partition this member has begun to read.
pub trait PartitionWorkers: Send {
    /// Starts the worker for `topic`/`partition`, which receives the
    /// partition's events, in offset order and in chunks of at most one
    /// batch each, through `events`.
    fn start(
        &self,
        topic: &str,
        partition: i32,
        events: Receiver<Batch>,
    ) -> std::io::Result<WorkerHandle>;
}

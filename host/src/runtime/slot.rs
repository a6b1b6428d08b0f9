//! Where a component's current version lives, so that a hot reload reaches
//! every partition's guest.

use super::loaded::Loaded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the current version of a component lives. The partitions' guests
/// share it; a hot reload publishes a new version into it and each guest
/// switches at its next batch boundary (see [`Guest::refresh`](super::Guest::refresh)).
pub struct Slot<P> {
    version: AtomicU64,
    current: Mutex<Loaded<P>>,
}

impl<P: Clone> Slot<P> {
    /// A slot holding version 1.
    pub fn new(loaded: Loaded<P>) -> Arc<Self> {
        Arc::new(Self {
            version: AtomicU64::new(1),
            current: Mutex::new(loaded),
        })
    }

    /// The current version number; cheap enough to read for every batch.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current version and its component.
    pub fn current(&self) -> (u64, Loaded<P>) {
        // The lock is held only to clone or swap, so poisoning cannot leave
        // a half-written value behind.
        let loaded = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (self.version(), loaded.clone())
    }

    /// Makes `loaded` the current version; returns its number.
    pub fn publish(&self, loaded: Loaded<P>) -> u64 {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = loaded;
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }
}

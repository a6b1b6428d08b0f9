//! Key order (`ordering = "key"`): which keys have an event at the sink or
//! waiting for a retry, so that no later event with the same key overtakes
//! it.

use rustc_hash::FxHashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Per key (by hash), how many of its events are in flight or waiting for
/// a retry.
#[derive(Default)]
pub struct KeyHolds {
    held: FxHashMap<u64, u32>,
    /// Hashes keys with a per-process random seed: keys are input, and a
    /// chosen collision could only serialize events, never reorder them.
    hasher: RandomState,
}

impl KeyHolds {
    /// The hash keys are held by.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether an event with key hash `h` is owed and not settled.
    pub fn is_held(&self, h: u64) -> bool {
        self.held.get(&h).is_some_and(|&n| n > 0)
    }

    /// One more event with key hash `h` goes to the sink.
    pub fn hold(&mut self, h: u64) {
        *self.held.entry(h).or_default() += 1;
    }

    /// An event with `key` is settled: its hold ends.
    pub fn release(&mut self, key: &[u8]) {
        let h = self.hash(key);
        if let Some(n) = self.held.get_mut(&h) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_until_each_of_its_events_is_released() {
        let mut k = KeyHolds::default();
        let h = k.hash(b"a");
        assert!(!k.is_held(h));
        k.hold(h);
        k.hold(h);
        k.release(b"a");
        assert!(k.is_held(h));
        k.release(b"a");
        assert!(!k.is_held(h));
        // A release without a hold (a key not held) changes nothing.
        k.release(b"b");
        assert!(!k.is_held(k.hash(b"b")));
    }
}

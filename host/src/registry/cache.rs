//! The bounded schema cache, with at most one fetch of a schema in flight.
//!
//! Every partition worker of every pipeline may ask for the same schema at
//! the same moment (a new schema id reaches all partitions of a topic at
//! once). Each key has its own fetch lock: the first asker fetches, the
//! others wait for it and then find the schema cached, so the registry
//! sees one request, not one per partition.

use super::{FetchError, Schema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a schema is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Its numeric id.
    Id(u32),
    /// Its GUID, 32 lowercase hex digits.
    Guid(String),
    /// A subject's pinned version.
    Subject(String, i32),
}

/// Schemas by key, at most `capacity` of them, the least recently used
/// going first.
pub struct Cache {
    capacity: usize,
    entries: Mutex<Entries>,
    /// One lock per key being fetched.
    fetching: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Key, (Arc<Schema>, u64)>,
    /// Ticks on every use: an entry's tick says how recently it was used.
    clock: u64,
}

/// Locks `m`, ignoring poisoning: the data under these locks is a plain
/// map, left consistent by every operation, so a panic elsewhere does not
/// make it wrong.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    /// An empty cache holding up to `capacity` schemas.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    fn lookup(&self, key: &Key) -> Option<Arc<Schema>> {
        let mut e = lock(&self.entries);
        e.clock += 1;
        let now = e.clock;
        let (schema, used) = e.by_key.get_mut(key)?;
        *used = now;
        Some(schema.clone())
    }

    /// Keeps `schema` under `key` too (a schema fetched by id under its
    /// GUID, and the other way round).
    pub fn insert(&self, key: Key, schema: Arc<Schema>) {
        let mut e = lock(&self.entries);
        e.clock += 1;
        let now = e.clock;
        if e.by_key.len() >= self.capacity && !e.by_key.contains_key(&key) {
            // A linear scan: evictions are rare (a topic uses a handful of
            // schemas) and the map is small.
            if let Some(oldest) = e
                .by_key
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                e.by_key.remove(&oldest);
            }
        }
        e.by_key.insert(key, (schema, now));
    }

    /// The schema under `key`, fetched with `fetch` if it is not cached.
    /// Errors are not cached: a registry that was down is asked again.
    pub fn get_or_fetch(
        &self,
        key: Key,
        fetch: impl FnOnce() -> Result<Schema, FetchError>,
    ) -> Result<Arc<Schema>, FetchError> {
        if let Some(s) = self.lookup(&key) {
            return Ok(s);
        }
        let key_lock = lock(&self.fetching).entry(key.clone()).or_default().clone();
        let fetched = {
            let _only_fetcher = lock(&key_lock);
            // Whoever held the lock before may have fetched it.
            match self.lookup(&key) {
                Some(s) => Ok(s),
                None => {
                    let fetched = fetch().map(Arc::new);
                    if let Ok(schema) = &fetched {
                        self.insert(key.clone(), schema.clone());
                    }
                    fetched
                }
            }
        };
        drop(key_lock);
        let mut fetching = lock(&self.fetching);
        // Forget the key's lock once nobody else holds or waits on it.
        if fetching
            .get(&key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            fetching.remove(&key);
        }
        fetched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Format;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn schema(id: u32) -> Schema {
        Schema {
            id: Some(id),
            guid: None,
            subject: None,
            format: Format::Avro,
            text: "\"string\"".into(),
            references: Vec::new(),
        }
    }

    #[test]
    fn concurrent_askers_share_one_fetch() {
        let cache = Arc::new(Cache::new(10));
        let fetches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_fetch(Key::Id(7), || {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(schema(7))
                        })
                        .map(|s| s.id)
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), Some(7));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_are_not_kept_and_the_least_recently_used_goes_first() {
        let cache = Cache::new(2);
        let e = cache.get_or_fetch(Key::Id(1), || Err(FetchError::Unavailable("down".into())));
        assert!(e.is_err());
        assert_eq!(
            cache.get_or_fetch(Key::Id(1), || Ok(schema(1))).unwrap().id,
            Some(1)
        );
        cache.get_or_fetch(Key::Id(2), || Ok(schema(2))).unwrap();
        cache.get_or_fetch(Key::Id(1), || unreachable!()).unwrap();
        cache.get_or_fetch(Key::Id(3), || Ok(schema(3))).unwrap();
        // 2 was the least recently used, so it went.
        let refetched = AtomicUsize::new(0);
        cache
            .get_or_fetch(Key::Id(2), || {
                refetched.fetch_add(1, Ordering::SeqCst);
                Ok(schema(2))
            })
            .unwrap();
        assert_eq!(refetched.load(Ordering::SeqCst), 1);
        assert!(lock(&cache.fetching).is_empty());
    }
}

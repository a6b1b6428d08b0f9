//! Finding the partition whose next record cannot be decoded.
//!
//! When librdkafka cannot decompress or parse a record batch (a codec it
//! lacks, corrupt bytes), it reports an error and does not move that
//! partition's fetch position: the partition stops at the bad batch, which
//! is right (nothing after it is delivered, so nothing is committed past
//! it), but rdkafka's error carries neither topic nor partition, and the
//! other partitions go on, so the stop is easy to miss. A partition that
//! keeps its position below the broker's end while such errors repeat, and
//! that flumen has not paused itself, is the one: it is reported by topic,
//! partition and offset, and shown as unreadable until it moves again.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a partition must stay at one position, under repeated decode
/// errors, to be reported: longer than a paused or slow partition's pauses
/// between fetches, shorter than an operator's patience.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(3);

/// A partition, by topic and number.
pub type Key = (String, i32);

/// Whether `e` says a record could not be decoded, as opposed to a broker or
/// network fault, which librdkafka retries by itself.
pub fn is_undecodable(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BadMessage
                | RDKafkaErrorCode::BadCompression
                | RDKafkaErrorCode::NotImplemented
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::UnsupportedCompressionType
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// The partitions suspected since the last decode errors, with the
/// position each was at and since when.
#[derive(Default)]
pub struct Suspects {
    seen: HashMap<Key, (i64, Instant)>,
}

impl Suspects {
    /// Called on each decode error with every assigned partition's position
    /// (the next offset to read), the broker's end of each, and whether
    /// flumen paused it. Returns the partitions that have now stayed at one
    /// position short of the end for [`CONFIRM_AFTER`]: `(partition, offset)`.
    pub fn observe(
        &mut self,
        positions: &[(Key, i64)],
        ends: &BTreeMap<Key, i64>,
        paused: impl Fn(&Key) -> bool,
        now: Instant,
    ) -> Vec<(Key, i64)> {
        let mut confirmed = Vec::new();
        let mut still = HashMap::new();
        for (key, at) in positions {
            let behind = ends.get(key).is_some_and(|end| end > at);
            if !behind || paused(key) {
                continue;
            }
            let since = match self.seen.get(key) {
                Some((was, since)) if was == at => *since,
                _ => now,
            };
            if now.duration_since(since) >= CONFIRM_AFTER {
                confirmed.push((key.clone(), *at));
            }
            still.insert(key.clone(), (*at, since));
        }
        self.seen = still;
        confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> Key {
        ("t".to_owned(), p)
    }

    #[test]
    fn only_the_partition_that_stays_put_short_of_its_end_is_reported() {
        let mut s = Suspects::default();
        let ends = BTreeMap::from([(key(0), 500), (key(1), 500), (key(2), 300), (key(3), 500)]);
        let paused = |k: &Key| k.1 == 3;
        let t0 = Instant::now();
        // 0 is stuck at 100; 1 moves on; 2 is at its end; 3 is paused.
        let at = |p1: i64| [(key(0), 100), (key(1), p1), (key(2), 300), (key(3), 10)];
        assert!(s.observe(&at(100), &ends, paused, t0).is_empty());
        assert!(s
            .observe(&at(200), &ends, paused, t0 + Duration::from_secs(2))
            .is_empty());
        let found = s.observe(&at(300), &ends, paused, t0 + Duration::from_secs(4));
        assert_eq!(found, [(key(0), 100)]);
    }

    #[test]
    fn a_partition_that_moves_starts_over() {
        let mut s = Suspects::default();
        let ends = BTreeMap::from([(key(0), 500)]);
        let t0 = Instant::now();
        s.observe(&[(key(0), 100)], &ends, |_| false, t0);
        let later = t0 + Duration::from_secs(5);
        assert!(s
            .observe(&[(key(0), 101)], &ends, |_| false, later)
            .is_empty());
    }

    #[test]
    fn decode_errors_are_told_from_broker_faults() {
        let bad = KafkaError::MessageConsumption(RDKafkaErrorCode::BadCompression);
        assert!(is_undecodable(&bad));
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
        assert!(!is_undecodable(&down));
    }
}

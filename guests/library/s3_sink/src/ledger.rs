//! Exactly-once bookkeeping for one partition: which offsets are already in
//! stored objects, and where the next object may be cut.
//!
//! The rules, which `docs/sinks/s3.md` ("Exactly once") argues hold under
//! every interleaving of stalled, resumed, killed and late members:
//! 1. **Written once.** An object is created with `If-None-Match: *` under
//!    a key named by its first offset, and is never replaced or removed.
//!    Its last offset travels with it (`x-amz-meta-flumen-end-offset`).
//! 2. **Adopted, not rewritten.** A writer that finds an object where it
//!    was about to create one (its create is refused, or a listing showed
//!    it) treats the events it holds as delivered and goes on after its
//!    last offset. So any number of writers of one partition — a member
//!    that stalled and came back, the member that took its partitions
//!    over, a run after a crash — end up with one chain of disjoint
//!    objects, whoever cut them and however (by count, bytes or time).
//! 3. **Cells.** No object holds offsets of two cells (`[k·cell,
//!    (k+1)·cell)`). A committed offset can fall inside an adopted object
//!    (a writer's call ended before the object it adopted); that object
//!    then starts in the committed offset's own cell, so a starting writer
//!    finds it by listing from the cell's start, not the whole partition.
//!
//! Nothing here depends on when a member commits: every commit covers only
//! events in stored objects, and stored objects stay.

use crate::s3::S3Error;
use std::collections::BTreeMap;
use std::ops::Range;

/// What the ledger needs of the store, for one partition and one call's
/// events (`events` ranges index them).
pub trait Objects {
    /// The partition's objects whose first offset is `from` or later:
    /// `(first offset, key)`, in offset order.
    fn list(&mut self, from: i64) -> Result<Vec<(i64, String)>, S3Error>;
    /// The last offset the object `key` holds; `None` if it does not say
    /// (stored by a flumen before written-once objects).
    fn end_of(&mut self, key: &str) -> Result<Option<i64>, S3Error>;
    /// Creates the object of `events` unless an object already has its key.
    fn create(&mut self, events: Range<usize>) -> Result<Created, S3Error>;
    /// Removes `key`.
    fn remove(&mut self, key: &str) -> Result<(), S3Error>;
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The object is stored.
    Stored,
    /// An object with this key was there already; nothing was written.
    Exists(String),
}

/// An object known to start past what is covered.
#[derive(Debug, Clone)]
struct Ahead {
    key: String,
    /// Its last offset, once read.
    end: Option<i64>,
}

/// One partition's ledger, kept by an instance across its calls.
#[derive(Debug)]
pub struct Ledger {
    cell: i64,
    /// Whether the store has been read (at this instance's first call).
    read: bool,
    /// Every offset up to this one is in a stored object.
    covered: Option<i64>,
    /// Objects starting past `covered`, by first offset.
    ahead: BTreeMap<i64, Ahead>,
}

/// What one call came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The call's first this-many events are in stored objects.
    pub delivered: usize,
    /// Objects this call found already stored and adopted.
    pub adopted: usize,
    /// Objects without an end offset (an older flumen's) removed past the
    /// committed offset.
    pub removed: usize,
    /// Why the rest was not delivered.
    pub error: Option<S3Error>,
}

impl Ledger {
    /// An empty ledger; `cell` is the cell size in offsets (at least 1).
    pub fn new(cell: i64) -> Self {
        Ledger {
            cell: cell.max(1),
            read: false,
            covered: None,
            ahead: BTreeMap::new(),
        }
    }

    /// Stores the call's events (`offsets`, ascending) in objects of their
    /// own or finds them in objects already there.
    pub fn deliver(&mut self, objects: &mut impl Objects, offsets: &[i64]) -> Delivery {
        let mut d = Delivery::default();
        if let Err(e) = self.run(objects, offsets, &mut d) {
            d.error = Some(e);
        }
        d
    }

    fn run(
        &mut self,
        objects: &mut impl Objects,
        offsets: &[i64],
        d: &mut Delivery,
    ) -> Result<(), S3Error> {
        let Some(&first) = offsets.first() else {
            return Ok(());
        };
        if !self.read {
            self.read_store(objects, first)?;
            self.read = true;
        }
        let mut i = 0;
        while i < offsets.len() {
            let at = offsets[i];
            if self.covered.is_some_and(|c| at <= c) {
                i += 1;
                d.delivered = i;
                continue;
            }
            if let Some(found) = self.ahead.get(&at).cloned() {
                let end = match found.end {
                    Some(end) => Some(end),
                    None => objects.end_of(&found.key)?.filter(|&e| e >= at),
                };
                match end {
                    Some(end) => self.adopt(end, d),
                    None => {
                        // Stored by a flumen that cut objects differently
                        // and removed leftovers: past the committed offset,
                        // it is one of its uncommitted leftovers.
                        objects.remove(&found.key)?;
                        self.ahead.remove(&at);
                        d.removed += 1;
                    }
                }
                continue;
            }
            let cell_end = (at.div_euclid(self.cell) + 1).saturating_mul(self.cell);
            let limit = self
                .ahead
                .range(at + 1..)
                .next()
                .map_or(cell_end, |(&s, _)| s.min(cell_end));
            let j = i + offsets[i..].partition_point(|&o| o < limit);
            match objects.create(i..j)? {
                Created::Stored => {
                    self.covered = Some(offsets[j - 1]);
                    i = j;
                    d.delivered = i;
                }
                Created::Exists(key) => {
                    self.ahead.insert(at, Ahead { key, end: None });
                }
            }
        }
        Ok(())
    }

    /// Everything up to `end` is stored: an object found there is adopted.
    fn adopt(&mut self, end: i64, d: &mut Delivery) {
        d.adopted += 1;
        self.covered = Some(self.covered.map_or(end, |c| c.max(end)));
        self.ahead = self.ahead.split_off(&(end + 1));
    }

    /// Reads what the store holds from the start of `first`'s cell on: the
    /// object that holds `first`, if one does, and those after it.
    fn read_store(&mut self, objects: &mut impl Objects, first: i64) -> Result<(), S3Error> {
        let cell_start = first - first.rem_euclid(self.cell);
        let listed = objects.list(cell_start)?;
        let holding = listed.iter().rfind(|(s, _)| *s < first);
        if let Some((_, key)) = holding {
            if let Some(end) = objects.end_of(key)?.filter(|&e| e >= first) {
                self.covered = Some(end);
            }
        }
        for (start, key) in listed {
            if start >= first && self.covered.is_none_or(|c| start > c) {
                self.ahead.insert(start, Ahead { key, end: None });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket of one partition: objects by first offset, with their last
    /// offset (`None`: stored without it), and the calls made.
    #[derive(Default)]
    struct Bucket {
        objects: BTreeMap<i64, Option<i64>>,
        /// The offsets of the call being delivered.
        offsets: Vec<i64>,
        lists: usize,
        fail_create_at: Option<i64>,
    }

    impl Objects for Bucket {
        fn list(&mut self, from: i64) -> Result<Vec<(i64, String)>, S3Error> {
            self.lists += 1;
            Ok(self
                .objects
                .range(from..)
                .map(|(s, _)| (*s, format!("k{s}")))
                .collect())
        }
        fn end_of(&mut self, key: &str) -> Result<Option<i64>, S3Error> {
            let start: i64 = key[1..].parse().expect("key");
            self.objects
                .get(&start)
                .copied()
                .ok_or_else(|| S3Error::Retry("vanished".into()))
        }
        fn create(&mut self, events: Range<usize>) -> Result<Created, S3Error> {
            let first = self.offsets[events.start];
            let last = self.offsets[events.end - 1];
            if self.fail_create_at == Some(first) {
                return Err(S3Error::Retry("store down".into()));
            }
            if self.objects.contains_key(&first) {
                return Ok(Created::Exists(format!("k{first}")));
            }
            self.objects.insert(first, Some(last));
            Ok(Created::Stored)
        }
        fn remove(&mut self, key: &str) -> Result<(), S3Error> {
            self.objects.remove(&key[1..].parse().expect("key"));
            Ok(())
        }
    }

    impl Bucket {
        fn deliver(
            &mut self,
            ledger: &mut Ledger,
            offsets: std::ops::RangeInclusive<i64>,
        ) -> Delivery {
            self.offsets = offsets.collect();
            let offsets = self.offsets.clone();
            ledger.deliver(self, &offsets)
        }

        /// How many objects hold each offset, and whether any holds two cells.
        fn copies(&self, cell: i64) -> BTreeMap<i64, usize> {
            let mut n = BTreeMap::new();
            for (&s, e) in &self.objects {
                let e = e.expect("end");
                assert_eq!(s / cell, e / cell, "object {s}..={e} crosses a cell");
                for o in s..=e {
                    *n.entry(o).or_default() += 1;
                }
            }
            n
        }
    }

    fn delivered(n: usize) -> Delivery {
        Delivery {
            delivered: n,
            ..Delivery::default()
        }
    }

    #[test]
    fn cuts_at_cells_and_continues_without_listing_again() {
        let mut b = Bucket::default();
        let mut l = Ledger::new(100);
        assert_eq!(b.deliver(&mut l, 90..=119), delivered(30));
        assert_eq!(b.deliver(&mut l, 120..=130), delivered(11));
        assert_eq!(b.lists, 1);
        let objects: Vec<_> = b.objects.iter().map(|(s, e)| (*s, e.unwrap())).collect();
        assert_eq!(objects, [(90, 99), (100, 119), (120, 130)]);
    }

    /// A stalled member stored 0..=49 and 50..=79 (cut by time) and never
    /// committed; the new owner starts at 0 with calls cut otherwise.
    #[test]
    fn adopts_what_another_writer_cut_differently() {
        let mut b = Bucket::default();
        b.objects.insert(0, Some(49));
        b.objects.insert(50, Some(79));
        let mut l = Ledger::new(1000);
        let d = b.deliver(&mut l, 0..=59);
        assert_eq!((d.delivered, d.adopted), (60, 2));
        let d = b.deliver(&mut l, 60..=99);
        assert_eq!((d.delivered, d.adopted), (40, 0));
        assert!(b.copies(1000).values().all(|&n| n == 1));
        assert_eq!(b.objects.get(&80), Some(&Some(99)));
    }

    /// The zombie creates an object after the new owner listed: the new
    /// owner's create is refused, and it adopts what is there.
    #[test]
    fn a_refused_create_adopts_the_object_found() {
        let mut b = Bucket::default();
        let mut l = Ledger::new(1000);
        b.deliver(&mut l, 0..=9);
        b.objects.insert(10, Some(30));
        let d = b.deliver(&mut l, 10..=19);
        assert_eq!((d.delivered, d.adopted), (10, 1));
        let d = b.deliver(&mut l, 20..=40);
        assert_eq!((d.delivered, d.adopted), (21, 0));
        assert!(b.copies(1000).values().all(|&n| n == 1));
    }

    /// The committed offset 15 fell inside an adopted object 10..=30: a new
    /// instance starting there finds it from the cell's start.
    #[test]
    fn a_start_inside_an_object_finds_it() {
        let mut b = Bucket::default();
        b.objects.insert(0, Some(9));
        b.objects.insert(10, Some(30));
        let mut l = Ledger::new(1000);
        let d = b.deliver(&mut l, 15..=40);
        assert_eq!((d.delivered, d.adopted), (26, 0));
        assert!(b.copies(1000).values().all(|&n| n == 1));
        assert_eq!(b.objects.get(&31), Some(&Some(40)));
    }

    /// Later objects cut the call short: it stops before each and adopts it.
    #[test]
    fn stops_before_an_object_further_on() {
        let mut b = Bucket::default();
        b.objects.insert(20, Some(24));
        let mut l = Ledger::new(1000);
        let d = b.deliver(&mut l, 10..=29);
        assert_eq!((d.delivered, d.adopted), (20, 1));
        let objects: Vec<_> = b.objects.iter().map(|(s, e)| (*s, e.unwrap())).collect();
        assert_eq!(objects, [(10, 19), (20, 24), (25, 29)]);
    }

    #[test]
    fn a_failed_create_delivers_what_came_before_it() {
        let mut b = Bucket {
            fail_create_at: Some(100),
            ..Bucket::default()
        };
        let mut l = Ledger::new(100);
        let d = b.deliver(&mut l, 90..=110);
        assert_eq!(d.delivered, 10);
        assert!(matches!(d.error, Some(S3Error::Retry(_))));
        b.fail_create_at = None;
        assert_eq!(b.deliver(&mut l, 100..=110), delivered(11));
    }

    /// An older flumen's leftover (no end offset) past the start is removed
    /// and written again; one before the start is left alone.
    #[test]
    fn removes_leftovers_without_an_end_offset() {
        let mut b = Bucket::default();
        b.objects.insert(0, None);
        b.objects.insert(10, None);
        let mut l = Ledger::new(1000);
        let d = b.deliver(&mut l, 10..=19);
        assert_eq!((d.delivered, d.removed), (10, 1));
        assert_eq!(b.objects.get(&10), Some(&Some(19)));
        assert_eq!(b.objects.get(&0), Some(&None));
    }

    /// Any interleaving of two writers that start at committed offsets and
    /// cut their calls differently leaves every offset in one object.
    #[test]
    fn two_writers_interleaved_store_every_offset_once() {
        for seed in 0..200u64 {
            let mut b = Bucket::default();
            let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut next = |n: u64| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 33) % n
            };
            // Each writer: its ledger and where its next call starts.
            let mut writers = [(Ledger::new(64), 0i64), (Ledger::new(64), 0i64)];
            let mut committed = 0i64;
            for _ in 0..60 {
                let w = next(2) as usize;
                if next(6) == 0 {
                    // This writer restarts at the committed offset.
                    writers[w] = (Ledger::new(64), committed);
                }
                let (ledger, at) = &mut writers[w];
                let len = 1 + next(40) as i64;
                let d = b.deliver(ledger, *at..=*at + len - 1);
                *at += d.delivered as i64;
                if next(2) == 0 {
                    // A commit, perhaps late and behind another one.
                    committed = *at;
                }
            }
            let end = writers.iter().map(|(_, a)| *a).max().unwrap_or(0);
            let copies = b.copies(64);
            for o in 0..end {
                assert_eq!(copies.get(&o), Some(&1), "seed {seed}: offset {o}");
            }
        }
    }
}

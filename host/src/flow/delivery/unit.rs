//! Sets of events a sink owes, and the batches made of them.
//!
//! A routed batch is shared by every sink it goes to, so what one sink owes
//! is a view: the batch, and which of its events. Views are copied into a
//! batch of their own only when a call needs exactly those events.

use crate::contract::Batch;
use crate::flow::failure::Tries;
use std::sync::Arc;
use std::time::Instant;

/// Events a sink owes, in offset order: some or all of one batch.
pub struct Unit {
    pub batch: Arc<Batch>,
    /// Indices into `batch`; `None` is all of it.
    pub idx: Option<Vec<usize>>,
    /// Tries so far per event; `None` is none yet.
    pub tries: Option<Vec<Tries>>,
    /// Bytes of its events, as the batch counts them.
    pub bytes: usize,
    /// When it reached the sink's queue (for the batching wait).
    pub since: Instant,
}

impl Unit {
    /// The events of `batch` at `idx` (`None`: all of them), not tried yet.
    pub fn new(batch: &Arc<Batch>, idx: Option<Vec<usize>>, now: Instant) -> Self {
        Unit {
            bytes: match &idx {
                None => batch.bytes(),
                Some(idx) => idx.iter().map(|&i| batch.event_bytes(i)).sum(),
            },
            batch: batch.clone(),
            idx,
            tries: None,
            since: now,
        }
    }

    /// The events of `batch` at `retried` (positions with their tries so
    /// far), to be offered again from `now`.
    pub fn retried(batch: &Arc<Batch>, retried: &[(usize, Tries)], now: Instant) -> Self {
        let idx: Vec<usize> = retried.iter().map(|&(j, _)| j).collect();
        Unit {
            tries: Some(retried.iter().map(|&(_, t)| t).collect()),
            ..Unit::new(batch, Some(idx), now)
        }
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.idx.as_ref().map_or(self.batch.len(), Vec::len)
    }

    /// The batch index of its `k`-th event.
    pub fn at(&self, k: usize) -> usize {
        self.idx.as_ref().map_or(k, |idx| idx[k])
    }

    /// How its `k`-th event has fared so far.
    pub fn tries(&self, k: usize) -> Tries {
        self.tries.as_ref().map_or(Tries::default(), |t| t[k])
    }

    /// Its events at positions `ks` (in order), as a unit of their own.
    pub fn part(&self, ks: &[usize]) -> Unit {
        let idx: Vec<usize> = ks.iter().map(|&k| self.at(k)).collect();
        Unit {
            bytes: idx.iter().map(|&i| self.batch.event_bytes(i)).sum(),
            tries: self
                .tries
                .as_ref()
                .map(|t| ks.iter().map(|&k| t[k]).collect()),
            batch: self.batch.clone(),
            idx: Some(idx),
            since: self.since,
        }
    }

    /// Its events except those at positions `picked` (in order).
    pub fn without(&self, picked: &[usize]) -> Unit {
        let mut left = Vec::with_capacity(self.len().saturating_sub(picked.len()));
        let mut p = picked.iter().peekable();
        for k in 0..self.len() {
            if p.peek() == Some(&&k) {
                p.next();
            } else {
                left.push(k);
            }
        }
        self.part(&left)
    }

    /// Its events as a batch of exactly them: the batch itself when the
    /// unit is all of it, else a copy.
    pub fn to_batch(&self) -> Arc<Batch> {
        let Some(idx) = &self.idx else {
            return self.batch.clone();
        };
        if idx.len() == self.batch.len() {
            return self.batch.clone();
        }
        match self.batch.select(idx) {
            Ok(b) => Arc::new(b),
            // Cannot fail: a subset of a batch fits where the batch did.
            Err(_) => self.batch.clone(),
        }
    }

    /// `self` then `after` as one unit (both in offset order, `self`
    /// first).
    pub fn concat(self, after: Unit) -> Unit {
        let tries = (0..self.len())
            .map(|k| self.tries(k))
            .chain((0..after.len()).map(|k| after.tries(k)))
            .collect();
        let since = self.since;
        let batch = copy_events(&[self, after]);
        Unit {
            bytes: batch.bytes(),
            batch: Arc::new(batch),
            idx: None,
            tries: Some(tries),
            since,
        }
    }
}

/// The events of `units`, in order, copied into one batch.
pub fn copy_events(units: &[Unit]) -> Batch {
    let Some(first) = units.first() else {
        return Batch::default();
    };
    let mut batch = Batch::sized_like(&first.batch);
    for u in units {
        for k in 0..u.len() {
            // Cannot fail: a call holds at most a pipeline batch's or a sink
            // batch's events, both far below the limit.
            if batch.push_from(&u.batch, u.at(k)).is_err() {
                tracing::error!("a sink call outgrew a batch's positions");
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Event;

    /// Tried `n` times, every one a failed call.
    fn t(n: u32) -> Tries {
        Tries {
            count: n,
            failed_calls: n,
            retrying_since: None,
        }
    }

    fn batch(n: i64) -> Arc<Batch> {
        let events: Vec<Event> = (0..n)
            .map(|o| Event {
                offset: o,
                value: Some(vec![b'x'; 10]),
                ..Event::default()
            })
            .collect();
        Arc::new(Batch::from_events(&events).expect("small"))
    }

    #[test]
    fn parts_keep_tries_and_order() {
        let b = batch(5);
        let u = Unit::retried(&b, &[(1, t(2)), (3, t(1)), (4, t(5))], Instant::now());
        assert_eq!(u.len(), 3);
        let p = u.part(&[0, 2]);
        assert_eq!((p.at(0), p.at(1)), (1, 4));
        assert_eq!((p.tries(0), p.tries(1)), (t(2), t(5)));
        let rest = u.without(&[0, 2]);
        assert_eq!((rest.len(), rest.at(0), rest.tries(0)), (1, 3, t(1)));
        assert_eq!(p.to_batch().offsets(), &[1, 4]);
    }

    #[test]
    fn concat_copies_both_in_order() {
        let b = batch(4);
        let now = Instant::now();
        let a = Unit::retried(&b, &[(2, t(1))], now);
        let c = Unit::new(&b, Some(vec![0, 3]), now).part(&[1]);
        let joined = a.concat(c);
        assert_eq!(joined.to_batch().offsets(), &[2, 3]);
        assert_eq!((joined.tries(0), joined.tries(1)), (t(1), t(0)));
    }

    #[test]
    fn a_whole_batch_is_not_copied() {
        let b = batch(3);
        let u = Unit::new(&b, None, Instant::now());
        assert!(Arc::ptr_eq(&u.to_batch(), &b));
        assert_eq!(u.bytes, b.bytes());
    }
}

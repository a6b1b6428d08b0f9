//! What one sink still owes one partition and has not in flight: new
//! events in offset order, failed events waiting for their retry, and the
//! keys they hold. Calls are formed from here.
//!
//! A call is formed from the events that may go now:
//! - a retry that is due goes first: its events were offered before, and
//!   everything with which they must keep order waits behind them;
//! - under `ordering = "partition"` nothing new goes while a retry waits;
//! - under `"key"` an event goes only if no earlier event with its key is
//!   still owed (in flight, or waiting for a retry), or in the same call
//!   after it;
//! - under `"unordered"` anything goes.
//!
//! With sink-side batching, new events wait until a call's worth has
//! gathered or the first of them has waited `max_wait_ms`.

use super::keys::KeyHolds;
use super::settings::Settings;
use super::unit::{copy_events, Unit};
use crate::config::DeliveryOrdering;
use crate::contract::Batch;
use crate::flow::failure::Tries;
use crate::stats::SinkStats;
use rustc_hash::FxHashSet;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events to offer again once `due`.
struct Retry {
    unit: Unit,
    due: Instant,
    /// Offer them one at a time, to find the one that fails a whole call.
    isolate: bool,
}

/// A call formed: to start, in flight, or held back by the rate limit.
pub struct Call {
    /// Exactly the events offered, in order.
    pub batch: Arc<Batch>,
    /// Their tries before this call.
    pub tries: Vec<Tries>,
    /// When narrowing down: the events behind the one offered alone.
    pub rest: Option<Unit>,
    /// Whether it offers one event of a failing call on its own.
    pub isolate: bool,
    /// Whether it offers events offered before.
    pub retrying: bool,
}

/// What one sink owes one partition, outside its calls in flight.
pub struct Owed {
    settings: Settings,
    /// New events, in offset order.
    waiting: VecDeque<Unit>,
    waiting_events: usize,
    waiting_bytes: usize,
    retries: VecDeque<Retry>,
    /// Events in `retries`.
    retry_events: usize,
    /// Key order: keys with events in flight or waiting for a retry.
    keys: KeyHolds,
}

impl Owed {
    /// Nothing owed yet, under `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            waiting: VecDeque::new(),
            waiting_events: 0,
            waiting_bytes: 0,
            retries: VecDeque::new(),
            retry_events: 0,
            keys: KeyHolds::default(),
        }
    }

    /// The settings calls are formed by.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Takes on new events.
    pub fn owe(&mut self, unit: Unit) {
        if unit.len() == 0 {
            return;
        }
        self.waiting_events += unit.len();
        self.waiting_bytes += unit.bytes;
        self.waiting.push_back(unit);
    }

    /// Queues failed events to be offered again once `due`.
    pub fn retry(&mut self, unit: Unit, due: Instant, isolate: bool) {
        self.retry_events += unit.len();
        self.retries.push_back(Retry { unit, due, isolate });
    }

    /// Whether no failed events wait for a retry.
    pub fn no_retries(&self) -> bool {
        self.retries.is_empty()
    }

    /// Whether nothing is owed here.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.retries.is_empty()
    }

    /// Whether more new events may be taken on: fewer wait than a call's
    /// worth per call the window allows.
    pub fn has_room(&self) -> bool {
        let (g, calls) = (&self.settings.gather, self.settings.max_in_flight);
        self.waiting_events + self.retry_events < g.max_events.saturating_mul(calls)
            && self.waiting_bytes < g.max_bytes.saturating_mul(calls)
    }

    /// Whether failed events waiting for a retry already fill what the
    /// window may hold: then no new call starts, so that a destination
    /// that fails everything cannot make them pile up without bound (new
    /// calls would fail too, and the commit could not pass them anyway).
    fn retries_full(&self) -> bool {
        let (g, calls) = (&self.settings.gather, self.settings.max_in_flight);
        self.retry_events >= g.max_events.saturating_mul(calls)
    }

    /// When a retry falls due or a batching wait ends.
    pub fn next_due(&self) -> Option<Instant> {
        let retry = self.retries.iter().map(|r| r.due).min();
        let gathered = match (self.settings.gather.max_wait, self.waiting.front()) {
            (Some(wait), Some(u)) => Some(u.since + wait),
            _ => None,
        };
        retry.into_iter().chain(gathered).min()
    }

    /// Key order: event `j` of `batch` is settled, so its key's hold ends.
    pub fn release(&mut self, batch: &Batch, j: usize) {
        if self.settings.ordering != DeliveryOrdering::Key {
            return;
        }
        if let Some(key) = batch.key(j) {
            self.keys.release(key);
        }
    }

    /// Forms the next call that may go now, if any; `stats` learns how
    /// long new events waited for it.
    pub fn form(&mut self, now: Instant, stats: &SinkStats) -> Option<Call> {
        if let Some(pos) = self.retries.iter().position(|r| r.due <= now) {
            let retry = self.retries.remove(pos)?;
            self.retry_events -= retry.unit.len();
            return Some(retry_call(retry));
        }
        if self.settings.ordering == DeliveryOrdering::Partition && !self.retries.is_empty() {
            return None;
        }
        if self.retries_full() {
            return None;
        }
        let front = self.waiting.front()?;
        let g = &self.settings.gather;
        if let Some(wait) = g.max_wait {
            let gathered = self.waiting_events >= g.max_events
                || self.waiting_bytes >= g.max_bytes
                || front.since + wait <= now;
            if !gathered {
                return None;
            }
        }
        self.new_call(now, stats)
    }

    /// A call of new events: as many as fit one call and may go, in order.
    fn new_call(&mut self, now: Instant, stats: &SinkStats) -> Option<Call> {
        let key_mode = self.settings.ordering == DeliveryOrdering::Key;
        let (max_events, max_bytes) = (
            self.settings.gather.max_events,
            self.settings.gather.max_bytes,
        );
        // Whole units are moved; a unit partly taken leaves what stays.
        let mut taken: Vec<Unit> = Vec::new();
        let (mut events, mut bytes) = (0usize, 0usize);
        let mut ours: FxHashSet<u64> = FxHashSet::default();
        let mut u = 0;
        let mut waited = Duration::ZERO;
        'units: while u < self.waiting.len() && events < max_events {
            let unit = &self.waiting[u];
            let fits_whole = events + unit.len() <= max_events
                && (bytes + unit.bytes <= max_bytes || events == 0);
            if fits_whole && !key_mode {
                let unit = self.waiting.remove(u)?;
                events += unit.len();
                bytes += unit.bytes;
                waited = waited.max(now.saturating_duration_since(unit.since));
                taken.push(unit);
                continue;
            }
            let mut picked = Vec::new();
            let mut full = false;
            for k in 0..unit.len() {
                if events + picked.len() >= max_events {
                    full = true;
                    break;
                }
                let i = unit.at(k);
                let size = unit.batch.event_bytes(i);
                if events + picked.len() > 0 && bytes + size > max_bytes {
                    full = true;
                    break;
                }
                if key_mode {
                    if let Some(key) = unit.batch.key(i) {
                        let h = self.keys.hash(key);
                        if !ours.contains(&h) && self.keys.is_held(h) {
                            continue;
                        }
                        ours.insert(h);
                        self.keys.hold(h);
                    }
                }
                bytes += size;
                picked.push(k);
            }
            if !picked.is_empty() {
                waited = waited.max(now.saturating_duration_since(unit.since));
                events += picked.len();
                if picked.len() == unit.len() {
                    let whole = self.waiting.remove(u)?;
                    taken.push(whole);
                    if full {
                        break 'units;
                    }
                    continue;
                }
                let (part, rest) = (unit.part(&picked), unit.without(&picked));
                self.waiting[u] = rest;
                taken.push(part);
            }
            if full {
                break;
            }
            u += 1;
        }
        if taken.is_empty() {
            return None;
        }
        self.waiting_events -= events;
        self.waiting_bytes -= taken.iter().map(|t| t.bytes).sum::<usize>();
        stats.record_wait(waited, events);
        let batch = match taken.as_slice() {
            [one] => one.to_batch(),
            units => Arc::new(copy_events(units)),
        };
        Some(Call {
            tries: vec![Tries::default(); batch.len()],
            batch,
            rest: None,
            isolate: false,
            retrying: false,
        })
    }
}

/// The call that offers `retry`'s events again: all of them, or when
/// narrowing down, the first alone.
fn retry_call(retry: Retry) -> Call {
    let unit = retry.unit;
    let (offered, rest) = if retry.isolate && unit.len() > 1 {
        let rest: Vec<usize> = (1..unit.len()).collect();
        (unit.part(&[0]), Some(unit.part(&rest)))
    } else {
        (unit, None)
    };
    let tries = (0..offered.len()).map(|k| offered.tries(k)).collect();
    Call {
        batch: offered.to_batch(),
        tries,
        rest,
        isolate: retry.isolate,
        retrying: true,
    }
}

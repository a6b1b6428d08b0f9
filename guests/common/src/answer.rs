//! Answering a batch in the compact form of contract 0.4: an interceptor's
//! `verdicts.actions` holds one byte per event, or nothing to keep every
//! event; a sink lists only the events it did not deliver.
//!
//! ```ignore
//! fn process(_source: Source, batch: Columns) -> Result<Verdicts, String> {
//!     let batch = flumen_guest_common::columns!(batch)?;
//!     let mut actions = Actions::new(batch.len());
//!     for (i, e) in batch.iter().enumerate() {
//!         if e.value.is_none() {
//!             actions.set(i, DROP);
//!         }
//!     }
//!     Ok(Verdicts { actions: actions.into_bytes(), replacements: Vec::new(), routes: Vec::new() })
//! }
//! ```

/// The action byte that keeps an event as it is.
pub const KEEP: u8 = 0;
/// The action byte that drops an event: it reaches no sink, and its offset
/// may be committed.
pub const DROP: u8 = 1;
/// The action byte that replaces an event with the next of `replacements`.
pub const REPLACE: u8 = 2;

/// The `actions` of a batch of `len` events, built as the events are
/// looked at. It allocates nothing until an event is not kept, because an
/// empty `actions` keeps them all, which is the common answer.
#[derive(Debug)]
pub struct Actions {
    len: usize,
    bytes: Vec<u8>,
}

impl Actions {
    /// Every event of a batch of `len` kept.
    pub fn new(len: usize) -> Self {
        Self {
            len,
            bytes: Vec::new(),
        }
    }

    /// Sets event `i`'s action ([`KEEP`], [`DROP`] or [`REPLACE`]). A
    /// `REPLACE` needs its replacement pushed in event order.
    pub fn set(&mut self, i: usize, action: u8) {
        if action == KEEP && self.bytes.is_empty() {
            return;
        }
        if self.bytes.is_empty() {
            self.bytes = vec![KEEP; self.len];
        }
        self.bytes[i] = action;
    }

    /// The bytes to answer with: empty when every event is kept.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_empty_while_every_event_is_kept() {
        let mut a = Actions::new(3);
        a.set(0, KEEP);
        a.set(2, KEEP);
        assert!(a.into_bytes().is_empty());
    }

    #[test]
    fn holds_one_byte_per_event_once_one_is_not_kept() {
        let mut a = Actions::new(3);
        a.set(1, DROP);
        a.set(2, REPLACE);
        assert_eq!(a.into_bytes(), [KEEP, DROP, REPLACE]);
    }
}

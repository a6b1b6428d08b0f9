//! The host side of the `rejection` import: an interceptor hands single
//! events to its failure policy, each with a reason, during `process`.

/// The events rejected during the current `process` call.
#[derive(Default)]
pub struct Rejections {
    /// The batch's size while `process` runs; `None` outside it.
    open: Option<usize>,
    rejected: Vec<(usize, String)>,
    /// Why a rejection broke the contract, if one did.
    broken: Option<String>,
}

impl Rejections {
    /// Opens for a `process` call on a batch of `len` events.
    pub fn open(&mut self, len: usize) {
        self.open = Some(len);
        self.rejected.clear();
        self.broken = None;
    }

    /// Closes after the call: the events rejected, first reason kept for
    /// each, or how a rejection broke the contract.
    pub fn close(&mut self) -> Result<Vec<(usize, String)>, String> {
        self.open = None;
        let rejected = std::mem::take(&mut self.rejected);
        match self.broken.take() {
            Some(broken) => Err(broken),
            None => Ok(rejected),
        }
    }

    /// Rejects event `event` of the open batch with `reason`.
    pub fn reject(&mut self, event: u32, reason: String) {
        // Outside `process` (during `init`, or in a sink) there is no
        // batch to reject from, and nothing to fail: the call does nothing.
        let Some(len) = self.open else { return };
        let event = event as usize;
        if event >= len {
            self.broken
                .get_or_insert_with(|| format!("rejected event {event} of a batch of {len}"));
        } else if !self.rejected.iter().any(|(e, _)| *e == event) {
            self.rejected.push((event, reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_reason_and_refuses_what_does_not_fit() {
        let mut r = Rejections::default();
        r.open(3);
        r.reject(2, "a".into());
        r.reject(2, "b".into());
        r.reject(0, "c".into());
        assert_eq!(r.close().unwrap(), vec![(2, "a".into()), (0, "c".into())]);
        r.open(1);
        r.reject(1, "x".into());
        assert!(r.close().unwrap_err().contains("event 1 of a batch of 1"));
        r.reject(0, "outside process".into());
        r.open(1);
        assert!(r.close().unwrap().is_empty());
    }
}

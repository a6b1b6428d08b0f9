//! How a sink is called: how many calls of one partition may be at it at
//! once (`max_in_flight`, optionally adapted), what order its events keep
//! (`ordering`), how the host gathers events into its calls (`batch`) and how
//! fast it may be called (`rate_limit`). Sinks only: an interceptor is called
//! once per batch, in order, on the partition's own thread.

use super::{invalid, ConfigError, MAX_WAIT_MS};
use serde::Deserialize;

/// Largest `max_in_flight`: each call in flight has its own instance and
/// thread, so a typo of 100000 must not start as many.
pub const MAX_IN_FLIGHT: usize = 1024;

/// What order a sink's events keep, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryOrdering {
    /// Events reach the sink in offset order, including after a retry: one
    /// call of the partition at a time (`max_in_flight` must be 1).
    #[default]
    Partition,
    /// Two events with the same key reach the sink in offset order,
    /// including after a retry: an event is offered only once every
    /// earlier event with its key is settled at the sink, or together with
    /// them in one call, in order. Events without a key have no order to
    /// keep (Kafka's partitioner spreads them over partitions anyway) and go
    /// as `unordered`.
    Key,
    /// No order: any event may be offered while others are in flight or
    /// waiting for a retry.
    Unordered,
}

impl DeliveryOrdering {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOrdering::Partition => "partition",
            DeliveryOrdering::Key => "key",
            DeliveryOrdering::Unordered => "unordered",
        }
    }
}

/// Sink-side batching: the host gathers one partition's events for the
/// sink across the pipeline's batches and calls it when one bound is
/// reached, so that a sink can write one large object or one bulk request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkBatchConfig {
    /// Call the sink once this many events are gathered…
    pub max_events: usize,
    /// …or once their keys, values and headers reach this many bytes…
    pub max_bytes: usize,
    /// …or once the first of them has waited this long.
    pub max_wait_ms: u64,
}

impl Default for SinkBatchConfig {
    fn default() -> Self {
        Self {
            max_events: 5_000,
            max_bytes: 8 << 20,
            max_wait_ms: 1_000,
        }
    }
}

/// A sink's rate limit, shared by all partitions of the pipeline (the
/// destination sees their sum). Exactly one of the two is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Events per second offered to the sink.
    pub events_per_s: Option<f64>,
    /// Calls per second.
    pub calls_per_s: Option<f64>,
}

/// What a [`RateLimit`] counts, and how many per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Events per second.
    Events(f64),
    /// Calls per second.
    Calls(f64),
}

impl RateLimit {
    /// The one rate that is set (validation guarantees there is one).
    pub fn rate(&self) -> Rate {
        match (self.events_per_s, self.calls_per_s) {
            (Some(e), _) => Rate::Events(e),
            (None, Some(c)) => Rate::Calls(c),
            (None, None) => Rate::Calls(f64::INFINITY),
        }
    }
}

/// The delivery settings of one sink, as [`super::ComponentConfig`] holds
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<'a> {
    /// Calls of one partition at the sink at once.
    pub max_in_flight: usize,
    /// Whether the window adapts (AIMD) below `max_in_flight`.
    pub adaptive: bool,
    /// What order the events keep.
    pub ordering: DeliveryOrdering,
    /// Sink-side batching, if set.
    pub batch: Option<&'a SinkBatchConfig>,
    /// The rate limit, if set.
    pub rate_limit: Option<Rate>,
}

impl Delivery<'_> {
    /// Checks the settings of sink `here`; `is_sink` is false for an
    /// interceptor, which may set none of them.
    pub(super) fn validate(&self, here: &str, is_sink: bool) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| Err(invalid(Some(here.to_owned()), key, message));
        let set = self.max_in_flight != 1
            || self.adaptive
            || self.ordering != DeliveryOrdering::Partition
            || self.batch.is_some()
            || self.rate_limit.is_some();
        if !is_sink {
            if set {
                return bad(
                    "max_in_flight",
                    "max_in_flight, ordering, adaptive_concurrency, batch and rate_limit are \
                     for sinks; an interceptor is called once per batch of the pipeline"
                        .into(),
                );
            }
            return Ok(());
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return bad("max_in_flight", format!("must be 1 to {MAX_IN_FLIGHT}"));
        }
        if self.max_in_flight > 1 && self.ordering == DeliveryOrdering::Partition {
            return bad(
                "max_in_flight",
                format!(
                    "{} calls in flight cannot keep ordering = \"partition\" (a later batch \
                     would overtake an earlier one that is retried); set ordering = \"key\" \
                     (same-key events keep their order) or \"unordered\", or max_in_flight = 1",
                    self.max_in_flight
                ),
            );
        }
        if self.adaptive && self.max_in_flight == 1 {
            return bad(
                "adaptive_concurrency",
                "adapts the window below max_in_flight, which is 1; raise max_in_flight".into(),
            );
        }
        if let Some(b) = self.batch {
            if b.max_events == 0 || b.max_bytes == 0 {
                return bad(
                    "batch",
                    "max_events and max_bytes must be at least 1".into(),
                );
            }
            if !(1..=MAX_WAIT_MS).contains(&b.max_wait_ms) {
                return bad(
                    "batch.max_wait_ms",
                    format!("must be 1 to {MAX_WAIT_MS} (one hour)"),
                );
            }
        }
        Ok(())
    }
}

impl RateLimit {
    /// Checks that exactly one positive, finite rate is set.
    pub(super) fn validate(&self, here: &str) -> Result<(), ConfigError> {
        let bad = |message: &str| Err(invalid(Some(here.to_owned()), "rate_limit", message));
        match (self.events_per_s, self.calls_per_s) {
            (Some(_), Some(_)) | (None, None) => {
                bad("set exactly one of events_per_s and calls_per_s")
            }
            (Some(r), None) | (None, Some(r)) if !(r.is_finite() && r > 0.0) => {
                bad("the rate must be a positive number")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ComponentConfig;

    fn sink(extra: &str) -> ComponentConfig {
        toml::from_str(&format!("name = \"s\"\ncomponent = \"s.wasm\"\n{extra}")).unwrap()
    }

    fn check(extra: &str, is_sink: bool) -> Result<(), String> {
        let c = sink(extra);
        c.validate_delivery("sink `s`", is_sink)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_keep_one_call_in_partition_order() {
        let c = sink("");
        let d = c.delivery();
        assert_eq!(d.max_in_flight, 1);
        assert_eq!(d.ordering.as_str(), "partition");
        assert!(d.batch.is_none() && d.rate_limit.is_none() && !d.adaptive);
        assert!(check("", true).is_ok());
    }

    #[test]
    fn a_window_needs_an_ordering_that_allows_it() {
        let e = check("max_in_flight = 8", true).unwrap_err();
        assert!(e.contains("ordering = \"key\""), "{e}");
        assert!(check("max_in_flight = 8\nordering = \"key\"", true).is_ok());
        assert!(check("max_in_flight = 8\nordering = \"unordered\"", true).is_ok());
        assert!(check("max_in_flight = 0", true).is_err());
        assert!(check("max_in_flight = 5000\nordering = \"key\"", true).is_err());
        let e = check("adaptive_concurrency = true", true).unwrap_err();
        assert!(e.contains("raise max_in_flight"), "{e}");
    }

    #[test]
    fn batching_and_rate_limits_are_checked() {
        assert!(check("batch = { max_events = 100 }", true).is_ok());
        assert!(check("batch = { max_events = 0 }", true).is_err());
        assert!(check("batch = { max_wait_ms = 0 }", true).is_err());
        assert!(check("rate_limit = { events_per_s = 100 }", true).is_ok());
        let e = check("rate_limit = { events_per_s = 1, calls_per_s = 2 }", true).unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        assert!(check("rate_limit = { calls_per_s = -1 }", true).is_err());
    }

    #[test]
    fn interceptors_take_none_of_it() {
        let e = check("max_in_flight = 2\nordering = \"key\"", false).unwrap_err();
        assert!(e.contains("are for sinks"), "{e}");
        assert!(check("", false).is_ok());
    }
}

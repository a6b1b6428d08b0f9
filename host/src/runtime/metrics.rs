//! Guest calls, counted where they happen: each live guest resolves its
//! labelled counters once ([`GuestMetrics`]), so a call costs a few atomic
//! adds and one histogram observation per batch, never a lookup per event.
//! The families are process-wide; [`register`] puts them into the registry
//! `/metrics` renders.

use super::error::GuestError;
use crate::contract::{record_bytes, Action, Batch, InterceptorVerdict, SinkVerdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

/// A component in a pipeline.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestLabels {
    pipeline: String,
    component: String,
    kind: &'static str,
}

/// A component's calls, by how they ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    pipeline: String,
    component: String,
    kind: &'static str,
    outcome: &'static str,
}

/// A component's verdicts on events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    pipeline: String,
    component: String,
    verdict: &'static str,
}

/// A component's budget hits, by budget.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    pipeline: String,
    component: String,
    budget: &'static str,
}

/// A Kafka sink's records, by how the broker answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProduceLabels {
    pipeline: String,
    component: String,
    outcome: &'static str,
}

type HistogramFamily = Family<GuestLabels, Histogram, fn() -> Histogram>;

/// The process-wide families of guest metrics.
struct GuestFamilies {
    calls: Family<CallLabels, Counter>,
    duration: HistogramFamily,
    events_in: Family<GuestLabels, Counter>,
    bytes_in: Family<GuestLabels, Counter>,
    events_out: Family<GuestLabels, Counter>,
    bytes_out: Family<GuestLabels, Counter>,
    verdicts: Family<VerdictLabels, Counter>,
    produced: Family<ProduceLabels, Counter>,
    budget_hits: Family<BudgetLabels, Counter>,
}

fn call_buckets() -> Histogram {
    // 50 µs to about 13 s: a null sink's batch to a slow HTTP endpoint.
    Histogram::new(exponential_buckets(0.000_05, 4.0, 10))
}

fn families() -> &'static GuestFamilies {
    static FAMILIES: OnceLock<GuestFamilies> = OnceLock::new();
    FAMILIES.get_or_init(|| GuestFamilies {
        calls: Family::default(),
        duration: Family::new_with_constructor(call_buckets),
        events_in: Family::default(),
        bytes_in: Family::default(),
        events_out: Family::default(),
        bytes_out: Family::default(),
        verdicts: Family::default(),
        produced: Family::default(),
        budget_hits: Family::default(),
    })
}

/// The verdicts of one kind of guest, in the order of [`GuestMetrics`]'s
/// verdict counters.
const INTERCEPTOR_VERDICTS: &[&str] = &["keep", "drop", "replace", "reject"];
const SINK_VERDICTS: &[&str] = &["delivered", "retry", "reject"];
/// How a call can end.
const OUTCOMES: [&str; 7] = [
    "ok",
    "error",
    "trap",
    "contract",
    "over_budget",
    "start_failed",
    "unavailable",
];

/// One guest's counters, resolved once when the guest is made.
#[derive(Clone, Debug)]
pub struct GuestMetrics {
    calls: [Counter; 7],
    duration: Histogram,
    events_in: Counter,
    bytes_in: Counter,
    events_out: Counter,
    bytes_out: Counter,
    verdicts: Vec<Counter>,
}

impl GuestMetrics {
    /// The counters of `component` (`kind` is `interceptor` or `sink`) in
    /// `pipeline`.
    pub fn new(pipeline: &str, component: &str, kind: &'static str) -> Self {
        let f = families();
        let guest = GuestLabels {
            pipeline: pipeline.to_owned(),
            component: component.to_owned(),
            kind,
        };
        let names = if kind == "sink" {
            SINK_VERDICTS
        } else {
            INTERCEPTOR_VERDICTS
        };
        Self {
            calls: OUTCOMES.map(|outcome| {
                f.calls
                    .get_or_create(&CallLabels {
                        pipeline: guest.pipeline.clone(),
                        component: guest.component.clone(),
                        kind,
                        outcome,
                    })
                    .clone()
            }),
            duration: f.duration.get_or_create(&guest).clone(),
            events_in: f.events_in.get_or_create(&guest).clone(),
            bytes_in: f.bytes_in.get_or_create(&guest).clone(),
            events_out: f.events_out.get_or_create(&guest).clone(),
            bytes_out: f.bytes_out.get_or_create(&guest).clone(),
            verdicts: names
                .iter()
                .map(|&verdict| {
                    f.verdicts
                        .get_or_create(&VerdictLabels {
                            pipeline: guest.pipeline.clone(),
                            component: guest.component.clone(),
                            verdict,
                        })
                        .clone()
                })
                .collect(),
        }
    }

    /// Counts a call on `batch` that took `took`, and how it ended.
    fn call<T>(&self, batch: &Batch, took: Duration, result: &Result<T, GuestError>) {
        self.duration.observe(took.as_secs_f64());
        self.events_in.inc_by(batch.len() as u64);
        self.bytes_in.inc_by(batch.bytes() as u64);
        let outcome = match result {
            Ok(_) => 0,
            Err(GuestError::Failed { .. }) => 1,
            Err(GuestError::Trap { .. }) => 2,
            Err(GuestError::Contract { .. }) => 3,
            Err(GuestError::OverBudget { .. }) => 4,
            Err(GuestError::Unavailable { .. }) => 6,
            Err(_) => 5,
        };
        self.calls[outcome].inc();
    }

    /// Adds one call's verdict counts and output: one atomic add per
    /// counter per batch, since the counters are shared by every
    /// partition's instance of the component.
    fn settle(&self, verdicts: &[u64], out_events: u64, out_bytes: usize) {
        for (counter, &n) in self.verdicts.iter().zip(verdicts) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        self.events_out.inc_by(out_events);
        self.bytes_out.inc_by(out_bytes as u64);
    }

    /// Counts an interceptor call and, if it succeeded, its verdicts and
    /// the events it passed on.
    pub fn interceptor_call(
        &self,
        batch: &Batch,
        took: Duration,
        result: &Result<Vec<InterceptorVerdict>, GuestError>,
    ) {
        self.call(batch, took, result);
        let Ok(verdicts) = result else { return };
        let (mut counts, mut out_events, mut out_bytes) = ([0u64; 4], 0, 0);
        for (e, v) in verdicts.iter().enumerate() {
            let (i, out) = match &v.action {
                Action::Keep => (0, Some(batch.event_bytes(e))),
                Action::Drop => (1, None),
                Action::Replace(r) => (
                    2,
                    Some(record_bytes(
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &r.headers,
                    )),
                ),
                Action::Reject(_) => (3, None),
            };
            counts[i] += 1;
            if let Some(bytes) = out {
                out_events += 1;
                out_bytes += bytes;
            }
        }
        self.settle(&counts, out_events, out_bytes);
    }

    /// Counts a sink call and, if it succeeded, its verdicts and the events
    /// it delivered.
    pub fn sink_call(
        &self,
        batch: &Batch,
        took: Duration,
        result: &Result<Vec<SinkVerdict>, GuestError>,
    ) {
        self.call(batch, took, result);
        let Ok(verdicts) = result else { return };
        let (mut counts, mut out_bytes) = ([0u64; 3], 0);
        for (e, v) in verdicts.iter().enumerate() {
            match v {
                SinkVerdict::Delivered => {
                    counts[0] += 1;
                    out_bytes += batch.event_bytes(e);
                }
                SinkVerdict::Retry(_) => counts[1] += 1,
                SinkVerdict::Reject(_) => counts[2] += 1,
            }
        }
        self.settle(&counts, counts[0], out_bytes);
    }
}

/// How a record sent through the `producer` import can end, in the order of
/// [`ProduceMetrics::add`]'s counts.
const PRODUCE_OUTCOMES: [&str; 4] = ["acked", "not_granted", "refused", "transient"];

/// One Kafka sink instance's record counters, resolved once.
#[derive(Clone, Debug)]
pub struct ProduceMetrics {
    outcomes: [Counter; 4],
}

impl ProduceMetrics {
    /// The counters of `component` in `pipeline`.
    pub fn new(pipeline: &str, component: &str) -> Self {
        let f = families();
        Self {
            outcomes: PRODUCE_OUTCOMES.map(|outcome| {
                f.produced
                    .get_or_create(&ProduceLabels {
                        pipeline: pipeline.to_owned(),
                        component: component.to_owned(),
                        outcome,
                    })
                    .clone()
            }),
        }
    }

    /// Adds one call's counts: acked, not granted, refused, transient.
    pub fn add(&self, counts: [u64; 4]) {
        add_counts(&self.outcomes, counts);
    }
}

/// The counter of `component`'s hits of `budget` (`log_lines`,
/// `output_bytes`, `produce_records`) in `pipeline`.
pub fn budget_hits(pipeline: &str, component: &str, budget: &'static str) -> Counter {
    families()
        .budget_hits
        .get_or_create(&BudgetLabels {
            pipeline: pipeline.to_owned(),
            component: component.to_owned(),
            budget,
        })
        .clone()
}

/// Adds `counts` to `counters`, pairwise, skipping zeros: the counters are
/// shared across partitions, so an add that changes nothing is not worth
/// its contended atomic.
fn add_counts<const N: usize>(counters: &[Counter; N], counts: [u64; N]) {
    for (counter, n) in counters.iter().zip(counts) {
        if n > 0 {
            counter.inc_by(n);
        }
    }
}

/// Registers the guest metric families in `registry`.
pub fn register(registry: &mut Registry) {
    let f = families();
    registry.register(
        "flumen_guest_calls",
        "Guest calls (one per batch), by outcome: ok, error (the guest failed the batch), trap, contract (wrong verdict count or route), over_budget, start_failed.",
        f.calls.clone(),
    );
    registry.register(
        "flumen_guest_call_duration_seconds",
        "Wall time of one guest call, instantiation included.",
        f.duration.clone(),
    );
    registry.register(
        "flumen_guest_events_in",
        "Events passed to a component.",
        f.events_in.clone(),
    );
    registry.register(
        "flumen_guest_bytes_in",
        "Bytes (key, value, headers) passed to a component.",
        f.bytes_in.clone(),
    );
    registry.register(
        "flumen_guest_events_out",
        "Events an interceptor passed on, or a sink delivered.",
        f.events_out.clone(),
    );
    registry.register(
        "flumen_guest_bytes_out",
        "Bytes of the events an interceptor passed on, or a sink delivered.",
        f.bytes_out.clone(),
    );
    registry.register(
        "flumen_guest_verdicts",
        "Verdicts on events: keep, drop, replace; delivered, retry, reject.",
        f.verdicts.clone(),
    );
    registry.register(
        "flumen_kafka_produced_records",
        "Records Kafka sinks sent through the host's producer, by outcome: acked, not_granted, refused, transient.",
        f.produced.clone(),
    );
    registry.register(
        "flumen_guest_budget_hits",
        "Times a component went over one of its budgets: log_lines (lines dropped), output_bytes and produce_records (calls failed).",
        f.budget_hits.clone(),
    );
}

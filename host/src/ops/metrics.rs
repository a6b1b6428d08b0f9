//! Prometheus metrics, served at `GET /metrics` by the admin endpoint.
//!
//! They come from two places. Guest calls are counted where they happen,
//! by the runtime ([`crate::runtime::metrics`]), each live guest through
//! counters it resolved once. What the pipelines already count for
//! themselves ([`PipelineStats`]: consumed, dropped, committed offsets, …)
//! and the reload counters are read at scrape time by a collector instead
//! of being mirrored, so the hot path pays nothing more for them.

use super::reload::ReloadStats;
use crate::stats::{PipelineStats, SinkStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Picks one counter out of a pipeline's stats.
type CounterOf = fn(&PipelineStats) -> &AtomicU64;
/// Picks per-partition values out of a pipeline's stats.
type PartitionValues = fn(&PipelineStats) -> Vec<((String, i32), i64)>;

/// Reads the pipelines' own counters and the reload counters at scrape
/// time.
struct StatsCollector {
    pipelines: Vec<(String, Arc<PipelineStats>)>,
    reload: Arc<ReloadStats>,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCollector").finish_non_exhaustive()
    }
}

/// One sample per sink of every pipeline, labelled by both, of `value`.
fn per_sink<'a, M: 'a>(
    pipelines: &'a [(String, Arc<PipelineStats>)],
    value: impl Fn(&SinkStats) -> M + Copy + 'a,
) -> impl Iterator<Item = (Vec<(&'static str, String)>, M)> + 'a {
    pipelines.iter().flat_map(move |(name, s)| {
        s.sinks()
            .into_iter()
            .map(move |(sink, st)| (vec![("pipeline", name.clone()), ("sink", sink)], value(&st)))
    })
}

/// Encodes one metric with one sample per `(labels, value)`.
fn encode_samples<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, M)>,
) -> std::fmt::Result {
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let per_pipeline = |counter: CounterOf| {
            self.pipelines.iter().map(move |(name, s)| {
                (
                    vec![("pipeline", name.clone())],
                    ConstCounter::new(PipelineStats::get(counter(s))),
                )
            })
        };
        let counters: [(&str, &str, CounterOf); 7] = [
            (
                "flumen_events_consumed",
                "Events read from Kafka and handed to a partition worker.",
                |s| &s.consumed,
            ),
            (
                "flumen_events_dropped",
                "Events dropped by an interceptor or routed to no sink.",
                |s| &s.dropped,
            ),
            (
                "flumen_events_finalized",
                "Events finalized: dropped, or delivered by every sink routed to (or given up).",
                |s| &s.finalized,
            ),
            (
                "flumen_retries",
                "Failed guest calls and events that were retried.",
                |s| &s.retries,
            ),
            (
                "flumen_dead_letters",
                "Events written to the dead-letter topic and acknowledged.",
                |s| &s.dead_lettered,
            ),
            (
                "flumen_events_skipped",
                "Events given up under on_failure = skip.",
                |s| &s.skipped,
            ),
            (
                "flumen_events_failed_open",
                "Events an interceptor failed on and passed on unchanged (fail-open).",
                |s| &s.failed_open,
            ),
        ];
        for (name, help, counter) in counters {
            encode_samples(&mut encoder, name, help, per_pipeline(counter))?;
        }
        encode_samples(
            &mut encoder,
            "flumen_partitions_blocked",
            "Partitions held by a block-policy component that spent its retries.",
            self.pipelines.iter().map(|(name, s)| {
                (
                    vec![("pipeline", name.clone())],
                    ConstGauge::new(PipelineStats::get(&s.blocked) as i64),
                )
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_member_fenced",
            "1 while this member has fenced itself: no contact with its group coordinator for longer than its fence allows (exactly-once sinks).",
            self.pipelines.iter().map(|(name, s)| {
                (
                    vec![("pipeline", name.clone())],
                    ConstGauge::new(i64::from(s.fenced.load(Ordering::Acquire))),
                )
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_partition_unreadable_offset",
            "Partitions stopped at a record batch that cannot be decoded: the offset.",
            self.pipelines.iter().flat_map(|(name, s)| {
                s.unreadable()
                    .into_iter()
                    .map(move |((topic, partition), offset)| {
                        (
                            vec![
                                ("pipeline", name.clone()),
                                ("topic", topic),
                                ("partition", partition.to_string()),
                            ],
                            ConstGauge::new(offset),
                        )
                    })
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_events_delivered",
            "Events each sink reported delivered.",
            self.pipelines.iter().flat_map(|(name, s)| {
                s.delivered().into_iter().map(move |(sink, n)| {
                    (
                        vec![("pipeline", name.clone()), ("sink", sink)],
                        ConstCounter::new(n),
                    )
                })
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_sink_calls_in_flight",
            "Calls at each sink now, over all partitions.",
            per_sink(&self.pipelines, |s| {
                ConstGauge::new(s.in_flight.load(Ordering::Relaxed))
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_sink_partitions_waiting",
            "Partitions waiting on each sink's destination: events the sink answered retry for \
             are offered again, with backoff, until it takes them or retry.max_elapsed_ms passes.",
            per_sink(&self.pipelines, |s| {
                ConstGauge::new(s.waiting.load(Ordering::Relaxed))
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_sink_window",
            "Calls each sink may have in flight now (max_in_flight, or the adaptive window), \
             summed over partitions.",
            per_sink(&self.pipelines, |s| {
                ConstGauge::new(s.window.load(Ordering::Relaxed))
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_sink_calls_formed",
            "Calls formed from new events (retries not counted).",
            per_sink(&self.pipelines, |s| {
                ConstCounter::new(s.calls.load(Ordering::Relaxed))
            }),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_sink_batch_wait_seconds",
            "Summed over those calls: how long the oldest event of each waited for its call \
             (sink-side batching and a full window). Divide by flumen_sink_calls_formed.",
            per_sink(&self.pipelines, |s| {
                ConstCounter::new(s.waited_us.load(Ordering::Relaxed) as f64 / 1e6)
            }),
        )?;
        let partition_gauges = |value: PartitionValues| {
            self.pipelines.iter().flat_map(move |(name, s)| {
                value(s).into_iter().map(move |((topic, partition), v)| {
                    (
                        vec![
                            ("pipeline", name.clone()),
                            ("topic", topic),
                            ("partition", partition.to_string()),
                        ],
                        ConstGauge::new(v),
                    )
                })
            })
        };
        encode_samples(
            &mut encoder,
            "flumen_committed_offset",
            "Last offset the broker acknowledged as committed, per partition.",
            partition_gauges(|s| s.committed().into_iter().collect()),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_high_watermark",
            "The partition's high watermark (end offset), from librdkafka's statistics, for the partitions this member is assigned.",
            partition_gauges(|s| s.high_watermarks().into_iter().collect()),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_consumer_lag",
            "High watermark minus committed offset: events not yet committed, per assigned partition.",
            partition_gauges(PipelineStats::lag),
        )?;
        let reloads = [
            ("applied", PipelineStats::get(&self.reload.applied)),
            ("rejected", PipelineStats::get(&self.reload.rejected)),
            ("coalesced", PipelineStats::get(&self.reload.coalesced)),
        ];
        encode_samples(
            &mut encoder,
            "flumen_reloads",
            "Reloads, by result: applied, rejected, coalesced (a trigger folded into the run queued behind a running reload).",
            reloads
                .into_iter()
                .map(|(result, n)| (vec![("result", result.to_owned())], ConstCounter::new(n))),
        )?;
        encode_samples(
            &mut encoder,
            "flumen_component_swaps",
            "New component versions published by reloads.",
            [(
                Vec::new(),
                ConstCounter::new(PipelineStats::get(&self.reload.swaps)),
            )],
        )
    }
}

/// Everything `/metrics` shows.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// The metrics of the running `pipelines` and their reloads.
    pub fn new(pipelines: Vec<(String, Arc<PipelineStats>)>, reload: Arc<ReloadStats>) -> Self {
        let mut registry = Registry::default();
        crate::runtime::metrics::register(&mut registry);
        registry.register_collector(Box::new(StatsCollector { pipelines, reload }));
        Self { registry }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

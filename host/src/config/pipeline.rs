//! `[[pipeline]]`: what a pipeline reads, how it batches, commits and
//! retries, and where its dead letters go. Its components' own tables are
//! in [`super::component`].

use super::component::{ComponentConfig, InPipeline};
use super::failure::RetryConfig;
use super::{invalid, ConfigError};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

/// One pipeline: topics → interceptors → sinks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name used in logs and metrics.
    pub name: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Kafka consumer group; run more flumen processes with the same group to
    /// scale out.
    pub group_id: String,
    /// Batching of events before they are handed to the guests.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Offset commits.
    #[serde(default)]
    pub commit: CommitConfig,
    /// Retries of failed guest calls and events: the default for every
    /// component of the pipeline that has no `retry` table of its own.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Where components with `on_failure = "dead-letter"` send the events
    /// they gave up on.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// Events read from Kafka but not yet handed to the guests, per partition,
    /// before the partition is paused. Bounds memory when sinks are slow.
    /// A queued event costs its bytes and 29 more (its place in the batch's
    /// columns), so the byte bound is usually the one that binds. A paused
    /// partition's messages fetched meanwhile wait in librdkafka, up to
    /// about the same bounds again (each counted at its bytes plus what
    /// librdkafka keeps per message); past those, fetching the partition stops
    /// and what waited is fetched again on resume, which costs a round trip,
    /// so the default leaves small events room to queue.
    #[serde(default = "default_max_queued")]
    pub max_queued_events: usize,
    /// The same bound in bytes of keys, values and headers: with large
    /// events the event count alone would let the queue hold gigabytes.
    #[serde(default = "default_max_queued_bytes")]
    pub max_queued_bytes: usize,
    /// How long shutdown and partition revocation wait for in-flight batches
    /// before committing what is finalized and giving up on the rest.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Interceptors, applied in order.
    #[serde(default, rename = "interceptor")]
    pub interceptors: Vec<ComponentConfig>,
    /// Sinks; each event goes to every sink unless an interceptor routes it.
    #[serde(rename = "sink")]
    pub sinks: Vec<ComponentConfig>,
}

fn default_max_queued() -> usize {
    30_000
}
fn default_max_queued_bytes() -> usize {
    8 << 20
}
fn default_drain_timeout_ms() -> u64 {
    10_000
}

impl PipelineConfig {
    /// Drain bound as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// How events are grouped into batches, per partition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// A batch is handed on when it holds this many events…
    pub max_events: usize,
    /// …or when its first event has waited this long…
    pub max_wait_ms: u64,
    /// …or when the next event would take its keys, values and headers
    /// past this many bytes (a batch always takes at least one event). A
    /// guest's memory grows to hold the largest batch it is handed and never
    /// shrinks, so this bounds every instance's memory.
    pub max_bytes: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 500,
            max_wait_ms: 100,
            max_bytes: 1 << 20,
        }
    }
}

/// When finalized offsets are committed (also always on revoke and shutdown).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitConfig {
    /// Interval between periodic commits.
    pub interval_ms: u64,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self { interval_ms: 1000 }
    }
}

/// The dead-letter topic of a pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Topic the events are written to, on the `[kafka]` cluster. It must
    /// exist and must not be one of the pipeline's own topics.
    pub topic: String,
}

impl PipelineConfig {
    /// How validation errors name this pipeline: by its name, or by its
    /// position when the name is what is wrong.
    fn label(&self, index: usize) -> String {
        if self.name.trim().is_empty() {
            format!("pipeline #{} (unnamed)", index + 1)
        } else {
            format!("pipeline `{}`", self.name)
        }
    }

    /// Checks this pipeline (the `index`-th) and its components. `names`
    /// holds the names of the pipelines checked before it.
    pub(super) fn validate<'a>(
        &'a self,
        index: usize,
        names: &mut HashSet<&'a str>,
    ) -> Result<(), ConfigError> {
        let here = self.label(index);
        let bad = |key: &str, message: String| Err(invalid(Some(here.clone()), key, message));
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if !names.insert(&self.name) {
            return bad("name", format!("`{}` is used by two pipelines", self.name));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return bad("topics", "must list at least one non-empty topic".into());
        }
        if self.group_id.trim().is_empty() {
            return bad("group_id", "must not be empty".into());
        }
        if self.batch.max_events == 0 {
            return bad("batch.max_events", "must be at least 1".into());
        }
        if self.batch.max_bytes == 0 {
            return bad("batch.max_bytes", "must be at least 1".into());
        }
        if self.commit.interval_ms == 0 {
            return bad("commit.interval_ms", "must be at least 1".into());
        }
        self.retry.validate(&here, "retry")?;
        if let Some(dl) = &self.dead_letter {
            if dl.topic.trim().is_empty() {
                return bad("dead_letter.topic", "must not be empty".into());
            }
            if self.topics.contains(&dl.topic) {
                return bad(
                    "dead_letter.topic",
                    format!(
                        "`{}` is also consumed by this pipeline; dead letters would come back \
                         through it",
                        dl.topic
                    ),
                );
            }
        }
        if self.max_queued_events < self.batch.max_events {
            return bad(
                "max_queued_events",
                format!(
                    "must be at least batch.max_events ({})",
                    self.batch.max_events
                ),
            );
        }
        if self.max_queued_bytes < self.batch.max_bytes {
            return bad(
                "max_queued_bytes",
                format!(
                    "must be at least batch.max_bytes ({})",
                    self.batch.max_bytes
                ),
            );
        }
        if self.sinks.is_empty() {
            return bad("sink", "at least one [[pipeline.sink]] is required".into());
        }
        let context = InPipeline {
            name: &self.name,
            topics: &self.topics,
            has_dead_letter: self.dead_letter.is_some(),
        };
        let mut component_names = HashSet::new();
        let components = self
            .interceptors
            .iter()
            .enumerate()
            .map(|(j, c)| ("interceptor", j, c))
            .chain(self.sinks.iter().enumerate().map(|(j, c)| ("sink", j, c)));
        for (kind, j, c) in components {
            c.validate(&context, &here, kind, j, &mut component_names)?;
        }
        super::exactly_once::validate(self, &here)
    }
}

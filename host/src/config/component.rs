//! `[[pipeline.interceptor]]` and `[[pipeline.sink]]`: one guest
//! component, its own configuration, what it is granted (directories,
//! variables, HTTP hosts, Kafka topics), its limits and its failure
//! handling.

use super::delivery::{Delivery, DeliveryOrdering, RateLimit, SinkBatchConfig};
use super::failure::{FailurePolicy, RetryConfig};
use super::host_pattern::HostPattern;
use super::{invalid, scalar_or_json, ConfigError, MAX_WAIT_MS};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// One guest component (interceptor or sink).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Name, unique within its pipeline; interceptors route to sinks by it.
    pub name: String,
    /// Path of the `.wasm` component, relative to the config file.
    pub component: PathBuf,
    /// The guest's own configuration, handed to its `init`.
    #[serde(default)]
    pub config: toml::Table,
    /// Host directories the guest may use. Nothing else of the filesystem is
    /// visible to it.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees, with their values. It sees no
    /// others.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of flumen's own environment variables passed on to the guest
    /// (for secrets kept out of the config file). A name that is not set
    /// in flumen's environment is an error at start.
    #[serde(default)]
    pub env_from_host: Vec<String>,
    /// Hosts the guest may send HTTP requests to through `wasi:http`:
    /// `"api.example.com"` (any port), `"127.0.0.1:8080"` (that port only)
    /// or `"*.example.com"` (its subdomains). Every request is checked;
    /// anything else fails in the guest with `HTTP-request-denied`.
    #[serde(default)]
    pub http_allow: Vec<String>,
    /// Topics of the `[kafka]` cluster the guest may write to through the
    /// host's `producer` import (a Kafka sink). Every record is checked;
    /// one to any other topic fails in the guest as `not-granted`. Each
    /// must exist when flumen starts.
    #[serde(default)]
    pub kafka_produce: Vec<String>,
    /// Whether the guest may read schemas from the `[schema_registry]`
    /// through the host's `schemas` import. Without it every call answers
    /// `not-granted`.
    #[serde(default)]
    pub schema_registry: bool,
    /// Whether the guest may also register schemas (`schemas.register`),
    /// as an encoder with auto-registration does. Needs `schema_registry`.
    #[serde(default)]
    pub schema_registry_register: bool,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Budgets on the work the guest can make the host do for it.
    #[serde(default)]
    pub budgets: Budgets,
    /// Retries for this component; without it, the pipeline's `retry`.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// What happens to an event once the retries are used up.
    #[serde(default)]
    pub on_failure: FailurePolicy,
    /// Sinks: calls of one partition that may be at the sink at once, each
    /// on its own instance. 1 (the default) calls it one batch at a time.
    #[serde(default = "one")]
    pub max_in_flight: usize,
    /// Sinks: adapt the number of calls in flight between 1 and
    /// `max_in_flight` to the sink's latency and its `retry` verdicts
    /// (additive increase, multiplicative decrease).
    #[serde(default)]
    pub adaptive_concurrency: bool,
    /// Sinks: what order the events keep at the sink.
    #[serde(default)]
    pub ordering: DeliveryOrdering,
    /// Sinks: gather events across the pipeline's batches into larger calls.
    #[serde(default)]
    pub batch: Option<SinkBatchConfig>,
    /// Sinks: a bound on events or calls per second, over all partitions.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn one() -> usize {
    1
}

/// A host directory made visible to a guest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host, relative to the config file.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/out`.
    pub guest: String,
    /// Grant only reading.
    #[serde(default)]
    pub read_only: bool,
    /// Create the host directory (and its parents) if it does not exist,
    /// as for a spool or output directory a first run starts without. Off
    /// by default, so that a mistyped path is an error, not a new folder.
    #[serde(default)]
    pub create: bool,
}

/// Per-component resource limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory a guest instance may grow to, in MiB.
    pub memory_mb: u64,
    /// Wall time one call may take before it is interrupted, in ms.
    pub call_timeout_ms: u64,
    /// Calls an instance serves before it is replaced by a fresh one, which
    /// bounds what a slowly leaking guest can accumulate; 0 means never.
    pub max_calls_per_instance: u64,
    /// Fuel (roughly, wasm instructions) one call may burn before it traps.
    /// A deterministic bound, unlike the wall-clock `call_timeout_ms`; off
    /// unless set, because counting fuel slows every guest of the process.
    pub fuel: Option<u64>,
    /// Core instances one guest instance may create (a component is made
    /// of several).
    pub max_instances: usize,
    /// Tables one guest instance may create.
    pub max_tables: usize,
    /// Elements any one of its tables may grow to.
    pub max_table_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 256,
            call_timeout_ms: 30_000,
            max_calls_per_instance: 0,
            fuel: None,
            max_instances: 32,
            max_tables: 32,
            max_table_elements: 100_000,
        }
    }
}

/// Budgets on what a component can make the host do on its behalf: write
/// log lines, hold what a call hands back, produce records. The sandbox
/// stops a guest reaching out; these stop it flooding the host from
/// within (a log that fills the disk, an answer that fills memory). The
/// defaults sit far above what a well-behaved guest does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    /// Log lines per second the component may write, through the `log`
    /// import, stdout and stderr together, summed over all its instances.
    /// Lines beyond it are dropped and counted; a summary line says how
    /// many.
    pub log_lines_per_s: u32,
    /// Bytes of log text per second, counted the same way. A single line is
    /// cut at 16 KiB whatever this is.
    pub log_bytes_per_s: u64,
    /// Bytes one call may hand back to the host: an interceptor's
    /// replacement events and route names, a sink's failure reasons, the
    /// records a Kafka sink sends. It is counted as the host would hold
    /// it (about 100 bytes more per replacement, header, route and name),
    /// and it also caps the data of any one host call, such as one write.
    /// A call beyond it fails like a trap, and the component's
    /// `on_failure` applies.
    pub output_bytes_per_call: u64,
    /// Records one `send` to the host's producer may carry.
    pub produce_records_per_send: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            log_lines_per_s: 100,
            log_bytes_per_s: 32 * 1024,
            output_bytes_per_call: 64 << 20,
            produce_records_per_send: 10_000,
        }
    }
}

/// Largest `memory_mb`: a wasm32 memory cannot exceed 4 GiB.
const MAX_MEMORY_MB: u64 = 4096;

impl ComponentConfig {
    /// This component's retry settings: its own, else the pipeline's.
    pub fn retry_or<'a>(&'a self, pipeline: &'a RetryConfig) -> &'a RetryConfig {
        self.retry.as_ref().unwrap_or(pipeline)
    }

    /// How the flow calls this component if it is a sink.
    pub fn delivery(&self) -> Delivery<'_> {
        Delivery {
            max_in_flight: self.max_in_flight,
            adaptive: self.adaptive_concurrency,
            ordering: self.ordering,
            batch: self.batch.as_ref(),
            rate_limit: self.rate_limit.as_ref().map(RateLimit::rate),
        }
    }

    /// Checks the delivery settings (see [`Delivery`]) of the component
    /// `here`, a sink if `is_sink`.
    pub(super) fn validate_delivery(&self, here: &str, is_sink: bool) -> Result<(), ConfigError> {
        self.delivery().validate(here, is_sink)?;
        match &self.rate_limit {
            Some(r) => r.validate(here),
            None => Ok(()),
        }
    }

    /// The guest configuration as the `(key, value)` list of the WIT
    /// `config` type: strings as they are, other scalars as TOML text,
    /// arrays and tables as JSON.
    pub fn guest_config(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), scalar_or_json(v)))
            .collect()
    }
}

/// What a component's checks need to know of the pipeline it is in.
pub(super) struct InPipeline<'a> {
    /// The pipeline's name.
    pub name: &'a str,
    /// The topics it reads.
    pub topics: &'a [String],
    /// Whether it has a dead-letter topic.
    pub has_dead_letter: bool,
}

impl ComponentConfig {
    /// Checks this component, the `index`-th `kind` (`interceptor` or
    /// `sink`) of `pipeline`, which `here` names. `names` holds the names of
    /// the pipeline's components checked before it.
    pub(super) fn validate<'a>(
        &'a self,
        pipeline: &InPipeline<'_>,
        here: &str,
        kind: &str,
        index: usize,
        names: &mut HashSet<&'a str>,
    ) -> Result<(), ConfigError> {
        let here = if self.name.trim().is_empty() {
            format!("{here}, {kind} #{} (unnamed)", index + 1)
        } else {
            format!("{here}, {kind} `{}`", self.name)
        };
        let bad = |key: &str, message: String| Err(invalid(Some(here.clone()), key, message));
        if let Some(r) = &self.retry {
            r.validate(&here, "retry")?;
        }
        self.validate_delivery(&here, kind == "sink")?;
        match self.on_failure {
            FailurePolicy::FailOpen if kind == "sink" => {
                return bad(
                    "on_failure",
                    "`fail-open` is for interceptors (a sink cannot pass an event on); use \
                     block, dead-letter or skip"
                        .into(),
                );
            }
            FailurePolicy::DeadLetter if !pipeline.has_dead_letter => {
                return bad(
                    "on_failure",
                    "`dead-letter` needs a dead-letter topic: add [pipeline.dead_letter] with \
                     topic = \"...\""
                        .into(),
                );
            }
            _ => {}
        }
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if !names.insert(&self.name) {
            return bad(
                "name",
                format!(
                    "`{}` is used twice in pipeline `{}`",
                    self.name, pipeline.name
                ),
            );
        }
        let l = &self.limits;
        if !(1..=MAX_MEMORY_MB).contains(&l.memory_mb) {
            return bad(
                "limits.memory_mb",
                format!("must be 1 to {MAX_MEMORY_MB} (a wasm32 memory is at most 4 GiB)"),
            );
        }
        if !(1..=MAX_WAIT_MS).contains(&l.call_timeout_ms) {
            return bad(
                "limits.call_timeout_ms",
                format!("must be 1 to {MAX_WAIT_MS} (one hour)"),
            );
        }
        if l.fuel == Some(0) {
            return bad("limits.fuel", "must be at least 1 (or left out)".into());
        }
        if l.max_instances == 0 || l.max_tables == 0 {
            return bad(
                "limits",
                "max_instances and max_tables must be at least 1".into(),
            );
        }
        let b = &self.budgets;
        for (key, value) in [
            ("log_lines_per_s", u64::from(b.log_lines_per_s)),
            ("log_bytes_per_s", b.log_bytes_per_s),
            ("output_bytes_per_call", b.output_bytes_per_call),
            (
                "produce_records_per_send",
                u64::from(b.produce_records_per_send),
            ),
        ] {
            if value == 0 {
                return bad(
                    &format!("budgets.{key}"),
                    "must be at least 1 (leave it out for the default)".into(),
                );
            }
        }
        for name in self.env.keys().chain(&self.env_from_host) {
            if name.is_empty() || name.contains(['=', '\0']) {
                return bad(
                    "env",
                    format!("{name:?} is not a valid environment variable name"),
                );
            }
        }
        for (h, host) in self.http_allow.iter().enumerate() {
            if let Err(message) = HostPattern::parse(host) {
                return bad(&format!("http_allow[{h}]"), message);
            }
        }
        if self.schema_registry_register && !self.schema_registry {
            return bad(
                "schema_registry_register",
                "needs `schema_registry = true` too: registering is on top of reading".into(),
            );
        }
        for (t, topic) in self.kafka_produce.iter().enumerate() {
            let key = format!("kafka_produce[{t}]");
            if topic.trim().is_empty() {
                return bad(&key, "must not be empty".into());
            }
            if pipeline.topics.contains(topic) {
                return bad(
                    &key,
                    format!(
                        "`{topic}` is a topic pipeline `{}` reads: writing to it would feed the \
                         pipeline its own output",
                        pipeline.name
                    ),
                );
            }
        }
        for (d, grant) in self.dirs.iter().enumerate() {
            if !grant.guest.starts_with('/') {
                return bad(
                    &format!("dirs[{d}].guest"),
                    format!(
                        "must be an absolute guest path like \"/out\", got {:?}",
                        grant.guest
                    ),
                );
            }
        }
        Ok(())
    }
}

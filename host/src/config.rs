//! The TOML configuration: parsing, defaults and validation.
//!
//! Everything is checked up front, before a consumer is created, so that a
//! mistake is reported once, with the key that holds it, rather than as a
//! failure minutes into a run. Unknown keys are errors: a misspelt option that
//! is silently ignored is how at-least-once pipelines quietly lose their
//! guarantees.

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An error in the configuration file, naming where and what.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not fit the schema.
    #[error("invalid config file {path}:\n{message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid config: `{key}`: {message}")]
    Invalid {
        /// The key path, e.g. `pipeline[0].batch.max_events`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Connection settings shared by every pipeline.
    pub kafka: KafkaConfig,
    /// The pipelines; each is its own consumer group member.
    #[serde(rename = "pipeline")]
    pub pipelines: Vec<PipelineConfig>,
    /// The admin HTTP endpoint (`POST /reload`); off unless configured.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Hot reload of components and their settings.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// The compiled-component cache.
    #[serde(default)]
    pub cache: CacheConfig,
}

/// Where compiled components are kept between starts and reloads (see
/// [`crate::runtime::cache`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether to use the cache.
    pub enabled: bool,
    /// The directory; by default `$FLUMEN_CACHE_DIR`, systemd's
    /// `$CACHE_DIRECTORY`, `$XDG_CACHE_HOME/flumen` or `~/.cache/flumen`.
    pub dir: Option<PathBuf>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
        }
    }
}

/// The admin HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `address:port` to listen on, e.g. `"127.0.0.1:9464"`. It has no
    /// authentication: keep it on loopback or a private interface.
    pub listen: String,
}

/// When flumen reloads components and the config file while running.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Reload when a component file or the config file changes on disk.
    /// SIGHUP and `POST /reload` work either way.
    pub watch: bool,
    /// How long the files must stay quiet after a change before the
    /// reload starts, so that a file still being written is not loaded.
    pub debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce_ms: 300,
        }
    }
}

/// How to reach Kafka.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` of the brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// librdkafka options passed through as they are (for example
    /// `"session.timeout.ms" = 6000` or `"security.protocol" = "ssl"`).
    #[serde(default)]
    pub options: BTreeMap<String, toml::Value>,
}

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
    10_000
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

/// How often and how patiently a failed call or event is tried again, with
/// exponential backoff and jitter, before the component's `on_failure`
/// policy applies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Tries in all (the first one included) before `on_failure` applies.
    /// Under `block` the tries go on after that, at the longest backoff.
    pub attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff_ms: u64,
    /// Upper bound of the wait.
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
        }
    }
}

/// What a component does with an event once its retries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Stop the partition at the event: commit nothing past it and keep
    /// retrying until it succeeds (or flumen is stopped). Loses nothing.
    #[default]
    Block,
    /// Write the event to the pipeline's dead-letter topic, with headers
    /// saying why, and finalize it once the broker acknowledged the write.
    DeadLetter,
    /// Finalize the event without delivering it; it is counted and logged.
    /// Opt-in: the event is gone from the pipeline.
    Skip,
    /// Interceptors only: pass the event on unchanged, as if the
    /// interceptor had kept it.
    FailOpen,
}

impl FailurePolicy {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Block => "block",
            FailurePolicy::DeadLetter => "dead-letter",
            FailurePolicy::Skip => "skip",
            FailurePolicy::FailOpen => "fail-open",
        }
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
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Retries for this component; without it, the pipeline's `retry`.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// What happens to an event once the retries are used up.
    #[serde(default)]
    pub on_failure: FailurePolicy,
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

/// Largest `memory_mb`: a wasm32 memory cannot exceed 4 GiB.
const MAX_MEMORY_MB: u64 = 4096;
/// Largest `call_timeout_ms` and `max_backoff_ms`: one hour.
const MAX_WAIT_MS: u64 = 3_600_000;

impl ComponentConfig {
    /// This component's retry settings: its own, else the pipeline's.
    pub fn retry_or<'a>(&'a self, pipeline: &'a RetryConfig) -> &'a RetryConfig {
        self.retry.as_ref().unwrap_or(pipeline)
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

fn scalar_or_json(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        // serde_json can represent every TOML array and table.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// librdkafka options flumen sets itself: the at-least-once guarantee depends
/// on them, so the config may not override them.
const MANAGED_OPTIONS: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
];

impl Config {
    /// Reads, parses and validates a config file. Relative paths in it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text; relative paths resolve against
    /// `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        config.validate()?;
        config.resolve_paths(base);
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in &mut self.pipelines {
            for c in p.interceptors.iter_mut().chain(p.sinks.iter_mut()) {
                c.component = base.join(&c.component);
                for d in &mut c.dirs {
                    d.host = base.join(&d.host);
                }
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return Err(invalid(
                "kafka.bootstrap_servers",
                "must name at least one broker, e.g. \"localhost:9092\"",
            ));
        }
        for (key, value) in &self.kafka.options {
            let at = format!("kafka.options.\"{key}\"");
            if MANAGED_OPTIONS.contains(&key.as_str()) {
                return Err(invalid(
                    at,
                    "is managed by flumen (offsets are committed only after delivery); remove it \
                     (set group_id per pipeline, bootstrap_servers under [kafka])",
                ));
            }
            if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) {
                return Err(invalid(at, "must be a string, number or boolean"));
            }
        }
        if self.pipelines.is_empty() {
            return Err(invalid("pipeline", "at least one [[pipeline]] is required"));
        }
        let mut names = HashSet::new();
        for (i, p) in self.pipelines.iter().enumerate() {
            let at = |k: &str| format!("pipeline[{i}].{k}");
            if p.name.trim().is_empty() {
                return Err(invalid(at("name"), "must not be empty"));
            }
            if !names.insert(&p.name) {
                return Err(invalid(
                    at("name"),
                    format!("`{}` is used by two pipelines", p.name),
                ));
            }
            if p.topics.is_empty() || p.topics.iter().any(|t| t.trim().is_empty()) {
                return Err(invalid(
                    at("topics"),
                    "must list at least one non-empty topic",
                ));
            }
            if p.group_id.trim().is_empty() {
                return Err(invalid(at("group_id"), "must not be empty"));
            }
            if p.batch.max_events == 0 {
                return Err(invalid(at("batch.max_events"), "must be at least 1"));
            }
            if p.batch.max_bytes == 0 {
                return Err(invalid(at("batch.max_bytes"), "must be at least 1"));
            }
            if p.commit.interval_ms == 0 {
                return Err(invalid(at("commit.interval_ms"), "must be at least 1"));
            }
            validate_retry(at("retry"), &p.retry)?;
            if let Some(dl) = &p.dead_letter {
                if dl.topic.trim().is_empty() {
                    return Err(invalid(at("dead_letter.topic"), "must not be empty"));
                }
                if p.topics.contains(&dl.topic) {
                    return Err(invalid(
                        at("dead_letter.topic"),
                        format!(
                            "`{}` is also consumed by this pipeline; dead letters would come \
                             back through it",
                            dl.topic
                        ),
                    ));
                }
            }
            if p.max_queued_events < p.batch.max_events {
                return Err(invalid(
                    at("max_queued_events"),
                    format!("must be at least batch.max_events ({})", p.batch.max_events),
                ));
            }
            if p.max_queued_bytes < p.batch.max_bytes {
                return Err(invalid(
                    at("max_queued_bytes"),
                    format!("must be at least batch.max_bytes ({})", p.batch.max_bytes),
                ));
            }
            if p.sinks.is_empty() {
                return Err(invalid(
                    at("sink"),
                    "at least one [[pipeline.sink]] is required",
                ));
            }
            let mut component_names = HashSet::new();
            let components = p
                .interceptors
                .iter()
                .enumerate()
                .map(|(j, c)| (format!("interceptor[{j}]"), c))
                .chain(
                    p.sinks
                        .iter()
                        .enumerate()
                        .map(|(j, c)| (format!("sink[{j}]"), c)),
                );
            for (kind, c) in components {
                let at = |k: &str| format!("pipeline[{i}].{kind}.{k}");
                if let Some(r) = &c.retry {
                    validate_retry(at("retry"), r)?;
                }
                match c.on_failure {
                    FailurePolicy::FailOpen if kind.starts_with("sink") => {
                        return Err(invalid(
                            at("on_failure"),
                            "`fail-open` is for interceptors (a sink cannot pass an event on); \
                             use block, dead-letter or skip",
                        ));
                    }
                    FailurePolicy::DeadLetter if p.dead_letter.is_none() => {
                        return Err(invalid(
                            at("on_failure"),
                            "`dead-letter` needs a dead-letter topic: add \
                             [pipeline.dead_letter] with topic = \"...\"",
                        ));
                    }
                    _ => {}
                }
                if c.name.trim().is_empty() {
                    return Err(invalid(at("name"), "must not be empty"));
                }
                if !component_names.insert(&c.name) {
                    return Err(invalid(
                        at("name"),
                        format!("`{}` is used twice in pipeline `{}`", c.name, p.name),
                    ));
                }
                if !(1..=MAX_MEMORY_MB).contains(&c.limits.memory_mb) {
                    return Err(invalid(
                        at("limits.memory_mb"),
                        format!("must be 1 to {MAX_MEMORY_MB} (a wasm32 memory is at most 4 GiB)"),
                    ));
                }
                if !(1..=MAX_WAIT_MS).contains(&c.limits.call_timeout_ms) {
                    return Err(invalid(
                        at("limits.call_timeout_ms"),
                        format!("must be 1 to {MAX_WAIT_MS} (one hour)"),
                    ));
                }
                if c.limits.fuel == Some(0) {
                    return Err(invalid(
                        at("limits.fuel"),
                        "must be at least 1 (or left out)",
                    ));
                }
                if c.limits.max_instances == 0 || c.limits.max_tables == 0 {
                    return Err(invalid(
                        at("limits"),
                        "max_instances and max_tables must be at least 1",
                    ));
                }
                for name in c.env.keys().chain(&c.env_from_host) {
                    if name.is_empty() || name.contains(['=', '\0']) {
                        return Err(invalid(
                            at("env"),
                            format!("{name:?} is not a valid environment variable name"),
                        ));
                    }
                }
                for (h, host) in c.http_allow.iter().enumerate() {
                    if let Err(message) = crate::runtime::HostPattern::parse(host) {
                        return Err(invalid(at(&format!("http_allow[{h}]")), message));
                    }
                }
                for (t, topic) in c.kafka_produce.iter().enumerate() {
                    if topic.trim().is_empty() {
                        return Err(invalid(
                            at(&format!("kafka_produce[{t}]")),
                            "must not be empty",
                        ));
                    }
                    if p.topics.contains(topic) {
                        return Err(invalid(
                            at(&format!("kafka_produce[{t}]")),
                            format!(
                                "`{topic}` is a topic pipeline `{}` reads: writing to it would \
                                 feed the pipeline its own output",
                                p.name
                            ),
                        ));
                    }
                }
                for (d, grant) in c.dirs.iter().enumerate() {
                    if !grant.guest.starts_with('/') {
                        return Err(invalid(
                            at(&format!("dirs[{d}].guest")),
                            format!(
                                "must be an absolute guest path like \"/out\", got {:?}",
                                grant.guest
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether any component sets `limits.fuel` (the engine must then count
    /// fuel for every guest).
    pub fn uses_fuel(&self) -> bool {
        self.pipelines
            .iter()
            .flat_map(|p| p.interceptors.iter().chain(&p.sinks))
            .any(|c| c.limits.fuel.is_some())
    }

    /// The shortest `limits.call_timeout_ms` of the components that may
    /// produce to Kafka (the default if none may): how long the host's
    /// producer keeps trying a record.
    pub fn shortest_produce_timeout(&self) -> Duration {
        let ms = self
            .pipelines
            .iter()
            .flat_map(|p| p.interceptors.iter().chain(&p.sinks))
            .filter(|c| !c.kafka_produce.is_empty())
            .map(|c| c.limits.call_timeout_ms)
            .min()
            .unwrap_or(Limits::default().call_timeout_ms);
        Duration::from_millis(ms)
    }

    /// The librdkafka options from `[kafka.options]`, as strings.
    pub fn kafka_options(&self) -> impl Iterator<Item = (&str, String)> {
        self.kafka.option_strings()
    }
}

impl KafkaConfig {
    /// The librdkafka options from `options`, as strings.
    pub fn option_strings(&self) -> impl Iterator<Item = (&str, String)> {
        self.options
            .iter()
            .map(|(k, v)| (k.as_str(), scalar_or_json(v)))
    }
}

fn validate_retry(at: String, r: &RetryConfig) -> Result<(), ConfigError> {
    if r.attempts == 0 {
        return Err(invalid(
            format!("{at}.attempts"),
            "must be at least 1 (the first try counts)",
        ));
    }
    if r.initial_backoff_ms == 0
        || r.max_backoff_ms < r.initial_backoff_ms
        || r.max_backoff_ms > MAX_WAIT_MS
    {
        return Err(invalid(
            at,
            format!(
                "need 1 <= initial_backoff_ms <= max_backoff_ms <= {MAX_WAIT_MS}, got {} and {}",
                r.initial_backoff_ms, r.max_backoff_ms
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        [[pipeline]]
        name = "p"
        topics = ["t"]
        group_id = "g"
        [[pipeline.sink]]
        name = "s"
        component = "s.wasm"
    "#;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("/base"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = Config::parse(MINIMAL, Path::new("/base")).unwrap();
        let p = &c.pipelines[0];
        assert_eq!(p.batch.max_events, 500);
        assert_eq!(p.sinks[0].component, PathBuf::from("/base/s.wasm"));
        assert_eq!(p.sinks[0].limits.memory_mb, 256);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&MINIMAL.replace("group_id = \"g\"", "group_id = \"g\"\nbogus = 1"));
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn managed_librdkafka_option_is_refused() {
        let text = MINIMAL.replace(
            "bootstrap_servers = \"localhost:9092\"",
            "bootstrap_servers = \"x:1\"\noptions = { \"enable.auto.commit\" = true }",
        );
        let e = err(&text);
        assert!(
            e.contains("enable.auto.commit") && e.contains("managed by flumen"),
            "{e}"
        );
    }

    #[test]
    fn zero_batch_and_duplicate_names_are_refused() {
        let e = err(&format!("{MINIMAL}\n[pipeline.batch]\nmax_events = 0"));
        assert!(e.contains("pipeline[0].batch.max_events"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[[pipeline.sink]]\nname = \"s\"\ncomponent = \"x\""
        ));
        assert!(
            e.contains("pipeline[0].sink[1].name") && e.contains("used twice"),
            "{e}"
        );
    }

    #[test]
    fn guest_config_renders_scalars_and_json() {
        let text =
            format!("{MINIMAL}\n[pipeline.sink.config]\npath = \"/o\"\nn = 3\nlist = [1, 2]");
        let c = Config::parse(&text, Path::new("/")).unwrap();
        let cfg = c.pipelines[0].sinks[0].guest_config();
        assert!(cfg.contains(&("path".into(), "/o".into())));
        assert!(cfg.contains(&("n".into(), "3".into())));
        assert!(cfg.contains(&("list".into(), "[1,2]".into())));
    }

    #[test]
    fn failure_policies_are_checked_per_component() {
        let dl = format!("{MINIMAL}\non_failure = \"dead-letter\"");
        let e = err(&dl);
        assert!(
            e.contains("pipeline[0].sink[0].on_failure") && e.contains("dead-letter topic"),
            "{e}"
        );
        let with_topic = dl.replace(
            "group_id = \"g\"",
            "group_id = \"g\"\ndead_letter = { topic = \"dlq\" }",
        );
        let c = Config::parse(&with_topic, Path::new("/")).unwrap();
        assert_eq!(
            c.pipelines[0].sinks[0].on_failure,
            FailurePolicy::DeadLetter
        );
        let e = err(&format!("{MINIMAL}\non_failure = \"fail-open\""));
        assert!(e.contains("for interceptors"), "{e}");
        let e = err(&format!("{MINIMAL}\non_failure = \"retry-forever\""));
        assert!(e.contains("unknown variant `retry-forever`"), "{e}");
        let e = err(&with_topic.replace("\"dlq\"", "\"t\""));
        assert!(e.contains("also consumed by this pipeline"), "{e}");
    }

    #[test]
    fn kafka_produce_grants_are_checked() {
        let text =
            format!("{MINIMAL}\nkafka_produce = [\"copy\"]\nlimits = {{ call_timeout_ms = 5000 }}");
        let c = Config::parse(&text, Path::new("/")).unwrap();
        assert_eq!(c.pipelines[0].sinks[0].kafka_produce, ["copy"]);
        assert_eq!(c.shortest_produce_timeout(), Duration::from_secs(5));
        let e = err(&format!("{MINIMAL}\nkafka_produce = [\"t\"]"));
        assert!(
            e.contains("pipeline[0].sink[0].kafka_produce[0]") && e.contains("its own output"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\nkafka_produce = [\" \"]"));
        assert!(e.contains("must not be empty"), "{e}");
    }

    #[test]
    fn component_retry_overrides_the_pipeline_default() {
        let text = format!("{MINIMAL}\nretry = {{ attempts = 2 }}");
        let c = Config::parse(&text, Path::new("/")).unwrap();
        let p = &c.pipelines[0];
        let r = p.sinks[0].retry_or(&p.retry);
        assert_eq!((r.attempts, r.initial_backoff_ms), (2, 100));
        let e = err(&format!("{MINIMAL}\nretry = {{ attempts = 0 }}"));
        assert!(e.contains("pipeline[0].sink[0].retry.attempts"), "{e}");
        let e = err(&format!("{MINIMAL}\nlimits = {{ memory_mb = 5000 }}"));
        assert!(e.contains("limits.memory_mb"), "{e}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Keys the loader knows, so that mutations reach validation and
        /// not only the parser.
        const KEYS: &[&str] = &[
            "name",
            "topics",
            "group_id",
            "component",
            "on_failure",
            "max_queued_events",
            "max_queued_bytes",
            "drain_timeout_ms",
            "batch",
            "commit",
            "retry",
            "limits",
            "dirs",
            "config",
            "dead_letter",
            "kafka_produce",
            "options",
            "bootstrap_servers",
            "attempts",
            "memory_mb",
            "call_timeout_ms",
            "max_calls_per_instance",
            "read_only",
            "guest",
            "host",
        ];

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|i| i.to_string()),
                any::<u64>().prop_map(|i| i.to_string()),
                "[a-z\\-\\.%{}/ ]{0,12}".prop_map(|s| format!("{s:?}")),
                Just("true".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
                Just("[\"\"]".to_owned()),
                Just("{ max_events = 0, max_wait_ms = -1 }".to_owned()),
                Just("{ attempts = 4294967295, initial_backoff_ms = 1 }".to_owned()),
                Just("{ memory_mb = 18446744073709551615 }".to_owned()),
                Just("[{ host = \"..\", guest = \"\" }]".to_owned()),
                Just("\"dead-letter\"".to_owned()),
                Just("\"fail-open\"".to_owned()),
                Just("{ topic = \"t\" }".to_owned()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Arbitrary text: an error or a config, never a panic.
            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
                let _ = Config::parse(&text, Path::new("/"));
            }

            /// A valid config with lines inserted, replaced or cut: an
            /// error that names a problem, or a config, never a panic.
            #[test]
            fn mutated_configs_never_panic(
                edits in prop::collection::vec(
                    (0usize..20, prop::sample::select(KEYS), value(), 0u8..3),
                    1..6,
                ),
            ) {
                let mut lines: Vec<String> = MINIMAL.lines().map(str::to_owned).collect();
                for (at, key, value, op) in edits {
                    let at = at % (lines.len() + 1);
                    let line = format!("{key} = {value}");
                    match op {
                        0 => lines.insert(at, line),
                        1 if at < lines.len() => lines[at] = line,
                        _ => lines.truncate(at.max(1)),
                    }
                }
                match Config::parse(&lines.join("\n"), Path::new("/")) {
                    Ok(c) => prop_assert!(!c.pipelines.is_empty()),
                    Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
                }
            }
        }
    }
}

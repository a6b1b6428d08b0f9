//! The TOML configuration: parsing, defaults and validation, one file per
//! section: [`KafkaConfig`], [`PipelineConfig`] (with its batching, commits
//! and dead letters), [`ComponentConfig`] (a guest's grants and limits),
//! and the failure handling both of them set ([`RetryConfig`],
//! [`FailurePolicy`]).
//!
//! Everything is checked up front, before a consumer is created, so that a
//! mistake is reported once, with the pipeline, component and key that
//! hold it, rather than as a failure minutes into a run. Unknown keys are
//! errors: a misspelt option that is silently ignored is how at-least-once
//! pipelines quietly lose their guarantees.

mod component;
mod delivery;
pub mod exactly_once;
mod failure;
mod host_pattern;
pub mod interpolate;
mod kafka;
mod pipeline;
mod schema_registry;
pub mod secret;
pub mod wording;

pub use component::{Budgets, ComponentConfig, DirGrant, Limits};
pub use delivery::{Delivery, DeliveryOrdering, Rate, RateLimit, SinkBatchConfig, MAX_IN_FLIGHT};
pub use failure::{FailurePolicy, RetryConfig};
pub use host_pattern::HostPattern;
pub use kafka::KafkaConfig;
pub use pipeline::{BatchConfig, CommitConfig, DeadLetterConfig, PipelineConfig};
pub use schema_registry::SchemaRegistryConfig;

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest `call_timeout_ms` and `max_backoff_ms`: one hour.
const MAX_WAIT_MS: u64 = 3_600_000;

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
    #[error("invalid config: {}`{key}`: {message}", within.as_deref().map(|w| format!("{w}: ")).unwrap_or_default())]
    Invalid {
        /// The pipeline and component holding the key, by name, e.g.
        /// ``pipeline `orders`, sink `archive` ``; `None` for top-level keys.
        within: Option<String>,
        /// The key inside it, e.g. `batch.max_events`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn invalid(
    within: Option<String>,
    key: impl Into<String>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        within,
        key: key.into(),
        message: message.into(),
    }
}

/// A guest config value or librdkafka option as the string handed on:
/// strings as they are, other scalars as TOML text, arrays and tables as
/// JSON.
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
    /// The Confluent Schema Registry, for components granted
    /// `schema_registry = true`; none by default.
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistryConfig>,
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
                message: wording::not_toml(path, &text).unwrap_or(message),
            },
            other => other,
        })
    }

    /// Parses and validates config text, filling `${…}` placeholders from
    /// the environment and secret files; relative paths resolve against
    /// `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, base, &interpolate::Environment)
    }

    /// [`Config::parse`] with the placeholders' values taken from `sources`.
    pub fn parse_with(
        text: &str,
        base: &Path,
        sources: &dyn interpolate::Sources,
    ) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: wording::humanize(&e.to_string()),
        };
        // The schema is checked on the text as written, so that its errors
        // carry line and column; placeholders only ever stand in strings,
        // so filling them cannot change what fits the schema.
        toml::from_str::<Config>(text).map_err(parse_error)?;
        let mut tree: toml::Value = toml::from_str(text).map_err(parse_error)?;
        interpolate::interpolate(&mut tree, sources)?;
        let mut config: Config = tree.try_into().map_err(parse_error)?;
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
        if let Some(ca) = self
            .schema_registry
            .as_mut()
            .and_then(|r| r.ca_file.as_mut())
        {
            *ca = base.join(&*ca);
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        if self.pipelines.is_empty() {
            return Err(invalid(
                None,
                "pipeline",
                "at least one [[pipeline]] is required",
            ));
        }
        let mut names = HashSet::new();
        for (i, p) in self.pipelines.iter().enumerate() {
            p.validate(i, &mut names)?;
        }
        match &self.schema_registry {
            Some(registry) => registry.validate()?,
            None => {
                if let Some((p, c)) = self.pipelines.iter().find_map(|p| {
                    let c = p
                        .interceptors
                        .iter()
                        .chain(&p.sinks)
                        .find(|c| c.schema_registry)?;
                    Some((p, c))
                }) {
                    return Err(invalid(
                        Some(format!("pipeline `{}`, component `{}`", p.name, c.name)),
                        "schema_registry",
                        "is granted, but the file has no [schema_registry] section saying where \
                         the registry is; add one with `urls`",
                    ));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid config, for the sections' own tests.
    pub(super) const MINIMAL: &str = r#"
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
        assert!(e.contains("pipeline `p`: `batch.max_events`"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[[pipeline.sink]]\nname = \"s\"\ncomponent = \"x\""
        ));
        assert!(
            e.contains("pipeline `p`, sink `s`: `name`") && e.contains("used twice"),
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
            e.contains("pipeline `p`, sink `s`: `on_failure`") && e.contains("dead-letter topic"),
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
            e.contains("pipeline `p`, sink `s`: `kafka_produce[0]`")
                && e.contains("its own output"),
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
        // An outage is waited out for 5 minutes by default.
        assert_eq!(r.max_elapsed_ms, 300_000);
        let e = err(&format!(
            "{MINIMAL}\nretry = {{ max_elapsed_ms = 604800001 }}"
        ));
        assert!(
            e.contains("`retry.max_elapsed_ms`") && e.contains("on_failure = \"block\""),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\nretry = {{ attempts = 0 }}"));
        assert!(
            e.contains("pipeline `p`, sink `s`: `retry.attempts`"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\nlimits = {{ memory_mb = 5000 }}"));
        assert!(e.contains("limits.memory_mb"), "{e}");
    }

    #[test]
    fn budgets_default_high_and_refuse_zero() {
        let c = Config::parse(MINIMAL, Path::new("/")).unwrap();
        assert_eq!(c.pipelines[0].sinks[0].budgets, Budgets::default());
        let text = format!("{MINIMAL}\nbudgets = {{ log_lines_per_s = 5 }}");
        let c = Config::parse(&text, Path::new("/")).unwrap();
        let b = &c.pipelines[0].sinks[0].budgets;
        assert_eq!((b.log_lines_per_s, b.log_bytes_per_s), (5, 32 * 1024));
        let e = err(&format!(
            "{MINIMAL}\nbudgets = {{ output_bytes_per_call = 0 }}"
        ));
        assert!(
            e.contains("pipeline `p`, sink `s`: `budgets.output_bytes_per_call`")
                && e.contains("at least 1"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\nbudgets = {{ log_per_s = 5 }}"));
        assert!(e.contains("unknown field `log_per_s`"), "{e}");
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
            "budgets",
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

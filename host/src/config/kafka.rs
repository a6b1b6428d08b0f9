//! `[kafka]`: how to reach the cluster, and the librdkafka options passed
//! through to every client flumen creates on it.

use super::{invalid, scalar_or_json, ConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    /// librdkafka options for flumen's producers only (dead letters and the
    /// Kafka sink's records), e.g. `"compression.type" = "zstd"`.
    #[serde(default)]
    pub producer_options: BTreeMap<String, toml::Value>,
}

/// librdkafka options flumen sets itself: the at-least-once guarantee depends
/// on them, so the config may not override them.
const MANAGED_OPTIONS: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
];

impl KafkaConfig {
    /// The librdkafka options from `options`, as strings.
    pub fn option_strings(&self) -> impl Iterator<Item = (&str, String)> {
        self.options
            .iter()
            .map(|(k, v)| (k.as_str(), scalar_or_json(v)))
    }

    /// The librdkafka options from `producer_options`, as strings.
    pub fn producer_option_strings(&self) -> impl Iterator<Item = (&str, String)> {
        self.producer_options
            .iter()
            .map(|(k, v)| (k.as_str(), scalar_or_json(v)))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(invalid(
                None,
                "kafka.bootstrap_servers",
                "must name at least one broker, e.g. \"localhost:9092\"",
            ));
        }
        let all = self.options.iter().map(|kv| ("options", kv)).chain(
            self.producer_options
                .iter()
                .map(|kv| ("producer_options", kv)),
        );
        for (section, (key, value)) in all {
            let at = format!("kafka.{section}.\"{key}\"");
            if MANAGED_OPTIONS.contains(&key.as_str()) {
                return Err(invalid(
                    None,
                    at,
                    "is managed by flumen (offsets are committed only after delivery); remove it \
                     (set group_id per pipeline, bootstrap_servers under [kafka])",
                ));
            }
            if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) {
                return Err(invalid(None, at, "must be a string, number or boolean"));
            }
        }
        Ok(())
    }
}

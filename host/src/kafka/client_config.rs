//! The librdkafka settings of every client flumen creates, in one place, and
//! their validation by librdkafka itself, so that `flumen check` refuses
//! what `flumen run` would (an unknown option, a bad value, a missing CA
//! file, a SASL mechanism this build lacks) before anything connects.

use super::fence;
use crate::config::secret::{self, REDACTED};
use crate::config::wording::closest;
use crate::config::{Config, ConfigError, KafkaConfig, PipelineConfig};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use std::ffi::CStr;
use std::time::Duration;

/// The consumer settings of `pipeline`: flumen's defaults, then
/// `[kafka.options]`, then what the at-least-once guarantee depends on.
pub fn consumer(config: &Config, pipeline: &PipelineConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    // Operator-friendly defaults that [kafka.options] may override.
    cc.set("auto.offset.reset", "earliest");
    // Bound librdkafka's own prefetch; flumen queues per partition too.
    cc.set("queued.max.messages.kbytes", "65536");
    // Once that prefetch queue is full, librdkafka waits this long
    // before fetching again (default 1000 ms). flumen drains it in bursts,
    // so with small events the default left the pipeline idle most of
    // every second: 137k → 458k events/s of 100 bytes in the benchmark.
    cc.set("fetch.queue.backoff.ms", "10");
    // High watermarks, for the lag in `/metrics` and the progress
    // lines; parsing them every 5 s costs next to nothing.
    cc.set("statistics.interval.ms", "5000");
    for (k, v) in config.kafka.option_strings() {
        cc.set(k, v);
    }
    if fenced(pipeline) {
        // The fence reads the member's contact with its coordinator from
        // these; they must come often whatever the options say.
        let every = fence::STATISTICS_INTERVAL.as_millis().to_string();
        cc.set("statistics.interval.ms", every);
    }
    cc.set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", &pipeline.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    cc
}

/// Whether `pipeline`'s members fence themselves (see [`fence`]): those
/// with a sink that sets `exactly_once = true`.
pub fn fenced(pipeline: &PipelineConfig) -> bool {
    pipeline
        .sinks
        .iter()
        .any(crate::config::exactly_once::declared)
}

/// What the fence of `pipeline` is derived from, if its members fence
/// themselves: the group's session and heartbeat (librdkafka's defaults
/// unless `[kafka.options]` sets them) and its sinks' longest call.
pub fn fence_timing(config: &Config, pipeline: &PipelineConfig) -> Option<fence::Timing> {
    if !fenced(pipeline) {
        return None;
    }
    let cc = consumer(config, pipeline);
    let ms = |key: &str, default: u64| {
        Duration::from_millis(cc.get(key).and_then(|v| v.parse().ok()).unwrap_or(default))
    };
    let call = pipeline
        .sinks
        .iter()
        .map(|s| s.limits.call_timeout_ms)
        .max()
        .unwrap_or_default();
    Some(fence::Timing {
        session: ms("session.timeout.ms", 45_000),
        heartbeat: ms("heartbeat.interval.ms", 3_000),
        call: Duration::from_millis(call),
    })
}

/// The settings of a producer whose every write is acknowledged by all
/// replicas: `[kafka.options]`, then `[kafka.producer_options]` (say,
/// `compression.type`), then what waiting for acknowledgements needs.
pub fn producer(kafka: &KafkaConfig, message_timeout: Duration) -> ClientConfig {
    let mut cc = ClientConfig::new();
    for (k, v) in kafka
        .option_strings()
        .chain(kafka.producer_option_strings())
    {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &kafka.bootstrap_servers)
        // Every replica must have the record before its event's offset may
        // be committed.
        .set("acks", "all")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            message_timeout.as_millis().max(10).to_string(),
        )
        // One request in flight per broker keeps a partition's records in
        // the order they were sent even when librdkafka retries one.
        .set("max.in.flight.requests.per.connection", "1")
        // A missing topic is a configuration error to report, not something
        // to create with the broker's defaults.
        .set("allow.auto.create.topics", "false");
    cc
}

/// Has librdkafka check every option of every client `config` would create:
/// each key and value on its own, then each client as a whole (files it
/// names, mechanisms this build supports). Nothing connects: the clients
/// are made without brokers to bootstrap from, and say nothing.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let kafka = &config.kafka;
    for (key, value) in kafka
        .option_strings()
        .chain(kafka.producer_option_strings())
    {
        let names_a_file = key.starts_with("ssl.") && key.ends_with(".location");
        if names_a_file && value != "probe" && !std::path::Path::new(&value).exists() {
            return Err(ConfigError::Invalid {
                within: None,
                key: format!("kafka.options.\"{key}\""),
                message: format!("{value} does not exist; give the path of a PEM file"),
            });
        }
    }
    for (section, options) in [
        ("kafka.options", kafka.option_strings().collect::<Vec<_>>()),
        (
            "kafka.producer_options",
            kafka.producer_option_strings().collect(),
        ),
    ] {
        for (key, value) in options {
            let mut one = ClientConfig::new();
            one.set(key, &value);
            if let Err(e) = one.create_native_config() {
                return Err(option_error(section, key, &e));
            }
        }
    }
    for p in &config.pipelines {
        if let Some(Err(message)) = fence_timing(config, p).map(|t| t.limit()) {
            return Err(ConfigError::Invalid {
                within: Some(format!(
                    "pipeline `{}` (a sink sets exactly_once = true)",
                    p.name
                )),
                key: "kafka.options".to_owned(),
                message,
            });
        }
        let mut cc = consumer(config, p);
        cc.set("bootstrap.servers", "");
        cc.create_with_context::<_, BaseConsumer<Quiet>>(Quiet)
            .map_err(|e| client_error("kafka.options", "the consumer", &e))?;
    }
    let mut cc = producer(kafka, Duration::from_secs(30));
    cc.set("bootstrap.servers", "");
    cc.create_with_context::<_, BaseProducer<Quiet>>(Quiet)
        .map_err(|e| client_error("kafka.producer_options", "the producer", &e))?;
    Ok(())
}

/// The context of a client made only to be validated: with no brokers to
/// reach, what librdkafka would log (that there are none) is noise.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ConsumerContext for Quiet {}
impl ProducerContext for Quiet {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// One option librdkafka refused: the key, librdkafka's reason with a
/// credential's value hidden, and a likely intended key.
fn option_error(section: &str, key: &str, e: &KafkaError) -> ConfigError {
    let mut message = match e {
        KafkaError::ClientConfig(_, description, _, value) => redact(description, key, value),
        other => other.to_string(),
    };
    if message.contains("No such configuration property") {
        let known = known_options();
        if let Some(k) = closest(key, known.iter().map(String::as_str)) {
            message.push_str(&format!("; did you mean `{k}`?"));
        }
    }
    ConfigError::Invalid {
        within: None,
        key: format!("{section}.\"{key}\""),
        message: format!("librdkafka: {message}"),
    }
}

/// A client librdkafka would not create from otherwise valid options.
fn client_error(section: &str, client: &str, e: &KafkaError) -> ConfigError {
    let message = match e {
        KafkaError::ClientCreation(m) => m.clone(),
        other => other.to_string(),
    };
    let hint = if message.contains("GSSAPI") {
        "; this build of flumen has no Kerberos (GSSAPI): use SCRAM, PLAIN or OAUTHBEARER"
    } else {
        ""
    };
    ConfigError::Invalid {
        within: None,
        key: section.to_owned(),
        message: format!("librdkafka cannot create {client}: {message}{hint}"),
    }
}

/// `description` with `value` hidden when `key` holds a credential.
fn redact(description: &str, key: &str, value: &str) -> String {
    if secret::is_secret(key) && !value.is_empty() {
        description.replace(value, REDACTED)
    } else {
        description.to_owned()
    }
}

/// Every property name librdkafka knows, global and topic-level, for
/// suggestions.
fn known_options() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: each conf object is freshly allocated and only read; a dump is
    // an array of `count` C strings (name, value, name, value, …) that stays
    // valid until it is freed, and every pointer is used before that.
    unsafe {
        use rdkafka::bindings as rd;
        let conf = rd::rd_kafka_conf_new();
        let topic = rd::rd_kafka_topic_conf_new();
        for (dump, count) in [
            {
                let mut n = 0usize;
                (rd::rd_kafka_conf_dump(conf, &mut n), n)
            },
            {
                let mut n = 0usize;
                (rd::rd_kafka_topic_conf_dump(topic, &mut n), n)
            },
        ] {
            for i in (0..count).step_by(2) {
                let name = *dump.add(i);
                if !name.is_null() {
                    names.push(CStr::from_ptr(name).to_string_lossy().into_owned());
                }
            }
            rd::rd_kafka_conf_dump_free(dump, count);
        }
        rd::rd_kafka_topic_conf_destroy(topic);
        rd::rd_kafka_conf_destroy(conf);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(options: &str) -> Config {
        let text = format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n{options}\n[[pipeline]]\nname = \"p\"\n\
             topics = [\"t\"]\ngroup_id = \"g\"\n[[pipeline.sink]]\nname = \"s\"\ncomponent = \"s.wasm\""
        );
        Config::parse(&text, Path::new("/")).unwrap()
    }

    fn err(options: &str) -> String {
        validate(&config(options)).unwrap_err().to_string()
    }

    /// Fails naming the likely cause: rdkafka-sys compiled librdkafka
    /// before `scripts/install-host-deps.sh` had installed its libraries,
    /// and cargo does not rebuild it when they appear.
    fn built_without(e: &impl std::fmt::Display) {
        panic!(
            "{e}\nlibrdkafka was built without this feature: run \
             scripts/install-host-deps.sh --test, then `cargo clean -p rdkafka-sys` and test again"
        );
    }

    #[test]
    fn every_codec_and_tls_are_built_in() {
        for codec in ["gzip", "snappy", "lz4", "zstd"] {
            validate(&config(&format!(
                "producer_options = {{ \"compression.type\" = \"{codec}\" }}"
            )))
            .unwrap_or_else(|e| built_without(&e));
        }
        validate(&config(
            "options = { \"security.protocol\" = \"sasl_ssl\", \"sasl.mechanisms\" = \
             \"SCRAM-SHA-512\", \"sasl.username\" = \"u\", \"sasl.password\" = \"p\" }",
        ))
        .unwrap_or_else(|e| built_without(&e));
        validate(&config(
            "options = { \"security.protocol\" = \"sasl_ssl\", \"sasl.mechanisms\" = \
             \"OAUTHBEARER\", \"sasl.oauthbearer.method\" = \"oidc\", \
             \"sasl.oauthbearer.client.id\" = \"c\", \"sasl.oauthbearer.client.secret\" = \"s\", \
             \"sasl.oauthbearer.token.endpoint.url\" = \"https://idp.example/token\" }",
        ))
        .unwrap_or_else(|e| built_without(&e));
    }

    #[test]
    fn a_misspelt_option_gets_a_suggestion() {
        let e = err("options = { \"sesion.timeout.ms\" = 6000 }");
        assert!(
            e.contains("`kafka.options.\"sesion.timeout.ms\"`")
                && e.contains("No such configuration property")
                && e.contains("did you mean `session.timeout.ms`?"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_is_named_and_a_secret_is_not_shown() {
        let e = err("producer_options = { \"compression.type\" = \"brotli\" }");
        assert!(
            e.contains("kafka.producer_options") && e.contains("brotli"),
            "{e}"
        );
        let e = err("options = { \"ssl.key.password\" = \"hunter2\", \"ssl.key.location\" = \"/nope/key.pem\", \"security.protocol\" = \"ssl\" }");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn kerberos_says_it_is_not_built() {
        let e = err(
            "options = { \"security.protocol\" = \"sasl_plaintext\", \"sasl.mechanisms\" = \"GSSAPI\" }",
        );
        assert!(e.contains("no Kerberos (GSSAPI)"), "{e}");
    }

    #[test]
    fn a_missing_ca_file_is_refused_offline() {
        let e = err(
            "options = { \"security.protocol\" = \"ssl\", \"ssl.ca.location\" = \"/nope/ca.pem\" }",
        );
        assert!(
            e.contains("`kafka.options.\"ssl.ca.location\"`: /nope/ca.pem does not exist"),
            "{e}"
        );
        // A file that is there but is no certificate: librdkafka says so.
        let junk = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(junk.path(), "not a certificate").unwrap();
        let e = err(&format!(
            "options = {{ \"security.protocol\" = \"ssl\", \"ssl.ca.location\" = \"{}\" }}",
            junk.path().display()
        ));
        assert!(
            e.contains("librdkafka cannot create the consumer") && e.contains("ssl.ca.location"),
            "{e}"
        );
    }
}

//! Where a converted agent's events come from: each Flume channel fed by a
//! Kafka source, or a Kafka channel read without one, becomes a feed (one
//! pipeline's topics, group and consumer options).

use super::interceptors::interceptors;
use super::properties::{bool_prop, kind_of, Agent};
use super::write::GuestTable;

/// One pipeline's input: a Flume channel and the Kafka topics behind it.
pub struct Feed {
    /// The channel, which names the pipeline.
    pub channel: String,
    /// Topics read.
    pub topics: Vec<String>,
    /// The consumer group.
    pub group: String,
    /// The source's or channel's brokers, if set.
    pub servers: Option<String>,
    /// `kafka.consumer.*` options, for `[kafka.options]`.
    pub options: Vec<(String, String)>,
    /// Flume's `batchSize` and `batchDurationMillis`, as written.
    pub batch: Option<(String, Option<String>)>,
    /// The source's interceptors.
    pub interceptors: Vec<GuestTable>,
}

/// The feeds of agent `a`; what cannot be read is pushed to `unmapped`.
pub fn feeds(a: &Agent<'_>, unmapped: &mut Vec<String>) -> Vec<Feed> {
    let mut feeds: Vec<Feed> = Vec::new();
    let sources = a.list("sources");
    let mut fed: Vec<String> = Vec::new();
    for source in &sources {
        let s = format!("sources.{source}");
        let kind = kind_of(a.get(&format!("{s}.type")).unwrap_or(""));
        let channels = a.list(&format!("{s}.channels"));
        if kind != "kafka" {
            unmapped.push(format!(
                "source `{source}` (type {}): flumen reads Kafka only",
                a.get(&format!("{s}.type")).unwrap_or("unset")
            ));
            continue;
        }
        let mut topics: Vec<String> = a
            .get(&format!("{s}.kafka.topics"))
            .or_else(|| a.get(&format!("{s}.topic")))
            .map(|t| {
                t.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(regex) = a.get(&format!("{s}.kafka.topics.regex")) {
            unmapped.push(format!(
                "source `{source}`: kafka.topics.regex `{regex}`: flumen subscribes to named \
                 topics; list them under `topics`"
            ));
        }
        if topics.is_empty() {
            topics.push("CHANGE-ME".into());
        }
        let group = a
            .get(&format!("{s}.kafka.consumer.group.id"))
            .or_else(|| a.get(&format!("{s}.groupId")))
            .unwrap_or("flume")
            .to_owned();
        let options = consumer_options(a, &s, unmapped);
        let batch = a.get(&format!("{s}.batchSize")).map(|n| {
            (
                n.to_owned(),
                a.get(&format!("{s}.batchDurationMillis"))
                    .map(str::to_owned),
            )
        });
        let chain = interceptors(a, &s, unmapped);
        if a.get(&format!("{s}.selector.type")) == Some("multiplexing") {
            unmapped.push(format!(
                "source `{source}`: the multiplexing selector: route with an interceptor \
                 (a verdict's `route`) instead"
            ));
        }
        for channel in &channels {
            fed.push((*channel).to_owned());
            feeds.push(Feed {
                channel: (*channel).to_owned(),
                topics: topics.clone(),
                group: if channels.len() > 1 {
                    format!("{group}-{channel}")
                } else {
                    group.clone()
                },
                servers: a
                    .get(&format!("{s}.kafka.bootstrap.servers"))
                    .map(str::to_owned),
                options: options.clone(),
                batch: batch.clone(),
                // Each channel's pipeline runs its own copy of the chain.
                interceptors: chain.clone(),
            });
        }
    }
    // Kafka channels nobody writes to: read straight from Kafka.
    for channel in a.list("channels") {
        let c = format!("channels.{channel}");
        let kind = kind_of(a.get(&format!("{c}.type")).unwrap_or(""));
        if fed.iter().any(|f| f == channel) {
            if kind != "kafka" && kind != "memory" && kind != "file" {
                unmapped.push(format!(
                    "channel `{channel}` (type {kind}): not needed, events flow from Kafka"
                ));
            }
            continue;
        }
        if kind != "kafka" {
            unmapped.push(format!(
                "channel `{channel}` (type {kind}) is fed by no Kafka source: nothing to read"
            ));
            continue;
        }
        feeds.push(Feed {
            channel: channel.to_owned(),
            topics: vec![a
                .get(&format!("{c}.kafka.topic"))
                .unwrap_or("flume-channel")
                .to_owned()],
            group: a
                .get(&format!("{c}.kafka.consumer.group.id"))
                .unwrap_or("flume")
                .to_owned(),
            servers: a
                .get(&format!("{c}.kafka.bootstrap.servers"))
                .map(str::to_owned),
            options: consumer_options(a, &c, unmapped),
            batch: None,
            interceptors: Vec::new(),
        });
        if bool_prop(a.get(&format!("{c}.parseAsFlumeEvent"))).unwrap_or(true) {
            unmapped.push(format!(
                "channel `{channel}`: parseAsFlumeEvent (Flume's default) stores Avro-wrapped \
                 Flume events; flumen passes the records as they are, so set it to false in \
                 the producers or unwrap them in an interceptor"
            ));
        }
    }
    for sink in a.list("sinks") {
        let channel = a.get(&format!("sinks.{sink}.channel")).unwrap_or("unset");
        if !feeds.iter().any(|f| f.channel == channel) {
            unmapped.push(format!(
                "sink `{sink}` drains channel `{channel}`, which no Kafka topic feeds"
            ));
        }
    }
    feeds
}

/// A PLAIN or SCRAM JAAS line as `sasl.username` (copied) and
/// `sasl.password` (a placeholder for `$KAFKA_PASSWORD`); `None` for other
/// login modules (Kerberos, OAuth), which have no one-to-one mapping.
fn jaas_options(jaas: &str) -> Option<Vec<(String, String)>> {
    let module = jaas.split_whitespace().next()?;
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return None;
    }
    let mut options = Vec::new();
    if let Some(user) = jaas
        .split("username=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
    {
        options.push(("sasl.username".to_owned(), user.to_owned()));
    }
    options.push(("sasl.password".to_owned(), "${KAFKA_PASSWORD}".to_owned()));
    Some(options)
}

/// The `<prefix>.kafka.consumer.*` options but the group (which becomes
/// the pipeline's `group_id`), for `[kafka.options]`. Java's
/// `sasl.jaas.config` becomes librdkafka's `sasl.username` and a
/// `sasl.password` read from `$KAFKA_PASSWORD`: a password is never
/// copied into the TOML.
fn consumer_options(
    a: &Agent<'_>,
    prefix: &str,
    unmapped: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut options = Vec::new();
    for (k, v) in a.under(&format!("{prefix}.kafka.consumer")) {
        match k {
            "group.id" => {}
            "sasl.jaas.config" => match jaas_options(v) {
                Some(converted) => {
                    unmapped.push(format!(
                        "{prefix}: sasl.jaas.config became sasl.username and sasl.password = \
                         \"${{KAFKA_PASSWORD}}\"; set KAFKA_PASSWORD in flumen's environment"
                    ));
                    options.extend(converted);
                }
                None => unmapped.push(format!(
                    "{prefix}: sasl.jaas.config with `{}`: set librdkafka's sasl.* options \
                     by hand (docs/connecting.md)",
                    v.split_whitespace().next().unwrap_or("")
                )),
            },
            k if k.starts_with("ssl.truststore") || k.starts_with("ssl.keystore") => {
                if !k.ends_with("password") {
                    unmapped.push(format!(
                        "{prefix}: {k}: librdkafka reads PEM files, not Java key stores; \
                         export them and set ssl.ca.location (ssl.certificate.location, \
                         ssl.key.location for a client certificate)"
                    ));
                }
            }
            _ => options.push((k.to_owned(), v.to_owned())),
        }
    }
    options
}

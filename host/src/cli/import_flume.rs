//! `flumen import-flume`: turns a Flume agent's properties file into a
//! flumen config.
//!
//! What maps: a Kafka source (topics, group, brokers, batch size and
//! duration, `kafka.consumer.*` options) or a Kafka channel read without a
//! source (Flume's "Kafka consumer channel", the setup flumen revives); the
//! source's interceptors that have a counterpart in the guest library; and
//! the `null`, `logger`, `file_roll`, `http`, HDFS (as `s3`) and Kafka
//! sinks. Each Flume channel becomes one pipeline with the sinks that drain
//! it. Everything else is listed, in the output's header and in the
//! result, rather than dropped silently.

use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Why a file could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file names no agent, or several and none was chosen.
    #[error("{0}")]
    Agent(String),
    /// No Kafka source or Kafka channel to consume from.
    #[error("agent `{0}` reads no Kafka topic: flumen needs a Kafka source or a Kafka channel")]
    NoKafka(String),
}

/// The converted config and what could not be carried over.
#[derive(Debug)]
pub struct Imported {
    /// The flumen TOML, with the unmapped parts listed in its header.
    pub toml: String,
    /// One line per Flume setting or component that has no counterpart.
    pub unmapped: Vec<String>,
}

/// Reads Java properties: `key = value`, `key: value` or `key value`,
/// `#`/`!` comments, `\` line continuations and escapes.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        insert_entry(&mut out, &std::mem::take(&mut logical));
    }
    // A continuation on the last line ends with the file.
    if !logical.is_empty() {
        insert_entry(&mut out, &logical);
    }
    out
}

/// Adds one logical line's `key`/`value`.
fn insert_entry(out: &mut BTreeMap<String, String>, logical: &str) {
    let (key, value) = split_entry(logical);
    out.insert(unescape(key), unescape(value.trim_start()));
}

/// Splits at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ':' => return (line[..i].trim_end(), &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim_end().to_owned()
}

/// The properties of one agent, with the `agent.` prefix removed.
struct Agent<'a> {
    props: BTreeMap<&'a str, &'a str>,
}

impl<'a> Agent<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.props.get(key).copied().filter(|v| !v.is_empty())
    }

    /// A space-separated list.
    fn list(&self, key: &str) -> Vec<&'a str> {
        self.get(key)
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// The `<prefix>.kafka.consumer.*` options but the group (which becomes
    /// the pipeline's `group_id`), for `[kafka.options]`. Java's
    /// `sasl.jaas.config` becomes librdkafka's `sasl.username` and a
    /// `sasl.password` read from `$KAFKA_PASSWORD`: a password is never
    /// copied into the TOML.
    fn consumer_options(&self, prefix: &str, unmapped: &mut Vec<String>) -> Vec<(String, String)> {
        let mut options = Vec::new();
        for (k, v) in self.under(&format!("{prefix}.kafka.consumer")) {
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

    /// Every `prefix.<rest>` property, as `(rest, value)`.
    fn under(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let prefix = format!("{prefix}.");
        self.props
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, *v)))
            .collect()
    }
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

/// Flume's short names and class names of the same component.
fn kind_of(type_name: &str) -> &str {
    let t = type_name.trim();
    let short = t.rsplit('.').next().unwrap_or(t);
    let short = short.trim_end_matches("$Builder");
    match short {
        "KafkaSource" => "kafka",
        "KafkaChannel" => "kafka",
        "TimestampInterceptor" => "timestamp",
        "HostInterceptor" => "host",
        "StaticInterceptor" => "static",
        "RegexFilteringInterceptor" => "regex_filter",
        "RegexExtractorInterceptor" => "regex_extractor",
        "SearchAndReplaceInterceptor" => "search_replace",
        "UUIDInterceptor" => "uuid",
        "NullSink" => "null",
        "LoggerSink" => "logger",
        "RollingFileSink" => "file_roll",
        "HttpSink" => "http",
        "HDFSEventSink" => "hdfs",
        "KafkaSink" => "kafka_sink",
        other => other,
    }
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::from(s).to_string()
}

fn bool_prop(v: Option<&str>) -> Option<bool> {
    v.map(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// One guest table: `[[pipeline.<section>]]` with `name`, `component` and
/// the rest of its lines.
#[derive(Clone)]
struct Table {
    section: &'static str,
    name: String,
    component: String,
    config: Vec<(String, String)>,
    extra: Vec<String>,
}

impl Table {
    fn render(&self, out: &mut String, guests: &str) {
        let _ = writeln!(out, "\n[[pipeline.{}]]", self.section);
        let _ = writeln!(out, "name = {}", q(&self.name));
        let _ = writeln!(
            out,
            "component = {}",
            q(&format!("{guests}/{}.wasm", self.component))
        );
        if !self.config.is_empty() {
            let pairs: Vec<String> = self
                .config
                .iter()
                .map(|(k, v)| format!("{k} = {}", q(v)))
                .collect();
            let _ = writeln!(out, "config = {{ {} }}", pairs.join(", "));
        }
        for line in &self.extra {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Converts `props` (a whole properties file) for `agent` (needed only when
/// the file holds several). `guests` is where the library components are,
/// as the output config should name them.
pub fn import(
    props: &BTreeMap<String, String>,
    agent: Option<&str>,
    guests: &str,
) -> Result<Imported, ImportError> {
    let mut agents: Vec<&str> = props
        .keys()
        .filter_map(|k| {
            let (a, rest) = k.split_once('.')?;
            matches!(rest, "sources" | "channels" | "sinks").then_some(a)
        })
        .collect();
    agents.sort_unstable();
    agents.dedup();
    let name = match (agent, agents.as_slice()) {
        (Some(a), _) if agents.contains(&a) => a,
        (Some(a), _) => {
            return Err(ImportError::Agent(format!(
                "no agent `{a}` in the file; it defines: {}",
                agents.join(", ")
            )))
        }
        (None, [one]) => one,
        (None, []) => {
            return Err(ImportError::Agent(
                "no Flume agent found (no `<agent>.sources`, `.channels` or `.sinks`)".into(),
            ))
        }
        (None, many) => {
            return Err(ImportError::Agent(format!(
                "the file defines several agents ({}); choose one with --agent",
                many.join(", ")
            )))
        }
    };
    let prefix = format!("{name}.");
    let a = Agent {
        props: props
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, v.as_str())))
            .collect(),
    };
    let mut unmapped = Vec::new();

    // Where the events come from: each channel's topics, group and options.
    struct Feed {
        channel: String,
        topics: Vec<String>,
        group: String,
        servers: Option<String>,
        options: Vec<(String, String)>,
        batch: Option<(String, Option<String>)>,
        interceptors: Vec<Table>,
    }
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
        let options = a.consumer_options(&s, &mut unmapped);
        let batch = a.get(&format!("{s}.batchSize")).map(|n| {
            (
                n.to_owned(),
                a.get(&format!("{s}.batchDurationMillis"))
                    .map(str::to_owned),
            )
        });
        let chain = interceptors(&a, &s, &mut unmapped);
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
            options: a.consumer_options(&c, &mut unmapped),
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
    let Some(first) = feeds.first() else {
        return Err(ImportError::NoKafka(name.to_owned()));
    };
    let servers = first
        .servers
        .clone()
        .unwrap_or_else(|| "localhost:9092".into());
    let mut out = String::new();
    let _ = writeln!(out, "[kafka]\nbootstrap_servers = {}", q(&servers));
    let mut options: BTreeMap<&str, &str> = BTreeMap::new();
    for f in &feeds {
        if f.servers.as_deref().is_some_and(|s| s != servers) {
            unmapped.push(format!(
                "channel `{}`: brokers {} differ from the first pipeline's; flumen uses one \
                 cluster per config",
                f.channel,
                f.servers.as_deref().unwrap_or("")
            ));
        }
        for (k, v) in &f.options {
            options.insert(k, v);
        }
    }
    if !options.is_empty() {
        let _ = writeln!(out, "[kafka.options]");
        for (k, v) in options {
            let _ = writeln!(out, "{} = {}", q(k), q(v));
        }
    }
    let sinks = a.list("sinks");
    for f in &feeds {
        let _ = writeln!(out, "\n[[pipeline]]");
        let _ = writeln!(out, "name = {}", q(&f.channel));
        let topics: Vec<String> = f.topics.iter().map(|t| q(t)).collect();
        let _ = writeln!(out, "topics = [{}]", topics.join(", "));
        let _ = writeln!(out, "group_id = {}", q(&f.group));
        if let Some((n, wait)) = &f.batch {
            match wait {
                Some(w) => {
                    let _ = writeln!(out, "batch = {{ max_events = {n}, max_wait_ms = {w} }}");
                }
                None => {
                    let _ = writeln!(out, "batch = {{ max_events = {n} }}");
                }
            }
        }
        for t in &f.interceptors {
            t.render(&mut out, guests);
        }
        let mut any_sink = false;
        for sink in &sinks {
            let k = format!("sinks.{sink}");
            if a.get(&format!("{k}.channel")) != Some(f.channel.as_str()) {
                continue;
            }
            if let Some(t) = sink_table(&a, sink, &k, &servers, &mut unmapped) {
                t.render(&mut out, guests);
                any_sink = true;
            }
        }
        if !any_sink {
            // A pipeline needs a sink, and one that discards would commit
            // events nobody received: a placeholder that refuses to load.
            let _ = writeln!(
                out,
                "\n# No sink of channel `{}` could be mapped; replace this one.",
                f.channel
            );
            let _ = writeln!(
                out,
                "[[pipeline.sink]]\nname = \"unmapped\"\ncomponent = {}",
                q(&format!("{guests}/REPLACE-ME-sink.wasm"))
            );
        }
    }
    let mut head = format!("# Converted from Flume agent `{name}` by `flumen import-flume`.\n");
    if unmapped.is_empty() {
        head.push_str("# Everything in it was mapped.\n");
    } else {
        head.push_str("# Not mapped:\n");
        for u in &unmapped {
            let _ = writeln!(head, "#   - {u}");
        }
    }
    Ok(Imported {
        toml: format!("{head}\n{out}"),
        unmapped,
    })
}

/// The source's interceptors, in order.
fn interceptors(a: &Agent<'_>, source: &str, unmapped: &mut Vec<String>) -> Vec<Table> {
    let mut tables = Vec::new();
    for i in a.list(&format!("{source}.interceptors")) {
        let p = format!("{source}.interceptors.{i}");
        let get = |key: &str| a.get(&format!("{p}.{key}"));
        let preserve = |default: bool| {
            bool_prop(get("preserveExisting"))
                .unwrap_or(default)
                .to_string()
        };
        let raw_type = get("type").unwrap_or("unset");
        let mut host_interceptor = false;
        let (component, config): (&str, Vec<(&str, String)>) = match kind_of(raw_type) {
            "timestamp" => (
                "timestamp",
                vec![
                    (
                        "header",
                        get("headerName").unwrap_or("timestamp").to_owned(),
                    ),
                    ("preserve_existing", preserve(false)),
                ],
            ),
            "host" => {
                if bool_prop(get("useIP")).unwrap_or(true) {
                    unmapped.push(format!(
                        "interceptor `{i}`: useIP (Flume's default): a component cannot look up \
                         the address; the host name from $HOSTNAME is stamped instead"
                    ));
                }
                host_interceptor = true;
                (
                    "host_header",
                    vec![
                        ("header", get("hostHeader").unwrap_or("host").to_owned()),
                        ("preserve_existing", preserve(false)),
                    ],
                )
            }
            "static" => (
                "static_header",
                vec![
                    ("header", get("key").unwrap_or("key").to_owned()),
                    ("value", get("value").unwrap_or("value").to_owned()),
                    ("preserve_existing", preserve(true)),
                ],
            ),
            "regex_filter" => (
                "filter",
                vec![
                    ("pattern", get("regex").unwrap_or(".*").to_owned()),
                    (
                        "mode",
                        if bool_prop(get("excludeEvents")).unwrap_or(false) {
                            "drop"
                        } else {
                            "keep"
                        }
                        .to_owned(),
                    ),
                ],
            ),
            "regex_extractor" => {
                let names: Vec<String> = a
                    .get(&format!("{p}.serializers"))
                    .map(|s| {
                        s.split_whitespace()
                            .map(|s| {
                                get(&format!("serializers.{s}.name"))
                                    .unwrap_or("")
                                    .to_owned()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut config = vec![("pattern", get("regex").unwrap_or("").to_owned())];
                if !names.is_empty() {
                    config.push(("headers", names.join(",")));
                }
                ("regex_extractor", config)
            }
            "search_replace" => (
                "search_replace",
                vec![
                    (
                        "search_pattern",
                        get("searchPattern").unwrap_or("").to_owned(),
                    ),
                    (
                        "replace_string",
                        get("replaceString").unwrap_or("").to_owned(),
                    ),
                ],
            ),
            "uuid" => (
                "uuid_header",
                vec![
                    ("header", get("headerName").unwrap_or("id").to_owned()),
                    ("prefix", get("prefix").unwrap_or("").to_owned()),
                    ("preserve_existing", preserve(true)),
                ],
            ),
            _ => {
                unmapped.push(format!(
                    "interceptor `{i}` (type {raw_type}): no counterpart in the guest library; \
                     write one with `flumen new`"
                ));
                continue;
            }
        };
        tables.push(Table {
            section: "interceptor",
            name: i.to_owned(),
            component: component.to_owned(),
            config: config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            // The host name comes from flumen's own environment.
            extra: if host_interceptor {
                vec!["env_from_host = [\"HOSTNAME\"]".to_owned()]
            } else {
                Vec::new()
            },
        });
    }
    tables
}

/// One sink's table, or `None` (listed in `unmapped`). `servers` is the
/// cluster of the config's `[kafka]`, the one a Kafka sink writes to.
fn sink_table(
    a: &Agent<'_>,
    sink: &str,
    k: &str,
    servers: &str,
    unmapped: &mut Vec<String>,
) -> Option<Table> {
    let get = |key: &str| a.get(&format!("{k}.{key}"));
    let raw_type = get("type").unwrap_or("unset");
    let table = |component: &str, config: Vec<(&str, String)>, extra: Vec<String>| Table {
        section: "sink",
        name: sink.to_owned(),
        component: component.to_owned(),
        config: config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        extra,
    };
    match kind_of(raw_type) {
        "null" => Some(table("null_sink", Vec::new(), Vec::new())),
        "logger" => Some(table(
            "logger_sink",
            vec![("max_bytes", get("maxBytesToLog").unwrap_or("16").to_owned())],
            Vec::new(),
        )),
        "file_roll" => {
            let dir = get("sink.directory").unwrap_or("CHANGE-ME");
            let serializer = get("sink.serializer").unwrap_or("TEXT");
            if !serializer.eq_ignore_ascii_case("text") {
                unmapped.push(format!(
                    "sink `{sink}`: serializer {serializer}: written as the raw value per line \
                     (Flume's TEXT)"
                ));
            }
            let prefix = get("sink.pathManager.prefix").unwrap_or(sink);
            let extension = get("sink.pathManager.extension").unwrap_or("log");
            Some(table(
                "file_roll_sink",
                vec![
                    (
                        "path",
                        format!("/out/{prefix}-%{{partition}}-%{{seq}}.{extension}"),
                    ),
                    ("format", "value".to_owned()),
                    (
                        "roll_interval_s",
                        get("sink.rollInterval").unwrap_or("30").to_owned(),
                    ),
                ],
                vec![format!(
                    "dirs = [{{ host = {}, guest = \"/out\" }}]",
                    q(dir)
                )],
            ))
        }
        "http" => {
            let url = get("endpoint").unwrap_or("http://CHANGE-ME/");
            let host = url
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
                .unwrap_or("");
            let mut config = vec![("url", url.to_owned())];
            if let Some(t) = get("requestTimeout") {
                config.push(("timeout_ms", t.to_owned()));
            }
            Some(table(
                "http_sink",
                config,
                vec![format!("http_allow = [{}]", q(host))],
            ))
        }
        "hdfs" => {
            let (config, extra) =
                super::hdfs_sink::s3_sink(sink, |key| get(key).map(str::to_owned), unmapped);
            Some(table("s3_sink", config, extra))
        }
        "kafka_sink" => {
            // Flume's default topic, so that a config relying on it still
            // names the same one.
            let topic = get("kafka.topic").unwrap_or("default-flume-topic");
            if let Some(other) = get("kafka.bootstrap.servers").filter(|s| *s != servers) {
                unmapped.push(format!(
                    "sink `{sink}`: brokers {other}: flumen's Kafka sink writes to the [kafka] \
                     cluster ({servers})"
                ));
            }
            for key in [
                "allowTopicOverride",
                "topicHeader",
                "useFlumeEventFormat",
                "partitionIdHeader",
                "defaultPartitionId",
            ] {
                if let Some(v) = get(key) {
                    unmapped.push(format!(
                        "sink `{sink}`: {key} = {v}: not supported (the record keeps its key, \
                         headers and value; the producer picks the partition by key)"
                    ));
                }
            }
            Some(table(
                "kafka_sink",
                vec![("topic", topic.to_owned())],
                vec![format!("kafka_produce = [{}]", q(topic))],
            ))
        }
        _ => {
            unmapped.push(format!(
                "sink `{sink}` (type {raw_type}): no counterpart in the guest library; write one \
                 with `flumen new --kind sink`"
            ));
            // Never a sink that discards: a component path that does not
            // exist, named for what to replace, so that `check` and `run`
            // refuse the config until it is.
            Some(table(
                &format!("REPLACE-ME-{}-sink", kind_of(raw_type)),
                Vec::new(),
                vec![format!(
                    "# Replace this component: Flume's {raw_type} sink has no counterpart in \
                     flumen's guest library, and until it is replaced `check` and `run` refuse \
                     this config."
                )],
            ))
        }
    }
}

/// Runs `flumen import-flume`: the config on stdout, what was not mapped on stderr.
pub fn command(
    file: &std::path::Path,
    agent: Option<&str>,
    guests: &str,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let props = parse_properties(&text);
    let imported =
        import(&props, agent, guests).with_context(|| format!("converting {}", file.display()))?;
    print!("{}", imported.toml);
    if imported.unmapped.is_empty() {
        eprintln!("everything was mapped");
    } else {
        eprintln!("not mapped:");
        for u in &imported.unmapped {
            eprintln!("  - {u}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

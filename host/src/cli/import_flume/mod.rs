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
//!
//! The work is split by concern: [`properties`] reads the file, [`sources`]
//! finds the Kafka topics behind each channel, [`interceptors`] and
//! [`sinks`] map components (with [`hdfs_sink`] for Flume's HDFS sink), and
//! [`write`] writes the TOML.

mod hdfs_sink;
mod interceptors;
mod properties;
mod sinks;
mod sources;
mod write;

pub use properties::parse_properties;

use anyhow::Context;
use properties::Agent;
use sinks::sink_table;
use sources::feeds;
use std::collections::BTreeMap;
use std::process::ExitCode;
use write::{document, integers, GuestTable, PipelineTable};

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
    let feeds = feeds(&a, &mut unmapped);
    let Some(first) = feeds.first() else {
        return Err(ImportError::NoKafka(name.to_owned()));
    };
    let servers = first
        .servers
        .clone()
        .unwrap_or_else(|| "localhost:9092".into());
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
    let sinks = a.list("sinks");
    let mut pipelines = Vec::new();
    for f in &feeds {
        let mut p = PipelineTable::new(&f.channel, &f.topics, &f.group);
        if let Some(batch) = &f.batch {
            match pipeline_batch(batch) {
                Ok(value) => p.set("batch", value),
                Err(why) => {
                    let gap = format!("channel `{}`: {why}", f.channel);
                    p.note(&format!("CHANGE-ME: {gap}"));
                    unmapped.push(gap);
                }
            }
        }
        for t in &f.interceptors {
            p.add(t, guests);
        }
        for sink in &sinks {
            let k = format!("sinks.{sink}");
            if a.get(&format!("{k}.channel")) != Some(f.channel.as_str()) {
                continue;
            }
            if let Some(t) = sink_table(&a, sink, &k, &servers, &mut unmapped) {
                p.add(&t, guests);
            }
        }
        if !p.has_sink() {
            // A pipeline needs a sink, and one that discards would commit
            // events nobody received: a placeholder that refuses to load.
            let mut t = GuestTable::new("sink", "unmapped", "REPLACE-ME-sink");
            t.note = Some(format!(
                "No sink of channel `{}` could be mapped; replace this one.",
                f.channel
            ));
            p.add(&t, guests);
        }
        pipelines.push(p);
    }
    let mut header = format!("Converted from Flume agent `{name}` by `flumen import-flume`.\n");
    if unmapped.is_empty() {
        header.push_str("Everything in it was mapped.");
    } else {
        header.push_str("Not mapped:");
        for u in &unmapped {
            header.push_str(&format!("\n  - {u}"));
        }
    }
    Ok(Imported {
        toml: document(&header, &servers, &options, pipelines),
        unmapped,
    })
}

/// Flume's `batchSize` and `batchDurationMillis` as the pipeline's `batch`,
/// or why they cannot be (a value that is not a count, such as `${BATCH}`).
fn pipeline_batch((size, wait): &(String, Option<String>)) -> Result<toml_edit::Value, String> {
    let number = |key: &str, v: &str| {
        v.trim()
            .parse::<u32>()
            .map(i64::from)
            .map_err(|_| format!("{key} = {v} is not a number; set the pipeline's `batch` by hand"))
    };
    let mut pairs = vec![("max_events", number("batchSize", size)?)];
    if let Some(w) = wait {
        pairs.push(("max_wait_ms", number("batchDurationMillis", w)?));
    }
    Ok(integers(&pairs))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(text: &str) -> (toml::Value, Imported) {
        let imported = import(&parse_properties(text), None, "/g").expect("converts");
        let parsed = toml::from_str(&imported.toml)
            .unwrap_or_else(|e| panic!("the output does not parse: {e}\n{}", imported.toml));
        (parsed, imported)
    }

    #[test]
    fn placeholders_become_strings_or_change_me_comments_and_the_output_parses() {
        let (parsed, imported) = convert(
            "a.sources = src\n\
             a.channels = ch\n\
             a.sinks = out\n\
             a.sources.src.type = org.apache.flume.source.kafka.KafkaSource\n\
             a.sources.src.channels = ch\n\
             a.sources.src.kafka.bootstrap.servers = ${BROKERS}\n\
             a.sources.src.kafka.topics = ${TOPIC}, \"quoted\"\n\
             a.sources.src.kafka.consumer.group.id = ${GROUP}\n\
             a.sources.src.batchSize = ${BATCH}\n\
             a.sources.src.kafka.consumer.auto.offset.reset = ${RESET}\n\
             a.channels.ch.type = memory\n\
             a.sinks.out.type = http\n\
             a.sinks.out.channel = ch\n\
             a.sinks.out.endpoint = http://${HOST}/in\n",
        );
        let p = &parsed["pipeline"][0];
        assert_eq!(
            parsed["kafka"]["bootstrap_servers"].as_str(),
            Some("${BROKERS}")
        );
        assert_eq!(
            parsed["kafka"]["options"]["auto.offset.reset"].as_str(),
            Some("${RESET}")
        );
        assert_eq!(p["topics"][0].as_str(), Some("${TOPIC}"));
        assert_eq!(p["topics"][1].as_str(), Some("\"quoted\""));
        assert_eq!(p["group_id"].as_str(), Some("${GROUP}"));
        // A count that is not one is not written; it is a CHANGE-ME.
        assert!(p.get("batch").is_none());
        assert!(
            imported
                .toml
                .contains("# CHANGE-ME: channel `ch`: batchSize = ${BATCH} is not a number"),
            "{}",
            imported.toml
        );
        assert!(imported
            .unmapped
            .iter()
            .any(|u| u.contains("batchSize = ${BATCH}")));
        assert_eq!(
            p["sink"][0]["config"]["url"].as_str(),
            Some("http://${HOST}/in")
        );
    }

    #[test]
    fn maps_a_kafka_channel_read_without_a_source() {
        let (parsed, imported) = convert(
            "agent.channels = kc\n\
             agent.sinks = log\n\
             agent.channels.kc.type = org.apache.flume.channel.kafka.KafkaChannel\n\
             agent.channels.kc.kafka.topic = events\n\
             agent.channels.kc.kafka.consumer.group.id = readers\n\
             agent.channels.kc.parseAsFlumeEvent = false\n\
             agent.sinks.log.type = logger\n\
             agent.sinks.log.channel = kc\n",
        );
        let p = &parsed["pipeline"][0];
        assert_eq!(p["name"].as_str(), Some("kc"));
        assert_eq!(p["topics"][0].as_str(), Some("events"));
        assert_eq!(p["group_id"].as_str(), Some("readers"));
        assert_eq!(
            p["sink"][0]["component"].as_str(),
            Some("/g/logger_sink.wasm")
        );
        assert!(imported.unmapped.is_empty(), "{:?}", imported.unmapped);
        assert_eq!(
            parsed["kafka"]["bootstrap_servers"].as_str(),
            Some("localhost:9092")
        );
    }

    #[test]
    fn interceptors_keep_their_order_and_unknown_ones_are_listed() {
        let (parsed, imported) = convert(
            "a.sources = s\na.channels = c\na.sinks = k\n\
             a.sources.s.type = kafka\na.sources.s.channels = c\na.sources.s.kafka.topics = t\n\
             a.sources.s.interceptors = ts odd f\n\
             a.sources.s.interceptors.ts.type = timestamp\n\
             a.sources.s.interceptors.odd.type = com.example.Morph$Builder\n\
             a.sources.s.interceptors.f.type = regex_filter\n\
             a.sources.s.interceptors.f.regex = ^x\n\
             a.sources.s.interceptors.f.excludeEvents = true\n\
             a.channels.c.type = memory\n\
             a.sinks.k.type = null\na.sinks.k.channel = c\n",
        );
        let chain = parsed["pipeline"][0]["interceptor"]
            .as_array()
            .expect("interceptors");
        let names: Vec<&str> = chain.iter().filter_map(|i| i["name"].as_str()).collect();
        assert_eq!(names, ["ts", "f"]);
        assert_eq!(chain[1]["config"]["mode"].as_str(), Some("drop"));
        assert_eq!(chain[1]["config"]["pattern"].as_str(), Some("^x"));
        assert!(imported
            .unmapped
            .iter()
            .any(|u| u.contains("interceptor `odd`")));
    }

    #[test]
    fn an_unknown_sink_is_a_placeholder_that_refuses_to_load() {
        let (parsed, imported) = convert(
            "a.sources = s\na.channels = c\na.sinks = hb\n\
             a.sources.s.type = kafka\na.sources.s.channels = c\na.sources.s.kafka.topics = t\n\
             a.channels.c.type = memory\n\
             a.sinks.hb.type = hbase2\na.sinks.hb.channel = c\n",
        );
        let sink = &parsed["pipeline"][0]["sink"][0];
        assert_eq!(
            sink["component"].as_str(),
            Some("/g/REPLACE-ME-hbase2-sink.wasm")
        );
        assert!(imported.toml.contains("# Replace this component"));
        assert!(imported
            .unmapped
            .iter()
            .any(|u| u.contains("sink `hb` (type hbase2)")));
    }

    #[test]
    fn a_sasl_password_is_never_copied() {
        let (parsed, imported) = convert(
            "a.sources = s\na.channels = c\na.sinks = k\n\
             a.sources.s.type = kafka\na.sources.s.channels = c\na.sources.s.kafka.topics = t\n\
             a.sources.s.kafka.consumer.sasl.jaas.config = org.apache.kafka.common.security.\
             plain.PlainLoginModule required username=\"alice\" password=\"hunter2\";\n\
             a.channels.c.type = memory\n\
             a.sinks.k.type = null\na.sinks.k.channel = c\n",
        );
        let options = &parsed["kafka"]["options"];
        assert_eq!(options["sasl.username"].as_str(), Some("alice"));
        assert_eq!(options["sasl.password"].as_str(), Some("${KAFKA_PASSWORD}"));
        assert!(!imported.toml.contains("hunter2"));
    }

    #[test]
    fn the_agent_must_be_named_when_there_are_several() {
        let props = parse_properties("a.sources = s\nb.sinks = k\n");
        let err = import(&props, None, "/g").expect_err("ambiguous");
        assert!(err.to_string().contains("several agents (a, b)"), "{err}");
        let err = import(&props, Some("c"), "/g").expect_err("unknown");
        assert!(err.to_string().contains("no agent `c`"), "{err}");
        let err = import(&props, Some("b"), "/g").expect_err("no Kafka");
        assert!(matches!(err, ImportError::NoKafka(_)), "{err}");
    }
}

//! `flumen test`: one component run offline over events from a file,
//! reporting what it did with each event as JSON lines.
//!
//! There is no broker and no pipeline, but the component is compiled,
//! sandboxed, limited and initialized exactly as in a pipeline (same
//! runtime, same grants, same `init`), so what it does here is what it will
//! do there. That makes it the quick loop for writing a guest: edit, build,
//! `flumen test`, without starting Kafka.

use super::event_json::{self, EventLine};
use crate::config::ComponentConfig;
use crate::contract::{Action, Event, InterceptorVerdict, SinkVerdict, Source};
use crate::runtime::{GuestError, GuestTag, InterceptorGuest, Runtime, SinkGuest, Slot};
use anyhow::Context;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A loaded component, of whichever world it exports.
pub enum Component {
    /// It exports `flumen:pipeline/interception`.
    Interceptor(InterceptorGuest),
    /// It exports `flumen:pipeline/delivery`.
    Sink(SinkGuest),
}

/// Why an offline run stopped.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Loading, instantiating or initializing the component failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// The component exports neither world.
    #[error(
        "`{name}` is neither an interceptor nor a sink of this flumen's contract \
         (flumen:pipeline@0.4.x). As an interceptor: {interceptor}. As a sink: {sink}"
    )]
    NoWorld {
        /// The component's name.
        name: String,
        /// Why it is not an interceptor.
        interceptor: String,
        /// Why it is not a sink.
        sink: String,
    },
    /// A call failed: the guest returned an error, trapped, ran out of a
    /// limit, or broke the contract.
    #[error("the call with offsets {first}..={last} failed: {error}")]
    Call {
        /// First offset of the batch.
        first: i64,
        /// Last offset of the batch.
        last: i64,
        /// What went wrong.
        error: GuestError,
    },
    /// A batch of the input is too large to hand to a guest.
    #[error(transparent)]
    TooLarge(#[from] crate::contract::TooLarge),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl Component {
    /// Loads the component `cfg` names as an interceptor or, if it is not
    /// one, as a sink (the second try is served by the compile cache), for
    /// events of `source` by default.
    pub fn load(
        runtime: &Runtime,
        cfg: &ComponentConfig,
        source: &Source,
    ) -> Result<Self, OfflineError> {
        // The default source names the instance in the guest's log lines.
        let tag = GuestTag {
            component: cfg.name.as_str().into(),
            pipeline: "test".into(),
            partition: Some((source.topic.as_str().into(), source.partition)),
        };
        let as_interceptor = match runtime.load(cfg) {
            Ok(loaded) => {
                return Ok(Self::Interceptor(InterceptorGuest::new(
                    Slot::new(loaded),
                    tag,
                )))
            }
            Err(GuestError::WrongWorld { reason, .. }) => reason,
            Err(e) => return Err(e.into()),
        };
        match runtime.load(cfg) {
            Ok(loaded) => Ok(Self::Sink(SinkGuest::new(Slot::new(loaded), tag))),
            Err(GuestError::WrongWorld { reason, .. }) => Err(OfflineError::NoWorld {
                name: cfg.name.clone(),
                interceptor: as_interceptor,
                sink: reason,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// `interceptor` or `sink`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Interceptor(_) => "interceptor",
            Self::Sink(_) => "sink",
        }
    }

    /// Instantiates the component and calls its `init`, so that a refused
    /// config is reported before any event is read.
    pub fn start(&mut self) -> Result<(), OfflineError> {
        match self {
            Self::Interceptor(g) => g.ensure_live()?,
            Self::Sink(g) => g.ensure_live()?,
        }
        Ok(())
    }

    /// Runs the component over `events`, in calls of up to `batch` events
    /// that share a source (the line's `topic` and `partition`, or
    /// `default`'s), writing one JSON line per event to `out`. Returns how
    /// many events got each verdict.
    pub fn run(
        &mut self,
        events: Vec<EventLine>,
        default: &Source,
        batch: usize,
        out: &mut impl Write,
    ) -> Result<BTreeMap<&'static str, usize>, OfflineError> {
        let mut counts = BTreeMap::new();
        for (source, batch) in batches(events, default, batch.max(1)) {
            let (first, last) = match (batch.first(), batch.last()) {
                (Some(f), Some(l)) => (f.offset, l.offset),
                _ => continue,
            };
            let call_failed = |error| OfflineError::Call { first, last, error };
            let columns = crate::contract::Batch::from_events(&batch)?;
            let lines: Vec<(&'static str, Value)> = match self {
                Self::Interceptor(g) => {
                    let verdicts = g.process(&source, &columns).map_err(call_failed)?;
                    batch
                        .into_iter()
                        .zip(verdicts)
                        .map(|(e, v)| interceptor_line(&source, e, v))
                        .collect()
                }
                Self::Sink(g) => {
                    let verdicts = g.deliver(&source, &columns).map_err(call_failed)?;
                    batch
                        .iter()
                        .zip(verdicts)
                        .map(|(e, v)| sink_line(e, v))
                        .collect()
                }
            };
            for (verdict, line) in lines {
                *counts.entry(verdict).or_default() += 1;
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        Ok(counts)
    }
}

/// Splits `events` into calls: consecutive events of one source, at most
/// `max` each.
fn batches(events: Vec<EventLine>, default: &Source, max: usize) -> Vec<(Source, Vec<Event>)> {
    let mut out: Vec<(Source, Vec<Event>)> = Vec::new();
    for line in events {
        let source = Source {
            topic: line.topic.unwrap_or_else(|| default.topic.clone()),
            partition: line.partition.unwrap_or(default.partition),
        };
        match out.last_mut() {
            Some((s, b))
                if s.topic == source.topic && s.partition == source.partition && b.len() < max =>
            {
                b.push(line.event)
            }
            _ => out.push((source, vec![line.event])),
        }
    }
    out
}

/// What an interceptor did with one event; the event it passes on (kept or
/// replaced) is included, in the input's shape, so that it can be piped
/// into the next component.
fn interceptor_line(source: &Source, mut e: Event, v: InterceptorVerdict) -> (&'static str, Value) {
    let verdict = match v.action {
        Action::Keep => "keep",
        Action::Drop => "drop",
        Action::Replace(r) => {
            crate::contract::replace(&mut e, r);
            "replace"
        }
        Action::Reject(reason) => {
            let line = json!({ "offset": e.offset, "verdict": "reject", "reason": reason });
            return ("reject", line);
        }
    };
    let mut line = json!({ "offset": e.offset, "verdict": verdict, "route": v.route });
    if verdict != "drop" {
        line["event"] = event_json::to_json(source, &e);
    }
    (verdict, line)
}

/// What a sink reported for one event.
fn sink_line(e: &Event, v: SinkVerdict) -> (&'static str, Value) {
    match v {
        SinkVerdict::Delivered => (
            "delivered",
            json!({ "offset": e.offset, "verdict": "delivered" }),
        ),
        SinkVerdict::Retry(reason) => (
            "retry",
            json!({ "offset": e.offset, "verdict": "retry", "reason": reason }),
        ),
        SinkVerdict::Reject(reason) => (
            "reject",
            json!({ "offset": e.offset, "verdict": "reject", "reason": reason }),
        ),
    }
}

/// The arguments of `flumen test`.
#[derive(clap::Args)]
pub struct TestArgs {
    /// The component (`.wasm`), an interceptor or a sink.
    #[arg(long)]
    component: PathBuf,
    /// Events as JSON lines, `-` for standard input. Each line has `value`
    /// (or `value_base64`) and optionally `key`, `headers`, `timestamp`,
    /// `offset`, `topic`, `partition`: the shape the file sinks write.
    #[arg(long)]
    events: PathBuf,
    /// A config entry for the component's `init`, `KEY=VALUE`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A host directory the component may use, `HOST=GUEST` (e.g.
    /// `out=/out`); repeatable.
    #[arg(long = "dir", value_name = "HOST=GUEST")]
    dirs: Vec<String>,
    /// An environment variable the component sees, `NAME=VALUE`;
    /// repeatable. It sees no others.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// A host the component may send HTTP requests to; repeatable.
    #[arg(long = "http-allow", value_name = "HOST")]
    http_allow: Vec<String>,
    /// A Kafka topic the component may write to through the host's
    /// producer (a Kafka sink); repeatable. Needs `--kafka`.
    #[arg(long = "kafka-produce", value_name = "TOPIC", requires = "kafka")]
    kafka_produce: Vec<String>,
    /// A Schema Registry (`http://host:port`) the component may read
    /// schemas from: grants it `schema_registry`, to decode captured
    /// framed events.
    #[arg(long = "schema-registry", value_name = "URL")]
    schema_registry: Option<String>,
    /// The Kafka cluster (`host:port`) a Kafka sink's records go to.
    #[arg(long, value_name = "BOOTSTRAP")]
    kafka: Option<String>,
    /// Events per call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Topic of events whose line names none.
    #[arg(long, default_value = "test")]
    topic: String,
    /// Partition of events whose line names none.
    #[arg(long, default_value_t = 0)]
    partition: i32,
}

/// Splits `KEY=VALUE`, naming the flag in the error.
fn key_value<'a>(flag: &str, arg: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    arg.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--{flag} `{arg}`: expected KEY=VALUE"))
}

/// Runs `flumen test`: verdicts as JSON lines on stdout, counts on stderr.
pub fn command(args: TestArgs) -> anyhow::Result<ExitCode> {
    use std::io::Read;

    // The component's table, as it would appear in a pipeline, so that the
    // same validation applies.
    let mut table = toml::Table::new();
    let name = args
        .component
        .file_stem()
        .map_or("component".into(), |s| s.to_string_lossy().into_owned());
    table.insert("name".into(), name.into());
    table.insert(
        "component".into(),
        args.component.to_string_lossy().into_owned().into(),
    );
    let mut guest_config = toml::Table::new();
    for arg in &args.config {
        let (k, v) = key_value("config", arg)?;
        guest_config.insert(k.into(), v.into());
    }
    table.insert("config".into(), guest_config.into());
    let mut dirs = Vec::new();
    for arg in &args.dirs {
        let (host, guest) = key_value("dir", arg)?;
        let mut d = toml::Table::new();
        d.insert("host".into(), host.into());
        d.insert("guest".into(), guest.into());
        dirs.push(toml::Value::Table(d));
    }
    table.insert("dirs".into(), dirs.into());
    let mut env = toml::Table::new();
    for arg in &args.env {
        let (k, v) = key_value("env", arg)?;
        env.insert(k.into(), v.into());
    }
    table.insert("env".into(), env.into());
    let list = |items: &[String]| -> toml::Value {
        items
            .iter()
            .map(|i| toml::Value::from(i.as_str()))
            .collect::<Vec<_>>()
            .into()
    };
    table.insert("http_allow".into(), list(&args.http_allow));
    table.insert("kafka_produce".into(), list(&args.kafka_produce));
    table.insert(
        "schema_registry".into(),
        args.schema_registry.is_some().into(),
    );
    let cfg: ComponentConfig = toml::Value::Table(table)
        .try_into()
        .context("building the component's settings")?;

    let mut text = String::new();
    if args.events.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading events from standard input")?;
    } else {
        text = std::fs::read_to_string(&args.events)
            .with_context(|| format!("reading events from {}", args.events.display()))?;
    }
    let events = event_json::parse_lines(&text)
        .with_context(|| format!("reading events from {}", args.events.display()))?;

    let mut runtime = Runtime::new(false).context("starting the WebAssembly runtime")?;
    if let Some(dir) = crate::runtime::cache::default_dir() {
        runtime = runtime.with_cache(&dir);
    }
    if let Some(bootstrap) = args.kafka {
        runtime = runtime.with_producer(
            crate::config::KafkaConfig {
                bootstrap_servers: bootstrap,
                options: Default::default(),
                producer_options: Default::default(),
            },
            Duration::from_millis(cfg.limits.call_timeout_ms),
        );
    }
    if let Some(url) = &args.schema_registry {
        let config = crate::config::SchemaRegistryConfig::for_url(url)?;
        runtime = runtime.with_registry(crate::registry::Registry::new(&config)?);
    }
    let source = Source {
        topic: args.topic,
        partition: args.partition,
    };
    let mut component = Component::load(&runtime, &cfg, &source)?;
    component.start()?;
    let total = events.len();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let counts = component.run(events, &source, args.batch, &mut out)?;
    let counts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    eprintln!(
        "{} `{}`: {total} events: {}",
        component.kind(),
        cfg.name,
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(topic: Option<&str>, offset: i64) -> EventLine {
        EventLine {
            topic: topic.map(str::to_owned),
            partition: None,
            event: Event {
                offset,
                timestamp: None,
                key: None,
                value: None,
                headers: Vec::new(),
            },
        }
    }

    #[test]
    fn calls_hold_consecutive_events_of_one_source_up_to_the_batch_size() {
        let default = Source {
            topic: "t".into(),
            partition: 0,
        };
        let events = vec![
            line(None, 0),
            line(Some("t"), 1),
            line(None, 2),
            line(Some("u"), 3),
            line(None, 4),
        ];
        let calls: Vec<(String, Vec<i64>)> = batches(events, &default, 2)
            .into_iter()
            .map(|(s, b)| (s.topic, b.iter().map(|e| e.offset).collect()))
            .collect();
        assert_eq!(
            calls,
            [
                ("t".to_owned(), vec![0, 1]),
                ("t".to_owned(), vec![2]),
                ("u".to_owned(), vec![3]),
                ("t".to_owned(), vec![4]),
            ]
        );
    }
}

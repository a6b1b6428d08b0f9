//! `flumen check`: load, type-check and initialize every component of a
//! config without consuming anything, and show what each is granted.

use crate::config::{
    exactly_once, secret, Budgets, ComponentConfig, Config, Delivery, KafkaConfig, Limits, Rate,
};
use crate::ops::pipeline;
use crate::runtime::contract_version::SPOKEN;
use crate::runtime::{Compiled, GuestKind, Origin, Runtime, Slot};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Runs `flumen check --config PATH`; with `connect`, also connects to
/// Kafka, each step waiting at most that long.
pub fn command(path: PathBuf, connect: Option<Duration>) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path)?;
    let runtime = Runtime::for_config(&config).context("starting the WebAssembly runtime")?;
    let checked = pipeline::check(&config, &runtime)?;
    println!("{}", describe_kafka(&config.kafka));
    match runtime.cache() {
        Some(c) => println!("compile cache {} (warmed)", c.dir().display()),
        None => println!("compile cache off: every start compiles every component"),
    }
    for p in &checked {
        println!(
            "pipeline `{}`: topics {:?}, group `{}`",
            p.config.name, p.config.topics, p.config.group_id
        );
        let compiled = p
            .components
            .interceptors
            .iter()
            .map(|s| compiled_and_world(s))
            .chain(p.components.sinks.iter().map(|s| compiled_and_world(s)));
        let kinds = p
            .config
            .interceptors
            .iter()
            .map(|c| ("interceptor", c))
            .chain(p.config.sinks.iter().map(|c| ("sink", c)));
        for ((kind, c), (compiled, world)) in kinds.zip(compiled) {
            let retry = c.retry_or(&p.config.retry);
            println!("  ok  {kind:<11} `{}` {}", c.name, c.component.display());
            println!("        world   {world} (flumen:pipeline@{SPOKEN})");
            println!(
                "        code    {} in {} ms",
                match compiled.origin {
                    Origin::Cached => "from the compile cache",
                    Origin::Compiled => "compiled",
                },
                compiled.took.as_millis()
            );
            println!("        limits  {}", describe_limits(&c.limits));
            println!("        budgets {}", describe_budgets(&c.budgets));
            println!("        grants  {}", describe_grants(c));
            println!(
                "        failure {} attempts, then {}",
                retry.attempts,
                c.on_failure.as_str()
            );
            if kind == "sink" {
                println!("        calls   {}", describe_delivery(&c.delivery()));
            }
        }
        for w in exactly_once::warnings(&p.config) {
            println!("  warning: {w}");
        }
    }
    match connect {
        None => println!("config OK (run with --connect to also reach Kafka)"),
        Some(timeout) => {
            print!("{}", pipeline::connect(&config, timeout)?);
            if let Some(registry) = runtime.registry() {
                print!("{}", describe_subjects(&config, registry, timeout)?);
            }
            println!("config OK, and Kafka answers as it needs to");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the schema registry holds for the topics of the pipelines whose
/// components are granted it: each topic's `<topic>-value` and
/// `<topic>-key` subjects (Confluent's default naming), newest version.
/// A registry that does not answer is an error naming why.
fn describe_subjects(
    config: &Config,
    registry: &crate::registry::Registry,
    timeout: Duration,
) -> anyhow::Result<String> {
    let urls = config
        .schema_registry
        .as_ref()
        .map(|r| r.urls.join(", "))
        .unwrap_or_default();
    let mut out = format!("schema registry {urls}\n");
    for p in &config.pipelines {
        let granted = p
            .interceptors
            .iter()
            .chain(&p.sinks)
            .any(|c| c.schema_registry);
        if !granted {
            continue;
        }
        for topic in &p.topics {
            for field in ["value", "key"] {
                let subject = format!("{topic}-{field}");
                let deadline = std::time::Instant::now() + timeout;
                let latest = registry
                    .latest(&subject, deadline)
                    .with_context(|| format!("schema registry {urls}: subject `{subject}`"))?;
                out.push_str(&match latest {
                    Some(l) => format!(
                        "  ok  pipeline `{}`: subject `{subject}`: version {}, schema id {}, {:?}\n",
                        p.name,
                        l.version,
                        l.id.map_or("?".into(), |i| i.to_string()),
                        l.format
                    ),
                    None => format!(
                        "  --  pipeline `{}`: no subject `{subject}` (events of `{topic}` must name \
                         schemas registered under other subjects)\n",
                        p.name
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// The cluster and the librdkafka options flumen passes on, credentials
/// shown as redacted.
fn describe_kafka(kafka: &KafkaConfig) -> String {
    let mut out = format!("kafka {}", kafka.bootstrap_servers);
    for (section, options) in [
        ("options", kafka.option_strings().collect::<Vec<_>>()),
        (
            "producer options",
            kafka.producer_option_strings().collect(),
        ),
    ] {
        if options.is_empty() {
            continue;
        }
        let shown: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("{k}={}", secret::shown(k, v)))
            .collect();
        out.push_str(&format!("\n  {section}: {}", shown.join(", ")));
    }
    out
}

/// How the current version of a component was compiled, and the world it
/// implements.
fn compiled_and_world<P: GuestKind + Clone>(slot: &Slot<P>) -> (Compiled, &'static str) {
    let loaded = slot.current().1;
    (loaded.compiled(), P::WORLD)
}

fn describe_limits(l: &Limits) -> String {
    format!(
        "memory {} MiB, call timeout {} ms, fuel {}, instances {}, tables {} of {} elements, \
         recycle {}",
        l.memory_mb,
        l.call_timeout_ms,
        l.fuel.map_or("unlimited".into(), |f| f.to_string()),
        l.max_instances,
        l.max_tables,
        l.max_table_elements,
        match l.max_calls_per_instance {
            0 => "never".to_string(),
            n => format!("after {n} calls"),
        }
    )
}

/// A sink's ordering, window, batching and rate limit, in one line.
fn describe_delivery(d: &Delivery<'_>) -> String {
    let window = match (d.max_in_flight, d.adaptive) {
        (1, _) => "one at a time per partition".to_string(),
        (n, false) => format!("up to {n} in flight per partition"),
        (n, true) => format!("adaptive, 1 to {n} in flight per partition"),
    };
    let batching = match d.batch {
        None => "the pipeline's batches".to_string(),
        Some(b) => format!(
            "gathered to {} events or {} bytes or {} ms",
            b.max_events, b.max_bytes, b.max_wait_ms
        ),
    };
    let rate = match d.rate_limit {
        None => String::new(),
        Some(Rate::Events(r)) => format!(", at most {r} events/s"),
        Some(Rate::Calls(r)) => format!(", at most {r} calls/s"),
    };
    format!(
        "{window}, ordering {}, {batching}{rate}",
        d.ordering.as_str()
    )
}

fn describe_budgets(b: &Budgets) -> String {
    format!(
        "log {} lines and {} bytes a second, output {} bytes a call, produce {} records a send",
        b.log_lines_per_s, b.log_bytes_per_s, b.output_bytes_per_call, b.produce_records_per_send
    )
}

/// What the guest may reach; variables by name only, since their values
/// may be secrets.
fn describe_grants(c: &ComponentConfig) -> String {
    let mut grants: Vec<String> = c
        .dirs
        .iter()
        .map(|d| {
            format!(
                "dir {}→{} ({})",
                d.host.display(),
                d.guest,
                if d.read_only { "ro" } else { "rw" }
            )
        })
        .collect();
    let vars: Vec<&str> = c
        .env
        .keys()
        .chain(&c.env_from_host)
        .map(String::as_str)
        .collect();
    if !vars.is_empty() {
        grants.push(format!("env {}", vars.join(", ")));
    }
    if !c.http_allow.is_empty() {
        grants.push(format!("http {}", c.http_allow.join(", ")));
    }
    if !c.kafka_produce.is_empty() {
        grants.push(format!("kafka produce {}", c.kafka_produce.join(", ")));
    }
    if c.schema_registry {
        let register = if c.schema_registry_register {
            " (and register)"
        } else {
            ""
        };
        grants.push(format!("schema registry{register}"));
    }
    if grants.is_empty() {
        "none (no files, network or environment)".into()
    } else {
        grants.join("; ")
    }
}

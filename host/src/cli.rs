//! Command-line interface: `run`, `check`, `demo`.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use flumen::config::Config;
use flumen::runtime::{Origin, Runtime};
use flumen::stats::PipelineStats;
use flumen::{admin, demo, pipeline, reload};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "flumen",
    version,
    about = "Kafka → WebAssembly interceptors → WebAssembly sinks, committed only after delivery"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines of a config file until SIGINT/SIGTERM.
    Run {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and its components without consuming anything.
    Check {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a complete pipeline on an embedded Kafka broker; no setup needed.
    Demo {
        /// The demo pipeline.
        #[arg(long, default_value = "config/demo.toml")]
        config: PathBuf,
        /// How many sample events to produce.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Where the file sink writes `events-<partition>.jsonl`.
        #[arg(long, default_value = "target/demo-out")]
        out: PathBuf,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: logs redirected to a file stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Entry point: runs the command and maps errors to a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run { config } => run(config),
        Command::Check { config } => check(config),
        Command::Demo {
            config,
            events,
            out,
        } => demo_cmd(config, events, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path)?;
    let runtime = Runtime::for_config(&config).context("starting the WebAssembly runtime")?;
    let checked = pipeline::check(&config, &runtime)?;
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
            .map(|s| s.current().1.compiled())
            .chain(p.components.sinks.iter().map(|s| s.current().1.compiled()));
        let kinds = p
            .config
            .interceptors
            .iter()
            .map(|c| ("interceptor", c))
            .chain(p.config.sinks.iter().map(|c| ("sink", c)));
        for ((kind, c), compiled) in kinds.zip(compiled) {
            let retry = c.retry_or(&p.config.retry);
            println!("  ok  {kind:<11} `{}` {}", c.name, c.component.display());
            println!(
                "        code    {} in {} ms",
                match compiled.origin {
                    Origin::Cached => "from the compile cache",
                    Origin::Compiled => "compiled",
                },
                compiled.took.as_millis()
            );
            println!("        limits  {}", describe_limits(&c.limits));
            println!("        grants  {}", describe_grants(c));
            println!(
                "        failure {} attempts, then {}",
                retry.attempts,
                c.on_failure.as_str()
            );
        }
    }
    println!("config OK");
    Ok(ExitCode::SUCCESS)
}

fn describe_limits(l: &flumen::config::Limits) -> String {
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

/// What the guest may reach; variables by name only, since their values
/// may be secrets.
fn describe_grants(c: &flumen::config::ComponentConfig) -> String {
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
    if grants.is_empty() {
        "none (no files, network or environment)".into()
    } else {
        grants.join("; ")
    }
}

fn run(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path)?;
    // One worker thread: it keeps listening for a second signal while the
    // main thread drains.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // Installed before the start (compiling components can take a while),
    // so that an early SIGHUP is held for later instead of killing flumen.
    let mut hup = rt
        .block_on(async { signal(SignalKind::hangup()) })
        .context("installing the SIGHUP handler")?;
    let running = pipeline::start(&config)?;
    let reloader = running.reloader(&path);
    if let Err(e) = start_reload_triggers(&config, &reloader) {
        running.stop();
        return Err(e);
    }
    tracing::info!(
        pipelines = config.pipelines.len(),
        "flumen running; SIGINT or SIGTERM stops it, SIGHUP reloads the components"
    );
    let on_hup = reloader.clone();
    rt.spawn(async move {
        while hup.recv().await.is_some() {
            let r = on_hup.clone();
            // The reload compiles; keep it off the signal task.
            let _ = tokio::task::spawn_blocking(move || r.reload("SIGHUP")).await;
        }
    });
    rt.block_on(wait_for_signal())?;
    tracing::info!("signal received: stopping fetch, finishing in-flight batches, committing");
    // A second signal means "now": exit without waiting for the drain.
    rt.spawn(async {
        if wait_for_signal().await.is_ok() {
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        }
    });
    let stats = running.stats().to_vec();
    running.stop();
    for (name, s) in &stats {
        let n = |c: &std::sync::atomic::AtomicU64| PipelineStats::get(c);
        tracing::info!(pipeline = %name, consumed = n(&s.consumed), dropped = n(&s.dropped),
            finalized = n(&s.finalized), retries = n(&s.retries),
            dead_lettered = n(&s.dead_lettered), skipped = n(&s.skipped),
            failed_open = n(&s.failed_open), delivered = ?s.delivered(), "pipeline totals");
    }
    let r = reloader.stats();
    tracing::info!(
        applied = PipelineStats::get(&r.applied),
        rejected = PipelineStats::get(&r.rejected),
        swaps = PipelineStats::get(&r.swaps),
        "reload totals"
    );
    tracing::info!("flumen stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// The file watcher and the admin endpoint, as configured.
fn start_reload_triggers(config: &Config, reloader: &reload::ReloadHandle) -> anyhow::Result<()> {
    if config.reload.watch {
        reload::watch(
            reloader.clone(),
            Duration::from_millis(config.reload.debounce_ms),
        )
        .context("watching the component files for hot reload")?;
    }
    if let Some(admin) = &config.admin {
        admin::serve(&admin.listen, reloader.clone())
            .with_context(|| format!("starting the admin endpoint on {}", admin.listen))?;
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn demo_cmd(config: PathBuf, events: usize, out: PathBuf) -> anyhow::Result<ExitCode> {
    let summary = demo::run(&config, events, &out)?;
    println!("{summary}");
    println!("  output     {}", out.join("events-*.jsonl").display());
    Ok(if summary.accounted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

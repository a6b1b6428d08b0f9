//! Command-line interface: `run`, `check`, `demo`.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use flumen::config::Config;
use flumen::stats::PipelineStats;
use flumen::{demo, pipeline, runtime::Runtime};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
    let runtime = Runtime::new().context("starting the WebAssembly runtime")?;
    let checked = pipeline::check(&config, &runtime)?;
    for p in &checked {
        println!(
            "pipeline `{}`: topics {:?}, group `{}`",
            p.config.name, p.config.topics, p.config.group_id
        );
        let kinds = p
            .config
            .interceptors
            .iter()
            .map(|c| ("interceptor", c))
            .chain(p.config.sinks.iter().map(|c| ("sink", c)));
        for (kind, c) in kinds {
            let dirs: Vec<String> = c
                .dirs
                .iter()
                .map(|d| {
                    format!(
                        "{}→{}{}",
                        d.host.display(),
                        d.guest,
                        if d.read_only { " (ro)" } else { "" }
                    )
                })
                .collect();
            let retry = c.retry_or(&p.config.retry);
            println!(
                "  ok  {kind:<11} `{}` {} (memory {} MiB, call timeout {} ms, dirs [{}]; \
                 {} attempts, then {})",
                c.name,
                c.component.display(),
                c.limits.memory_mb,
                c.limits.call_timeout_ms,
                dirs.join(", "),
                retry.attempts,
                c.on_failure.as_str()
            );
        }
    }
    println!("config OK");
    Ok(ExitCode::SUCCESS)
}

fn run(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path)?;
    let running = pipeline::start(&config)?;
    tracing::info!(
        pipelines = config.pipelines.len(),
        "flumen running; SIGINT or SIGTERM stops it"
    );
    // One worker thread: it keeps listening for a second signal while the
    // main thread drains.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the signal handler")?;
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
    tracing::info!("flumen stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
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

//! The `flumen` command line, one file per command: [`run`], [`check`],
//! [`demo`], [`test`](mod@test) (with [`event_json`], its event format), [`top`],
//! [`new`] and [`import_flume`].

pub mod check;
pub mod demo;
pub mod event_json;
pub mod import_flume;
pub mod new;
pub mod run;
pub mod test;
pub mod top;

use clap::{Parser, Subcommand, ValueEnum};
use new::{NewKind, NewLang};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use test::TestArgs;

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
        /// Seconds between progress lines in the log (rates and lag per
        /// pipeline); 0 turns them off.
        #[arg(long, default_value_t = 60)]
        progress: u64,
    },
    /// Validate a config file and its components without consuming anything.
    Check {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Also connect: brokers reachable, credentials accepted, topics
        /// present, the group's committed offsets and lag.
        #[arg(long)]
        connect: bool,
        /// How long each network step of --connect may take, in seconds.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
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
    /// Run one component offline over events from a file and print, as JSON
    /// lines, its verdict on each event (and, for an interceptor, the event
    /// it passes on). No broker needed.
    Test(TestArgs),
    /// Create a guest project that builds as it stands: `NAME/` with the
    /// source, `wit/`, `build.sh`, sample events and a README.
    New {
        /// The language.
        #[arg(long, value_enum)]
        lang: NewLang,
        /// Interceptor or sink.
        #[arg(long, value_enum)]
        kind: NewKind,
        /// The guest's name (lower-case letters, digits, `_`, `-`).
        name: String,
        /// Where to create `NAME/`.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Convert a Flume agent's properties file into a flumen config (printed
    /// on stdout); what cannot be mapped is listed on stderr and in the
    /// config's header.
    ImportFlume {
        /// The Flume agent's properties file.
        file: PathBuf,
        /// The agent to convert, if the file defines several.
        #[arg(long)]
        agent: Option<String>,
        /// Where the guest library's components are, as the new config
        /// should name them (relative to the config file).
        #[arg(long, default_value = "guests/target/wasm32-wasip2/release")]
        guests: String,
    },
    /// A live view of a running flumen's rates, latency and lag, read from
    /// its admin endpoint's /metrics.
    Top {
        /// The admin endpoint (`[admin] listen` of the running flumen).
        #[arg(long, default_value = "127.0.0.1:9464")]
        admin: String,
        /// Seconds between frames.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
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
        Command::Run { config, progress } => run::command(config, progress),
        Command::Check {
            config,
            connect,
            timeout,
        } => check::command(config, connect.then(|| Duration::from_secs(timeout))),
        Command::Demo {
            config,
            events,
            out,
        } => demo::command(config, events, out),
        Command::Test(args) => test::command(args),
        Command::New {
            lang,
            kind,
            name,
            dir,
        } => new::command(lang, kind, &name, &dir),
        Command::ImportFlume {
            file,
            agent,
            guests,
        } => import_flume::command(&file, agent.as_deref(), &guests),
        Command::Top {
            admin,
            interval,
            once,
        } => top::command(&admin, interval, once),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: flumen's errors
/// already quote the cause that matters in their own message, so a cause
/// whose text is already there is left out rather than repeated.
pub fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("component `s`: cannot load: {source}")]
    struct Load {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_quoted_by_its_error_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Load { source: io }).context("pipeline `p`");
        assert_eq!(
            report(&e),
            "pipeline `p`: component `s`: cannot load: No such file"
        );
    }
}

//! Command-line interface: `run`, `check`, `demo`, `test`, `top`, `new`,
//! `import-flume`.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use flumen::config::Config;
use flumen::runtime::{Compiled, GuestKind, Origin, Runtime, Slot};
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
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: String,
        /// Seconds between frames.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum NewLang {
    Rust,
    Python,
    Js,
    C,
}

#[derive(Clone, Copy, ValueEnum)]
enum NewKind {
    Interceptor,
    Sink,
}

#[derive(clap::Args)]
struct TestArgs {
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
        Command::Run { config, progress } => run(config, progress),
        Command::Check { config } => check(config),
        Command::Demo {
            config,
            events,
            out,
        } => demo_cmd(config, events, out),
        Command::Test(args) => test_cmd(args),
        Command::New {
            lang,
            kind,
            name,
            dir,
        } => new_cmd(lang, kind, &name, &dir),
        Command::ImportFlume {
            file,
            agent,
            guests,
        } => import_flume_cmd(&file, agent.as_deref(), &guests),
        Command::Top {
            admin,
            interval,
            once,
        } => top_cmd(&admin, interval, once),
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
            let form = if world.starts_with("columnar-") {
                "columns"
            } else {
                "records"
            };
            println!("        world   {world} (batches as {form})");
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

/// How the current version of a component was compiled, and the world it
/// implements.
fn compiled_and_world<P: GuestKind + Clone>(slot: &Slot<P>) -> (Compiled, &'static str) {
    let loaded = slot.current().1;
    (loaded.compiled(), loaded.world())
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
    if !c.kafka_produce.is_empty() {
        grants.push(format!("kafka produce {}", c.kafka_produce.join(", ")));
    }
    if grants.is_empty() {
        "none (no files, network or environment)".into()
    } else {
        grants.join("; ")
    }
}

fn run(path: PathBuf, progress: u64) -> anyhow::Result<ExitCode> {
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
    if let Err(e) = start_reload_triggers(&config, &reloader, running.stats()) {
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
    if progress > 0 {
        rt.spawn(log_progress(
            running.stats().to_vec(),
            Duration::from_secs(progress),
        ));
    }
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
fn start_reload_triggers(
    config: &Config,
    reloader: &reload::ReloadHandle,
    pipelines: &[(String, std::sync::Arc<PipelineStats>)],
) -> anyhow::Result<()> {
    if config.reload.watch {
        reload::watch(
            reloader.clone(),
            Duration::from_millis(config.reload.debounce_ms),
        )
        .context("watching the component files for hot reload")?;
    }
    if let Some(admin) = &config.admin {
        admin::serve(&admin.listen, reloader.clone(), pipelines.to_vec())
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
    println!(
        "  output     {} (a file per sink and partition)",
        out.display()
    );
    Ok(if summary.accounted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Splits `KEY=VALUE`, naming the flag in the error.
fn key_value<'a>(flag: &str, arg: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    arg.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--{flag} `{arg}`: expected KEY=VALUE"))
}

fn test_cmd(args: TestArgs) -> anyhow::Result<ExitCode> {
    use flumen::event_json;
    use flumen::offline::Component;
    use flumen::runtime::bindings::Source;
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
    let cfg: flumen::config::ComponentConfig = toml::Value::Table(table)
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
    if let Some(dir) = flumen::runtime::cache::default_dir() {
        runtime = runtime.with_cache(&dir);
    }
    if let Some(bootstrap) = args.kafka {
        runtime = runtime.with_producer(
            flumen::config::KafkaConfig {
                bootstrap_servers: bootstrap,
                options: Default::default(),
            },
            Duration::from_millis(cfg.limits.call_timeout_ms),
        );
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

fn top_cmd(admin: &str, interval: f64, once: bool) -> anyhow::Result<ExitCode> {
    let every = Duration::try_from_secs_f64(interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--interval must be a positive number of seconds"))?;
    flumen::top::run(admin, every, once)?;
    Ok(ExitCode::SUCCESS)
}

/// Logs a progress line per pipeline every `every`: totals, the rate since
/// the last line, and the lag, so that a long run's log shows it moving.
async fn log_progress(pipelines: Vec<(String, std::sync::Arc<PipelineStats>)>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last: Vec<u64> = vec![0; pipelines.len()];
    loop {
        tick.tick().await;
        for ((name, s), last) in pipelines.iter().zip(&mut last) {
            let consumed = PipelineStats::get(&s.consumed);
            let lag: i64 = s.lag().iter().map(|(_, l)| l).sum();
            tracing::info!(
                pipeline = %name,
                consumed,
                per_s = (consumed.saturating_sub(*last) as f64 / every.as_secs_f64()).round() as u64,
                dropped = PipelineStats::get(&s.dropped),
                finalized = PipelineStats::get(&s.finalized),
                delivered = ?s.delivered(),
                retries = PipelineStats::get(&s.retries),
                blocked = PipelineStats::get(&s.blocked),
                lag,
                "progress"
            );
            *last = consumed;
        }
    }
}

fn new_cmd(
    lang: NewLang,
    kind: NewKind,
    name: &str,
    parent: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use flumen::scaffold::{create, Kind, Lang};
    let lang = match lang {
        NewLang::Rust => Lang::Rust,
        NewLang::Python => Lang::Python,
        NewLang::Js => Lang::Js,
        NewLang::C => Lang::C,
    };
    let kind = match kind {
        NewKind::Interceptor => Kind::Interceptor,
        NewKind::Sink => Kind::Sink,
    };
    let dir = create(lang, kind, name, parent)?;
    println!("created {}", dir.display());
    println!(
        "next: read {}, then run its build.sh",
        dir.join("README.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn import_flume_cmd(
    file: &std::path::Path,
    agent: Option<&str>,
    guests: &str,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let props = flumen::flume_import::parse_properties(&text);
    let imported = flumen::flume_import::import(&props, agent, guests)
        .with_context(|| format!("converting {}", file.display()))?;
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

//! The escape suite's "flooding and exhaustion" section: hostile guests
//! that stay inside their sandbox but try to make the host itself do
//! unbounded work for them (write log, hold answers, produce records, spin
//! or allocate in `init`), each under the default budgets unless a row says
//! otherwise.
//!
//! Each row attacks for a few seconds while a second, well-behaved guest of
//! the same runtime keeps calling on another thread (as another partition
//! or pipeline would), and reports:
//! - how the attack ended (the guest's answer, or the named error of the
//!   call the host stopped: the call fails, so its events are retried under
//!   `on_failure` and none is lost or committed);
//! - the bytes of host log written during it, and that rate per minute;
//! - the host's peak RSS during it;
//! - the other guest's calls per second before and during it.

use super::{cell, Captured};
use flumen::config::Config;
use flumen::contract::{Batch, Event, Source};
use flumen::runtime::{
    GuestTag, InterceptorComponent, InterceptorGuest, Runtime, SinkComponent, SinkGuest, Slot,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One row of the section.
pub struct FloodRow {
    pub attack: &'static str,
    pub outcome: String,
    pub log_bytes: usize,
    pub log_per_min: f64,
    pub peak_rss_mib: u64,
    pub other_before: f64,
    pub other_during: f64,
    pub ok: bool,
}

/// What a row must come to.
enum Want {
    /// The guest's calls complete, and the host log stays under 5 MB a
    /// minute, saying that lines were dropped and under which budget.
    Throttled,
    /// The host stops the call with an error containing this.
    Stopped(&'static str),
    /// As `Stopped`, and the test process's peak RSS during the row stays
    /// within this many MiB of where it started: the host stopped copying
    /// at the budget instead of measuring a finished copy.
    StoppedWithin(&'static str, u64),
}

fn config(dir: &Path, kind: &str, guest: &str, attempt: &str, extra: &str) -> Config {
    let toml = config_text(kind, guest, attempt, extra);
    Config::parse(&toml, dir).expect("flooding row config")
}

/// The TOML of a pipeline with one `kind` component, `guest`, making
/// `attempt`; `extra` goes into its table (before its config).
fn config_text(kind: &str, guest: &str, attempt: &str, extra: &str) -> String {
    let (extra, target) = match extra.strip_prefix("target = ") {
        Some(t) => ("", format!("target = {t}")),
        None => (extra, String::new()),
    };
    format!(
        r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        [[pipeline]]
        name = "flood"
        topics = ["t"]
        group_id = "g"
        [[pipeline.{kind}]]
        name = "{guest}"
        component = "{wasm}"
        {extra}
        [pipeline.{kind}.config]
        attempt = "{attempt}"
        {target}
        {sink}
        "#,
        wasm = super::support::guest(guest).display(),
        // A pipeline needs a sink; an interceptor's row has this one.
        sink = if kind == "interceptor" {
            format!(
                "[[pipeline.sink]]\nname = \"s\"\ncomponent = \"{}\"",
                super::support::guest("escape").display()
            )
        } else {
            String::new()
        },
    )
}

fn tag(name: &str) -> GuestTag {
    GuestTag {
        component: name.into(),
        pipeline: "flood".into(),
        partition: None,
    }
}

fn batch() -> Batch {
    Batch::from_events(&[Event {
        offset: 0,
        timestamp: None,
        key: None,
        value: Some(b"x".to_vec()),
        headers: Vec::new(),
    }])
    .expect("one event")
}

fn source() -> Source {
    Source {
        topic: "t".into(),
        partition: 0,
    }
}

/// Calls the guest of a row once; `Ok(answer)` or `Err(the host's error)`.
type Call = Box<dyn FnMut() -> Result<String, String>>;

/// Loads a row's guest and gives back how to call it.
type Setup<'a> = Box<dyn Fn() -> Call + 'a>;

fn sink_call(runtime: &Runtime, dir: &Path, attempt: &str, extra: &str) -> Call {
    let cfg = config(dir, "sink", "escape", attempt, extra);
    let loaded: SinkComponent = runtime
        .load(&cfg.pipelines[0].sinks[0])
        .expect("load escape");
    let mut guest = SinkGuest::new(Slot::new(loaded), tag("escape"));
    let (source, batch) = (source(), batch());
    Box::new(move || {
        guest
            .deliver(&source, &batch)
            .map(|v| format!("{:.80?}", v.first()))
            .map_err(|e| e.to_string())
    })
}

fn interceptor_call(runtime: &Runtime, dir: &Path, attempt: &str, extra: &str) -> Call {
    let cfg = config(dir, "interceptor", "flood", attempt, extra);
    let loaded: InterceptorComponent = runtime
        .load(&cfg.pipelines[0].interceptors[0])
        .expect("load flood");
    let mut guest = InterceptorGuest::new(Slot::new(loaded), tag("flood"));
    let (source, batch) = (source(), batch());
    Box::new(move || {
        guest
            .process(&source, &batch)
            .map(|v| format!("{} verdicts", v.len()))
            .map_err(|e| e.to_string())
    })
}

/// The process's peak resident set since the last [`reset_peak`], in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Starts the peak resident set afresh (Linux: `clear_refs` value 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A well-behaved guest calling on its own thread, counting its calls.
struct Bystander {
    calls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bystander {
    fn start(runtime: &Runtime, dir: &Path) -> Self {
        let calls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = config(dir, "interceptor", "flood", "noop", "");
        let loaded: InterceptorComponent = runtime
            .load(&cfg.pipelines[0].interceptors[0])
            .expect("load bystander");
        let (c, s) = (calls.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut guest = InterceptorGuest::new(Slot::new(loaded), tag("bystander"));
            let (source, batch) = (source(), batch());
            while !s.load(Ordering::Relaxed) {
                if guest.process(&source, &batch).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            calls,
            stop,
            thread: Some(thread),
        }
    }

    /// Its calls per second over `window`.
    fn rate(&self, window: Duration) -> f64 {
        let before = self.calls.load(Ordering::Relaxed);
        std::thread::sleep(window);
        (self.calls.load(Ordering::Relaxed) - before) as f64 / window.as_secs_f64()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `call` over and over for `for_how_long` (at least once), and
/// returns the last outcome.
fn attack(call: &mut Call, for_how_long: Duration) -> String {
    let started = Instant::now();
    let mut last;
    loop {
        last = match call() {
            Ok(answer) => format!("answered: {answer}"),
            Err(e) => format!("stopped: {e}"),
        };
        if started.elapsed() >= for_how_long || last.starts_with("stopped: ") {
            return last;
        }
    }
}

/// Runs the section's rows.
pub fn run(captured: &Captured, dir: &Path) -> Vec<FloodRow> {
    let runtime = Runtime::new(false).expect("runtime");
    let bystander = Bystander::start(&runtime, dir);
    // Each row's attack lasts this long; a throttled flood is measured over
    // all of it.
    let window = Duration::from_secs(3);
    #[rustfmt::skip]
    let rows: Vec<(&str, Setup<'_>, Want)> = vec![
        ("log flood: 20,000 lines of 1 KB through `log` and an 8 MB stdout line, per call",
            Box::new(|| sink_call(&runtime, dir, "log-flood", "")), Want::Throttled),
        ("stdout flood: 200,000 short lines per call",
            Box::new(|| sink_call(&runtime, dir, "stdout-flood", "")), Want::Throttled),
        ("giant replacements: a 96 MiB replacement per event",
            Box::new(|| interceptor_call(&runtime, dir, "giant-replacements", "")),
            Want::Stopped("budgets.output_bytes_per_call")),
        // wasmtime's own cap on a copy is 128 MiB; a 16 MiB budget shows
        // that flumen's is the one that holds.
        ("aliased replacements: 4,096 replacements pointing at the same 1 MiB of guest memory, 4 GiB if copied (output_bytes_per_call = 16 MiB)",
            Box::new(|| interceptor_call(&runtime, dir, "aliased-replacements",
                "budgets = { output_bytes_per_call = 16777216 }")),
            Want::StoppedWithin("16777216 bytes", 48)),
        ("many routes: a million sink names per event (100 MB)",
            Box::new(|| interceptor_call(&runtime, dir, "many-routes", "")),
            Want::Stopped("budgets.output_bytes_per_call")),
        ("giant failure reason: 100 MiB per event",
            Box::new(|| sink_call(&runtime, dir, "giant-reason", "")),
            Want::Stopped("budgets.output_bytes_per_call")),
        ("producer flood: 100,000 records in one `send`",
            Box::new(|| sink_call(&runtime, dir, "produce-flood", "")),
            Want::Stopped("budgets.produce_records_per_send")),
        ("`init` spinning (call_timeout_ms = 500)",
            Box::new(|| sink_call(&runtime, dir, "init-cpu", "limits = { call_timeout_ms = 500 }")),
            Want::Stopped("interrupt")),
        ("`init` allocating without bound (memory_mb = 64)",
            Box::new(|| sink_call(&runtime, dir, "init-memory", "limits = { memory_mb = 64 }")),
            Want::Stopped("memory")),
    ];
    let mut out = Vec::new();
    for (attack_name, make, want) in rows {
        let other_before = bystander.rate(Duration::from_millis(500));
        let mut call = make();
        reset_peak();
        let rss_before = peak_rss_mib();
        let log_before = captured.len();
        let started = Instant::now();
        let calls_before = bystander.calls.load(Ordering::Relaxed);
        let outcome = attack(&mut call, window);
        let took = started.elapsed();
        let other_during =
            (bystander.calls.load(Ordering::Relaxed) - calls_before) as f64 / took.as_secs_f64();
        let peak_rss_mib = peak_rss_mib();
        drop(call);
        let log_bytes = captured.len() - log_before;
        let log_per_min = log_bytes as f64 / took.as_secs_f64() * 60.0;
        let flowing = other_during > 0.0;
        let stopped = |what: &str| outcome.starts_with("stopped: ") && outcome.contains(what);
        let ok = flowing
            && match want {
                // "A few MB per minute" at most; and the drops were reported.
                Want::Throttled => {
                    outcome.starts_with("answered: ")
                        && log_per_min < 5e6
                        && captured
                            .text_since(log_before)
                            .contains("budgets.log_lines_per_s")
                }
                Want::Stopped(what) => stopped(what),
                Want::StoppedWithin(what, mib) => stopped(what) && peak_rss_mib <= rss_before + mib,
            };
        out.push(FloodRow {
            attack: attack_name,
            outcome: cell(&outcome),
            log_bytes,
            log_per_min,
            peak_rss_mib,
            other_before,
            other_during,
            ok,
        });
    }
    out
}

/// A reload storm: 50 triggers in 5 s, each after a change to the
/// component's config, with a component that takes a second to start. The
/// triggers must coalesce (a handful of reloads run, not 50), the last
/// change must be the version that runs, and the other guest must keep
/// flowing.
pub fn reload_storm(captured: &Captured, dir: &Path) -> FloodRow {
    use flumen::ops::pipeline::Components;
    use flumen::ops::reload::{ReloadHandle, Reloaded};
    let runtime = Runtime::new(false).expect("runtime");
    let bystander = Bystander::start(&runtime, dir);
    let path = dir.join("storm.toml");
    let write = |i: usize| {
        let text = config_text("sink", "escape", "init-slow", &format!("target = \"{i}\""));
        std::fs::write(&path, text).expect("write the storm's config");
    };
    write(0);
    let config = Config::load(&path).expect("storm config");
    let loaded: SinkComponent = runtime
        .load(&config.pipelines[0].sinks[0])
        .expect("load escape");
    let slot = Slot::new(loaded);
    let components = Components {
        interceptors: Vec::new(),
        sinks: vec![slot.clone()],
        dead_letter: None,
    };
    let handle = ReloadHandle::new(&path, runtime, config, vec![components]);
    let other_before = bystander.rate(Duration::from_millis(500));
    reset_peak();
    let log_before = captured.len();
    let calls_before = bystander.calls.load(Ordering::Relaxed);
    let started = Instant::now();
    let triggers: Vec<_> = (1..=50)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(100));
            write(i);
            let h = handle.clone();
            std::thread::spawn(move || h.reload("storm"))
        })
        .collect();
    let (mut ran, mut queued, mut rejected) = (0, 0, 0);
    for t in triggers {
        match t.join().expect("trigger thread") {
            Ok(Reloaded::Ran(_)) => ran += 1,
            Ok(Reloaded::Queued) => queued += 1,
            Err(_) => rejected += 1,
        }
    }
    let took = started.elapsed();
    let other_during =
        (bystander.calls.load(Ordering::Relaxed) - calls_before) as f64 / took.as_secs_f64();
    let runs = handle.stats().applied.load(Ordering::Relaxed)
        + handle.stats().rejected.load(Ordering::Relaxed);
    let last = slot.current().1.config().config.get("target").cloned();
    let log_bytes = captured.len() - log_before;
    let ok = ran + queued == 50
        && rejected == 0
        && runs <= 12
        && last.as_ref().and_then(|v| v.as_str()) == Some("50")
        && other_during > 0.0;
    FloodRow {
        attack: "reload storm: 50 triggers in 5 s, a component that takes 1 s to start",
        outcome: format!(
            "{runs} reloads ran for 50 triggers in {:.1} s ({queued} queued behind a running \
             one); the last change runs (target = {})",
            took.as_secs_f64(),
            last.map_or("?".into(), |v| v.to_string())
        ),
        log_bytes,
        log_per_min: log_bytes as f64 / took.as_secs_f64() * 60.0,
        peak_rss_mib: peak_rss_mib(),
        other_before,
        other_during,
        ok,
    }
}

/// Prints the section's table.
pub fn print(rows: &[FloodRow]) {
    println!();
    println!("Flooding and exhaustion (default budgets unless the row says otherwise):");
    println!();
    println!("| attack | outcome | host log written | host log per minute | peak RSS | other guest, calls/s before → during | pass |");
    println!("|---|---|---:|---:|---:|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} KB | {:.2} MB | {} MiB | {:.0} → {:.0} | {} |",
            r.attack,
            r.outcome,
            r.log_bytes as f64 / 1e3,
            r.log_per_min / 1e6,
            r.peak_rss_mib,
            r.other_before,
            r.other_during,
            if r.ok { "yes" } else { "**NO**" }
        );
    }
}

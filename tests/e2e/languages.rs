//! Guests in other languages, built from source by guests/build.sh, in a
//! real pipeline: each language's header filter drops the debug events and
//! its own sink delivers the rest, beside the Rust file sink. Every kept event
//! must reach both sinks exactly once, in partition order, and the offsets
//! must be committed to the end. The Python, JavaScript and C file sinks must
//! write the Rust one's JSON lines exactly (including values that are not
//! UTF-8); JavaScript's log sink, beside them, delivers into flumen's log, a
//! line per event.
//!
//! Every language runs against a tansu broker process; C also on the
//! embedded mock cluster.
//!
//! Python components are 18 MB and take half a minute to compile, so the
//! test also restarts flumen on the same compile cache: the second start must
//! load every component from it.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EVENTS: usize = 8_000;
const PARTITIONS: i32 = 4;

/// A component built by guests/build.sh for a language other than Rust.
fn lang_guest(lang: &str, name: &str) -> PathBuf {
    let p = repo().join(format!("guests/target/{lang}/{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run guests/build.sh first",
        p.display()
    );
    p
}

/// The language's filter, its own file sink (JavaScript: and its log sink),
/// and the Rust file sink.
fn components(lang: &str, own_sink: bool) -> String {
    let mut sink = String::new();
    if own_sink {
        // The table file_sink_at ends with stays open for the limits line.
        sink = format!(
            "{}limits = {{ memory_mb = 256, call_timeout_ms = 30000 }}\n",
            file_sink_at(lang, &lang_guest(lang, "file_sink"), ", sync = false")
        );
    }
    if own_sink && lang == "js" {
        sink.push_str(&format!(
            r#"
[[pipeline.sink]]
name = "js-log"
component = "{}"
config = {{ level = "info" }}
limits = {{ memory_mb = 256, call_timeout_ms = 30000 }}
# A line per event is this sink's job: the default log budget (100 lines a
# second) would drop most of them.
budgets = {{ log_lines_per_s = 1000000, log_bytes_per_s = 268435456 }}
"#,
            lang_guest("js", "log_sink").display()
        ));
    }
    format!(
        r#"
[[pipeline.interceptor]]
name = "{lang}-drop-debug"
component = "{filter}"
config = {{ header = "level", value = "debug" }}
limits = {{ memory_mb = 256, call_timeout_ms = 30000 }}
{sink}{rust}"#,
        filter = lang_guest(lang, "drop_header").display(),
        rust = file_sink("rust", "file_sink", ", sync = false"),
    )
}

/// Runs flumen until `produced` is committed; returns how long its
/// components took to load and the log.
fn run_until_done(
    config: &Path,
    bootstrap: &str,
    work: &Workdir,
    run: &str,
    produced: &Produced,
) -> (Duration, String) {
    let mut flumen = Flumen::run(config, &work.path(&format!("flumen-{run}.log")));
    wait_committed(
        &mut flumen,
        bootstrap,
        "lang-group",
        "lang-events",
        PARTITIONS,
        Duration::from_secs(300),
        |c| c == &produced.end,
    );
    if run == "warm" {
        // A reload (SIGHUP) with nothing changed loads nothing again: the
        // 12–18 MB Python and JavaScript components are not recompiled,
        // nor even read from the cache.
        let loads = flumen.log_text().matches("component loaded").count();
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &flumen.pid().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(hup.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !flumen.log_text().contains("reload: nothing changed") {
            assert!(
                std::time::Instant::now() < deadline,
                "no reload:\n{}",
                tail(&flumen.log_text(), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            flumen.log_text().matches("component loaded").count(),
            loads,
            "a reload of unchanged components loaded one again"
        );
    }
    let log = flumen.log_text();
    let status = flumen.terminate();
    assert!(status.success(), "{run}: flumen exit status {status}");
    (load_time(&log), log)
}

/// How long the components took to load, summed from the log's
/// "component loaded" lines.
fn load_time(log: &str) -> Duration {
    let ms: u64 = log
        .lines()
        .filter(|l| l.contains("component loaded"))
        .filter_map(|l| {
            l.split("ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    Duration::from_millis(ms)
}

fn check_sinks(work: &Workdir, lang: &str, own_sink: bool, produced: &Produced) {
    let expected: BTreeSet<(i32, i64)> = produced.kept().into_iter().collect();
    let sinks = if own_sink {
        vec![lang, "rust"]
    } else {
        vec!["rust"]
    };
    for sink in sinks {
        let lines = read_sink(&work.out, sink);
        let distinct: BTreeSet<(i32, i64)> = lines.iter().copied().collect();
        assert_eq!(
            lines.len(),
            distinct.len(),
            "{lang}: sink {sink} has duplicates"
        );
        assert_eq!(
            distinct, expected,
            "{lang}: sink {sink} differs from the kept events"
        );
        assert_in_order(&lines, sink);
    }
    if !own_sink {
        return;
    }
    if lang == "js" {
        let logged = js_log_lines(work);
        let distinct: BTreeSet<(i32, i64)> = logged.iter().copied().collect();
        assert_eq!(
            logged.len(),
            distinct.len(),
            "js: the log sink logged duplicates"
        );
        assert_eq!(
            distinct, expected,
            "js: the log sink's lines differ from the kept events"
        );
        assert_in_order(&logged, "js-log");
    }
    let ours = read_sink_json(&work.out, lang);
    let rust = read_sink_json(&work.out, "rust");
    assert_eq!(ours.len(), rust.len());
    for (a, b) in ours.iter().zip(&rust) {
        assert_eq!(
            a, b,
            "{lang}: the {lang} file sink's line differs from the Rust one's"
        );
    }
    assert!(
        ours.iter().any(|l| l.get("value_base64").is_some()),
        "{lang}: no non-UTF-8 value was exercised"
    );
}

/// `(partition, offset)` of every line the JavaScript log sink wrote into
/// the runs' logs (`<offset><TAB><value>`, with the partition among the
/// log line's fields), in the order written.
fn js_log_lines(work: &Workdir) -> Vec<(i32, i64)> {
    ["cold", "warm"]
        .iter()
        .filter_map(|run| std::fs::read_to_string(work.path(&format!("flumen-{run}.log"))).ok())
        .flat_map(|log| {
            log.lines()
                .filter(|l| l.contains("component=js-log"))
                .filter_map(|l| {
                    let offset = l.split("flumen::guest: ").nth(1)?.split('\t').next()?;
                    let partition = l.rsplit(" partition=").next()?.split_whitespace().next()?;
                    Some((partition.parse().ok()?, offset.parse().ok()?))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run_language(lang: &str, own_sink: bool, broker: Broker, label: &str) {
    let work = Workdir::new();
    let topic = "lang-events";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let mut produced = produce(&bootstrap, topic, PARTITIONS, EVENTS, |_| false);
    let config = work.config(&bootstrap, topic, "lang-group", components(lang, own_sink));
    // A cache of this test's own, so that the first start is cold.
    let cache = work.path("compile-cache");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[cache]\ndir = \"{}\"\n", cache.display()));
    std::fs::write(&config, text).expect("config");

    let (cold, log) = run_until_done(&config, &bootstrap, &work, "cold", &produced);
    // The filter, the Rust file sink, the language's file sink and, for
    // JavaScript, its log sink.
    let loaded = 2 + usize::from(own_sink) + usize::from(own_sink && lang == "js");
    assert_eq!(
        log.matches("origin=Compiled").count(),
        loaded,
        "{label}: cold start:\n{}",
        tail(&log, 30)
    );
    check_sinks(&work, lang, own_sink, &produced);

    // A restart pays no compilation: every component comes from the cache.
    produced.merge(produce(&bootstrap, topic, PARTITIONS, EVENTS, |_| false));
    let (warm, log) = run_until_done(&config, &bootstrap, &work, "warm", &produced);
    assert_eq!(
        log.matches("origin=Cached").count(),
        loaded,
        "{label}: warm start:\n{}",
        tail(&log, 30)
    );
    check_sinks(&work, lang, own_sink, &produced);
    eprintln!(
        "{label}: {} events, {} kept, all in every sink{}; components loaded in {cold:.1?} \
         cold, {warm:.1?} from the compile cache",
        produced.events.len(),
        produced.kept().len(),
        match (own_sink, lang) {
            (false, _) => String::new(),
            (true, "js") => ", identical lines in the js and Rust file sinks, one log line per \
                             event from the JavaScript log sink"
                .to_owned(),
            (true, _) => format!(", identical lines in the {lang} and Rust file sinks"),
        }
    );
}

#[test]
fn python_guests_tansu() {
    run_language("python", true, Broker::tansu(), "python, tansu");
}

#[test]
fn js_guests_tansu() {
    run_language("js", true, Broker::tansu(), "js, tansu");
}

#[test]
fn c_guests_tansu() {
    run_language("c", true, Broker::tansu(), "c, tansu");
}

/// The embedded default broker too, with the quickest guests to compile.
#[test]
fn c_guests_mock_cluster() {
    run_language("c", true, Broker::mock(), "c, mock cluster");
}

//! Budgets in a running flumen: a pipeline whose sink floods the log (20,000
//! lines of 1 KB through `log` and an 8 MB stdout line on every call, on one
//! partition, so that it keeps one core of two busy) runs beside a
//! well-behaved pipeline. The flood is held to its log budget,
//! the other pipeline keeps flowing, and the flooding pipeline still
//! delivers and commits every event (lost = 0).

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const CALM: &str = "e2e-budget-calm";
const FLOOD: &str = "e2e-budget-flood";
/// The calm pipeline's partitions; the flood has one, so that it can take
/// one core of two, as one hostile partition would.
const PARTITIONS: i32 = 2;
const CALM_EVENTS: usize = 300_000;
const FLOOD_EVENTS: usize = 4_000;

/// A config with the calm pipeline (reading `CALM` as `group`) and, with
/// `flood`, the flooding one.
fn config(work: &Workdir, bootstrap: &str, group: &str, flood: bool) -> std::path::PathBuf {
    let out = work.out.display();
    let mut text = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500 }}

[[pipeline]]
name = "calm"
topics = ["{CALM}"]
group_id = "{group}"
commit = {{ interval_ms = 100 }}
[[pipeline.sink]]
name = "calm"
component = "{sink}"
config = {{ path = "/out/{group}-%{{partition}}.jsonl", sync = false }}
dirs = [{{ host = "{out}", guest = "/out" }}]
"#,
        sink = guest("file_sink").display(),
    );
    if flood {
        text.push_str(&format!(
            r#"
[[pipeline]]
name = "flood"
topics = ["{FLOOD}"]
group_id = "{group}-flood"
commit = {{ interval_ms = 100 }}
batch = {{ max_events = 100 }}
[[pipeline.sink]]
name = "flooder"
component = "{escape}"
config = {{ attempt = "log-flood", target = "deliver" }}
"#,
            escape = guest("escape").display(),
        ));
    }
    let path = work.path(&format!("{group}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

/// What one run measured.
struct Run {
    /// The calm pipeline's events per second, from its first commit to its
    /// last.
    calm_per_s: f64,
    /// Whether every other group was still short of its end when the calm
    /// pipeline reached its own: then the calm rate was measured while the
    /// flood ran.
    others_outlasted_calm: bool,
    /// Bytes of flumen's log, and the run's length.
    log_bytes: u64,
    took: Duration,
    /// flumen's peak RSS, sampled.
    peak_rss_mib: u64,
    log: String,
}

/// Runs flumen on `config` until every `(group, topic, end)` of `ends` is
/// committed to its end; the first is the calm pipeline's.
fn run(
    config: &Path,
    log: &Path,
    bootstrap: &str,
    ends: &[(&str, &str, &BTreeMap<i32, i64>)],
) -> Run {
    let mut flumen = Flumen::run(config, log);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let (mut first, mut calm_done, mut peak) = (None, None, 0);
    let mut others_outlasted_calm = false;
    loop {
        peak = peak.max(flumen.rss_kib().unwrap_or(0));
        // Each group's commits, asked once a tick; the first is the calm
        // pipeline's.
        let now: Vec<_> = ends
            .iter()
            .map(|(g, t, end)| committed(bootstrap, g, t, end.len() as i32))
            .collect();
        if first.is_none() && now[0].values().any(|&o| o > 0) {
            first = Some(Instant::now());
        }
        // The calm pipeline's rate ends at its own last commit, not at the
        // flood's: the flood may take longer, and waiting for it would
        // measure the flood's length instead.
        if calm_done.is_none() && now[0] == *ends[0].2 {
            calm_done = Some(Instant::now());
            others_outlasted_calm = now[1..]
                .iter()
                .zip(&ends[1..])
                .all(|(c, (_, _, end))| c != *end);
        }
        if now.iter().zip(ends).all(|(c, (_, _, end))| c == *end) {
            break;
        }
        assert!(
            flumen.alive(),
            "flumen exited early:\n{}",
            flumen.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "timed out; log tail:\n{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let done = calm_done.unwrap_or_else(Instant::now);
    let span = first
        .map_or(took, |f| done.duration_since(f))
        .max(Duration::from_millis(50));
    let log_text = flumen.log_text();
    assert!(flumen.terminate().success(), "flumen exit");
    Run {
        calm_per_s: CALM_EVENTS as f64 / span.as_secs_f64(),
        others_outlasted_calm,
        log_bytes: std::fs::metadata(log).map_or(0, |m| m.len()),
        took,
        peak_rss_mib: peak / 1024,
        log: log_text,
    }
}

#[test]
fn a_log_flood_is_held_to_its_budget_and_the_other_pipeline_flows() {
    let broker = Broker::mock();
    broker.create_topic(CALM, PARTITIONS);
    broker.create_topic(FLOOD, 1);
    let bootstrap = broker.bootstrap();
    let calm = produce(&bootstrap, CALM, PARTITIONS, CALM_EVENTS, |_| false);
    let flood = produce(&bootstrap, FLOOD, 1, FLOOD_EVENTS, |_| false);
    let work = Workdir::new();

    // The calm pipeline alone, then beside the flood (a new group, so it
    // reads everything again).
    let alone_cfg = config(&work, &bootstrap, "alone", false);
    let alone = run(
        &alone_cfg,
        &work.path("alone.log"),
        &bootstrap,
        &[("alone", CALM, &calm.end)],
    );
    let beside_cfg = config(&work, &bootstrap, "beside", true);
    let beside = run(
        &beside_cfg,
        &work.path("beside.log"),
        &bootstrap,
        &[
            ("beside", CALM, &calm.end),
            ("beside-flood", FLOOD, &flood.end),
        ],
    );

    let flood_log = beside.log_bytes.saturating_sub(alone.log_bytes);
    let per_min = flood_log as f64 / beside.took.as_secs_f64() * 60.0;
    eprintln!(
        "| run | calm pipeline events/s | flumen log | log per minute | peak RSS |\n\
         |---|---:|---:|---:|---:|\n\
         | calm alone | {:.0} | {:.1} KB | — | {} MiB |\n\
         | calm beside the log flood ({FLOOD_EVENTS} events, {} calls of 20,000 lines and 8 MB of stdout) | {:.0} | {:.1} KB | {:.2} MB (the flood's share) | {} MiB |",
        alone.calm_per_s,
        alone.log_bytes as f64 / 1e3,
        alone.peak_rss_mib,
        FLOOD_EVENTS / 100,
        beside.calm_per_s,
        beside.log_bytes as f64 / 1e3,
        per_min / 1e6,
        beside.peak_rss_mib,
    );
    // Unbudgeted, the same flood wrote 347 MB per 10 calls.
    assert!(
        per_min < 5e6,
        "the flood wrote {flood_log} bytes of log in {:?}",
        beside.took
    );
    assert!(
        beside.log.contains("budgets.log_lines_per_s") && beside.log.contains("dropped"),
        "no report of the dropped lines:\n{}",
        tail(&beside.log, 20)
    );
    // The other pipeline kept flowing; both delivered everything (`run`
    // waited for every offset to be committed), and the calm sink wrote
    // every event. The calm rate counts only if the flood outlasted it.
    assert!(
        beside.others_outlasted_calm,
        "the flood ended before the calm pipeline did, so its rate was not measured under attack"
    );
    // The flood's guest takes one core of two, so half the rate alone is
    // what the calm pipeline can expect; 40 % leaves room for noise.
    assert!(
        beside.calm_per_s > alone.calm_per_s * 0.4,
        "the calm pipeline slowed from {:.0} to {:.0} events/s",
        alone.calm_per_s,
        beside.calm_per_s
    );
    let written: std::collections::BTreeSet<(i32, i64)> =
        read_sink(&work.out, "beside").into_iter().collect();
    assert_eq!(written.len(), CALM_EVENTS, "calm events written (lost = 0)");
}

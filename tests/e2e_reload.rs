//! Hot reload under load: while events keep arriving, the file sink is
//! replaced 10 times — through the file watcher, SIGHUP and `POST /reload`
//! in turn — and 3 of the replacements are broken (not a component, the
//! wrong world, a config its `init` refuses). Then a change that needs a
//! restart (the topics) is refused.
//!
//! Every version labels its lines (`label = "v<version>"`), so the output
//! shows where each partition switched; the suite checks that it switched
//! exactly at the batch boundary flumen logged, that nothing was lost or
//! duplicated, that the broken versions were rejected while the old one
//! kept running, and that the consumer group was never rebalanced. It
//! prints the longest pause in delivery around a swap next to the longest
//! pause elsewhere.
//!
//! Then a partition blocked by its sink takes a fix by reload, and an
//! 18 MB Python interceptor is recompiled while flumen works through a
//! backlog: delivery must keep its pace during the compile.
//!
//! Run: `cargo test --test e2e_reload`.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const TOPIC: &str = "e2e-reload";
const GROUP: &str = "reload-group";
const PARTITIONS: i32 = 4;
/// Events waiting when the compile-under-load run starts, over
/// `BACKLOG_PARTITIONS`: more than flumen gets through in the measured
/// windows, and under the mock cluster's retention of 100,000 messages a
/// partition.
const BACKLOG: usize = 1_500_000;
const BACKLOG_PARTITIONS: i32 = 16;

/// How a replacement is triggered.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Watch,
    Sighup,
    Post,
}

/// What a replacement puts in place.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    Good,
    NotAComponent,
    WrongWorld,
    InitRefuses,
}

/// `bytes` with a custom section appended: a distinct file that is the
/// same component, as a rebuilt sink would be.
fn with_custom_section(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let name = b"flumen-test-version";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Replaces `path` atomically (write, then rename), as a deployment should.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_text(
    bootstrap: &str,
    topic: &str,
    out: &Path,
    admin: u16,
    label: &str,
    sync: &str,
) -> String {
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500, "max.poll.interval.ms" = 10000, "fetch.wait.max.ms" = 10 }}

[admin]
listen = "127.0.0.1:{admin}"

[reload]
debounce_ms = 200

[[pipeline]]
name = "reload"
topics = ["{topic}"]
group_id = "{GROUP}"
batch = {{ max_events = 200, max_wait_ms = 20 }}
commit = {{ interval_ms = 200 }}

[[pipeline.sink]]
name = "out"
component = "sink.wasm"
config = {{ path = "/out/out-%{{partition}}.jsonl", label = "{label}", sync = "{sync}" }}
dirs = [{{ host = "{out}", guest = "/out" }}]
"#,
        out = out.display()
    )
}

/// `POST /reload` on the admin endpoint; returns (status, body).
fn post_reload(port: u16) -> (u16, String) {
    http(port, "POST", "/reload")
}

fn field(line: &str, name: &str) -> Option<i64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[at..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The partition of a log line, from its `partition{…partition=N}` span.
fn span_partition(line: &str) -> Option<i32> {
    let at = line.find("partition{")?;
    let span = &line[at..line[at..].find('}')? + at];
    field(span, "partition").map(|p| p as i32)
}

/// Produces 20 events every 5 ms, round-robin over the partitions, until
/// `producing` is cleared; returns how many each partition got (all
/// acknowledged).
fn steady_load(bootstrap: &str, topic: &str, producing: &AtomicBool) -> BTreeMap<i32, i64> {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let mut counts: BTreeMap<i32, i64> = BTreeMap::new();
    let mut i = 0i64;
    while producing.load(Ordering::Acquire) {
        for _ in 0..20 {
            let p = (i % PARTITIONS as i64) as i32;
            let value = format!("event {i}");
            let record = BaseRecord::<(), _>::to(topic).partition(p).payload(&value);
            producer.send(record).map_err(|(e, _)| e).expect("produce");
            *counts.entry(p).or_default() += 1;
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    counts
}

fn output_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let broker = Broker::mock();
    broker.create_topic(TOPIC, PARTITIONS);
    broker.create_topic("e2e-reload-other", 1);
    let bootstrap = broker.bootstrap();
    let work = Workdir::new();
    let sink_path = work.path("sink.wasm");
    let good = std::fs::read(guest("file_sink")).unwrap();
    std::fs::write(&sink_path, with_custom_section(&good, "v1")).unwrap();
    let admin = free_port();
    let config = work.path("flumen.toml");
    let write_config = |label: &str, sync: &str, topic: &str| {
        let text = config_text(&bootstrap, topic, &work.out, admin, label, sync);
        replace(&config, text.as_bytes());
    };
    write_config("v1", "true", TOPIC);

    // Continuous load: a steady stream (about 4,000 events/s) for as long
    // as the swaps go on. The topic is new, so partition p holds offsets
    // 0..count[p] at the end.
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (producing, bootstrap) = (producing.clone(), bootstrap.clone());
        std::thread::spawn(move || steady_load(&bootstrap, TOPIC, &producing))
    };

    let log = work.path("flumen.log");
    let mut flumen = Flumen::run(&config, &log);
    // Delivery progress, sampled: the output's size over time.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = sample_output(work.out.clone(), sampling.clone());
    wait_committed(
        &mut flumen,
        &bootstrap,
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c.len() == PARTITIONS as usize && c.values().all(|&o| o > 0),
    );

    use Trigger::*;
    use Version::*;
    let plan = [
        (Watch, Good),
        (Sighup, Good),
        (Post, NotAComponent),
        (Post, Good),
        (Watch, WrongWorld),
        (Watch, Good),
        (Sighup, InitRefuses),
        (Sighup, Good),
        (Post, Good),
        (Watch, Good),
    ];
    let mut version = 1u64;
    let mut swaps_at = Vec::new();
    let mut results = Vec::new();
    for (n, (trigger, what)) in plan.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(1500));
        let rejections_before = flumen.log_text().matches("reload REJECTED").count();
        let next = version + 1;
        let label = format!("v{next}");
        match what {
            Good => {
                replace(&sink_path, &with_custom_section(&good, &format!("v{next}")));
                write_config(&label, "true", TOPIC);
            }
            NotAComponent => replace(&sink_path, b"this is not a wasm component"),
            WrongWorld => replace(&sink_path, &std::fs::read(guest("filter")).unwrap()),
            InitRefuses => {
                replace(&sink_path, &with_custom_section(&good, &format!("v{next}")));
                write_config(&label, "maybe", TOPIC);
            }
        }
        let t0 = Instant::now();
        let post = match trigger {
            Watch => None,
            Sighup => {
                let status = std::process::Command::new("kill")
                    .args(["-HUP", &flumen.pid().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                None
            }
            Post => Some(post_reload(admin)),
        };
        // Wait for the outcome in the log.
        let deadline = Instant::now() + Duration::from_secs(30);
        let accepted = loop {
            let text = flumen.log_text();
            let published = text.lines().any(|l| {
                l.contains("new version published") && field(l, "version") == Some(next as i64)
            });
            if published {
                break true;
            }
            if text.matches("reload REJECTED").count() > rejections_before {
                break false;
            }
            assert!(
                Instant::now() < deadline,
                "replacement {n} ({trigger:?}, {what:?}): no outcome; log tail:\n{}",
                text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
            assert!(flumen.alive(), "flumen exited:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let expected = *what == Good;
        assert_eq!(
            accepted,
            expected,
            "replacement {n} ({trigger:?}, {what:?}) accepted={accepted}; log tail:\n{}",
            flumen
                .log_text()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        if let Some((status, body)) = &post {
            let want = if expected { 200 } else { 422 };
            assert_eq!(*status, want, "POST /reload answered {status}: {body}");
        }
        if accepted {
            version = next;
            swaps_at.push(t0);
        }
        results.push((n + 1, *trigger, *what, accepted, post));
    }

    // A change that needs a new consumer is refused, saying so.
    write_config(&format!("v{version}"), "true", "e2e-reload-other");
    let (status, body) = post_reload(admin);
    assert_eq!(status, 409, "topic change: {body}");
    assert!(body.contains("restart"), "{body}");
    write_config(&format!("v{version}"), "true", TOPIC);
    std::thread::sleep(Duration::from_millis(1000));

    producing.store(false, Ordering::Release);
    let counts = producer.join().unwrap();
    let end: BTreeMap<i32, i64> = counts.iter().map(|(&p, &n)| (p, n)).collect();
    wait_committed(
        &mut flumen,
        &bootstrap,
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &end,
    );
    sampling.store(false, Ordering::Release);
    let samples = sampler.join().unwrap();
    let text = flumen.log_text();
    let status = flumen.terminate();
    // The text before the shutdown, for the rebalance count; the whole
    // log for the rest.
    assert!(status.success(), "exit status {status}");
    let text_all = std::fs::read_to_string(&log).unwrap_or_else(|_| text.clone());

    // Nothing lost, nothing twice.
    let lines = read_sink_json(&work.out, "out");
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut duplicates = 0;
    for l in &lines {
        let key = (
            l["partition"].as_i64().unwrap() as i32,
            l["offset"].as_i64().unwrap(),
        );
        if seen
            .insert(key, l["label"].as_str().unwrap_or("").to_owned())
            .is_some()
        {
            duplicates += 1;
        }
    }
    let want: BTreeSet<(i32, i64)> = end
        .iter()
        .flat_map(|(&p, &n)| (0..n).map(move |o| (p, o)))
        .collect();
    let lost = want.iter().filter(|k| !seen.contains_key(k)).count();

    // Each partition switched labels exactly where flumen logged a switch at
    // a batch boundary, and only to newer versions.
    let mut logged: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for l in text_all
        .lines()
        .filter(|l| l.contains("component switched to a new version"))
    {
        let (Some(p), Some(v), Some(o)) = (
            span_partition(l),
            field(l, "version"),
            field(l, "next_offset"),
        ) else {
            panic!("unparsable switch line: {l}");
        };
        logged.entry(p).or_default().push((o, v));
    }
    let mut observed: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    let mut last: BTreeMap<i32, String> = BTreeMap::new();
    for (&(p, o), label) in &seen {
        if last.get(&p).is_some_and(|l| l != label) {
            let v: i64 = label.trim_start_matches('v').parse().unwrap();
            observed.entry(p).or_default().push((o, v));
        }
        last.insert(p, label.clone());
    }
    let mut boundary_ok = true;
    for p in 0..PARTITIONS {
        // A partition idle across two publications switches once, straight
        // to the newest; every switch seen in the output must be logged.
        let o = observed.get(&p).cloned().unwrap_or_default();
        let l = logged.get(&p).cloned().unwrap_or_default();
        if o != l {
            boundary_ok = false;
            eprintln!("partition {p}: output switches {o:?}, logged switches {l:?}");
        }
        if o.windows(2).any(|w| w[1].1 <= w[0].1) {
            boundary_ok = false;
            eprintln!("partition {p}: versions not increasing: {o:?}");
        }
    }

    // No rebalance: one assignment and no revocation while it ran (the
    // shutdown itself revokes).
    let assigned = text.matches("partitions assigned").count();
    let revoked = text.matches("partitions revoked").count();
    // A broken file stays broken until replaced, so a later trigger (the
    // watcher after a SIGHUP) may reject it again: at least 4.
    let rejected = text.matches("reload REJECTED").count();

    // Delivery pauses: gaps between growths of the output.
    let mut growth = Vec::new();
    let mut prev = 0;
    for &(t, bytes) in samples.iter() {
        if bytes > prev {
            growth.push(t);
            prev = bytes;
        }
    }
    let window = Duration::from_millis(1000);
    let near_swap = |t: Instant| swaps_at.iter().any(|&s| t + window >= s && t <= s + window);
    let (mut pause_swap, mut pause_else) = (Duration::ZERO, Duration::ZERO);
    let steady = growth.first().copied();
    let end_of_load = swaps_at.last().map(|&s| s + Duration::from_secs(2));
    for w in growth.windows(2) {
        let gap = w[1] - w[0];
        // Only while load was steady (after the first output, before the
        // producer stopped).
        if steady.is_some_and(|s| w[0] < s + Duration::from_secs(2))
            || end_of_load.is_some_and(|e| w[0] > e)
        {
            continue;
        }
        if near_swap(w[0]) || near_swap(w[1]) {
            pause_swap = pause_swap.max(gap);
        } else {
            pause_else = pause_else.max(gap);
        }
    }

    println!();
    println!("| # | trigger | new version | outcome |");
    println!("|---:|---|---|---|");
    for (n, trigger, what, accepted, post) in &results {
        let what = match what {
            Good => "good (rebuilt file sink, new label)",
            NotAComponent => "broken: not a component",
            WrongWorld => "broken: wrong world (an interceptor)",
            InitRefuses => "broken: init refuses its config",
        };
        let outcome = if *accepted {
            "swapped"
        } else {
            "rejected, old version kept running"
        };
        let post = post
            .as_ref()
            .map(|(s, _)| format!(" (HTTP {s})"))
            .unwrap_or_default();
        println!("| {n} | {trigger:?} | {what} | {outcome}{post} |");
    }
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| events produced under load | {} |", want.len());
    println!("| lost | {lost} |");
    println!("| duplicates | {duplicates} |");
    println!(
        "| swaps / rejections (incl. the topic change) | {} / {rejected} |",
        swaps_at.len()
    );
    println!(
        "| switches at a logged batch boundary | {} |",
        if boundary_ok { "all" } else { "NOT ALL" }
    );
    println!("| partition assignments / revocations (group generation) | {assigned} / {revoked} |");
    println!(
        "| longest delivery pause within 1 s of a swap | {} ms |",
        pause_swap.as_millis()
    );
    println!(
        "| longest delivery pause elsewhere under load | {} ms |",
        pause_else.as_millis()
    );
    println!();

    let mut failed = Vec::new();
    if lost != 0 {
        failed.push(format!("{lost} events lost"));
    }
    if duplicates != 0 {
        failed.push(format!("{duplicates} duplicates"));
    }
    if !boundary_ok {
        failed.push("a switch not at a logged batch boundary".into());
    }
    if assigned != 1 || revoked != 0 {
        failed.push(format!(
            "rebalanced: {assigned} assignments, {revoked} revocations"
        ));
    }
    if swaps_at.len() != 7 || rejected < 4 {
        failed.push(format!(
            "{} swaps and {rejected} rejections, expected 7 and at least 4",
            swaps_at.len()
        ));
    }
    if observed.values().map(Vec::len).sum::<usize>() == 0 {
        failed.push("no partition ever switched".into());
    }
    if !failed.is_empty() {
        eprintln!("reload test FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    eprintln!("reload test: ok");
    blocked_partition_takes_the_fix();
    compiling_does_not_starve_delivery();
}

/// Samples a directory's total size every 5 ms until `sampling` is cleared.
fn sample_output(
    out: std::path::PathBuf,
    sampling: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, u64)>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while sampling.load(Ordering::Acquire) {
            samples.push((Instant::now(), output_bytes(&out)));
            std::thread::sleep(Duration::from_millis(5));
        }
        samples
    })
}

/// Delivery within `[from, to)`: the longest time the output did not grow
/// and the bytes written a second.
fn delivery(samples: &[(Instant, u64)], from: Instant, to: Instant) -> (Duration, f64) {
    let inside: Vec<_> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .collect();
    let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
        return (to - from, 0.0);
    };
    let mut longest = Duration::ZERO;
    let mut grew_at = first.0;
    for w in inside.windows(2) {
        if w[1].1 > w[0].1 {
            longest = longest.max(w[1].0 - grew_at);
            grew_at = w[1].0;
        }
    }
    longest = longest.max(last.0 - grew_at);
    let rate = (last.1 - first.1) as f64 / (last.0 - first.0).as_secs_f64().max(1e-3);
    (longest, rate)
}

/// A new version of an 18 MB Python interceptor compiles while flumen works
/// through a backlog as fast as it can: the partition workers must keep
/// their pace during the compile (tens of seconds of Cranelift work for
/// every core) and around the swap that follows. Prints the longest
/// delivery pause and the delivery rate before, during the compile and just
/// after the swap.
fn compiling_does_not_starve_delivery() {
    let python = repo().join("guests/target/python/drop_header.wasm");
    assert!(
        python.exists(),
        "{} is missing: run guests/build.sh first",
        python.display()
    );
    let broker = Broker::mock();
    let topic = "e2e-reload-compile";
    broker.create_topic(topic, BACKLOG_PARTITIONS);
    let bootstrap = broker.bootstrap();
    // More than flumen gets through in the measured windows, so that it
    // runs at capacity throughout them.
    let produced = produce(&bootstrap, topic, BACKLOG_PARTITIONS, BACKLOG, |_| false);
    let work = Workdir::new();
    let admin = free_port();
    let filter = work.path("filter.wasm");
    let original = std::fs::read(&python).unwrap();
    std::fs::write(&filter, &original).unwrap();
    let config = work.path("flumen.toml");
    let text = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500, "fetch.wait.max.ms" = 10 }}
[admin]
listen = "127.0.0.1:{admin}"
[reload]
watch = false
[cache]
dir = "{cache}"
[[pipeline]]
name = "compile"
topics = ["{topic}"]
group_id = "compile-group"
# Small batches: many guest calls per event, so that the backlog lasts.
batch = {{ max_events = 20 }}
commit = {{ interval_ms = 200 }}
[[pipeline.interceptor]]
name = "python-filter"
component = "filter.wasm"
config = {{ header = "level", value = "debug" }}
limits = {{ memory_mb = 256, call_timeout_ms = 30000 }}
[[pipeline.sink]]
name = "out"
component = "{sink}"
config = {{ path = "/out/out-%{{partition}}.jsonl", sync = false }}
dirs = [{{ host = "{out}", guest = "/out" }}]
"#,
        cache = work.path("cache").display(),
        sink = guest("file_sink").display(),
        out = work.out.display(),
    );
    std::fs::write(&config, text).unwrap();

    // And a steady trickle on top (partitions 0–3), so that delivery after
    // the backlog, around the swap, is measured too.
    let producing = Arc::new(AtomicBool::new(true));
    let trickle = {
        let (producing, bootstrap) = (producing.clone(), bootstrap.clone());
        std::thread::spawn(move || steady_load(&bootstrap, topic, &producing))
    };
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = sample_output(work.out.clone(), sampling.clone());
    wait_committed(
        &mut flumen,
        &bootstrap,
        "compile-group",
        topic,
        BACKLOG_PARTITIONS,
        Duration::from_secs(180),
        |c| c.len() == BACKLOG_PARTITIONS as usize && c.values().all(|&o| o > 0),
    );
    std::thread::sleep(Duration::from_secs(4));

    // A rebuilt filter: the same code, new bytes, so nothing is cached.
    replace(&filter, &with_custom_section(&original, "rebuilt"));
    let trigger = Instant::now();
    let (status, body) = post_reload(admin);
    let swapped = Instant::now();
    assert_eq!(status, 200, "POST /reload: {body}");
    std::thread::sleep(Duration::from_secs(3));
    producing.store(false, Ordering::Release);
    let trickled = trickle.join().unwrap();
    let mut end = produced.end.clone();
    for (p, n) in &trickled {
        *end.entry(*p).or_default() += n;
    }
    wait_committed(
        &mut flumen,
        &bootstrap,
        "compile-group",
        topic,
        BACKLOG_PARTITIONS,
        Duration::from_secs(300),
        |c| c == &end,
    );
    sampling.store(false, Ordering::Release);
    let samples = sampler.join().unwrap();
    let log = flumen.log_text();
    assert!(flumen.terminate().success(), "flumen exit");
    let compile_ms = log
        .lines()
        .rev()
        .filter(|l| l.contains("component loaded") && l.contains("python-filter"))
        .find_map(|l| field(l, "ms"))
        .unwrap_or(0);

    let seen: BTreeSet<(i32, i64)> = read_sink(&work.out, "out").into_iter().collect();
    let mut kept: BTreeSet<(i32, i64)> = produced.kept().into_iter().collect();
    for (p, n) in &trickled {
        let from = produced.end.get(p).copied().unwrap_or(0);
        kept.extend((from..from + n).map(|o| (*p, o)));
    }
    let lost = kept.difference(&seen).count();

    // The backlog may run out before the compile ends (the compile gives
    // way to the workers, so under load it takes longer): only the time
    // while there was work counts. It ran out where delivery fell to the
    // trickle's pace.
    let second = Duration::from_secs(1);
    let before = delivery(&samples, trigger - 3 * second, trigger);
    let half = Duration::from_millis(500);
    let drained = samples
        .iter()
        .map(|&(t, _)| t)
        .filter(|&t| t >= trigger)
        .find(|&t| delivery(&samples, t, t + half).1 < before.1 * 0.3)
        .unwrap_or(swapped);
    let busy_until = swapped.min(drained);
    let during = delivery(&samples, trigger, busy_until);
    // After the swap only the trickle may be left: its pauses count, its
    // rate is not comparable.
    let after = delivery(&samples, swapped, swapped + 2 * second);
    println!();
    println!(
        "| window (Python filter of {:.0} MB, compiled in {compile_ms} ms while a backlog of {BACKLOG} events lasted {:.1} s of it) | longest delivery pause | output KB/s | against before |",
        original.len() as f64 / 1e6,
        (busy_until - trigger).as_secs_f64()
    );
    println!("|---|---:|---:|---:|");
    let row = |name: &str, (pause, rate): (Duration, f64)| {
        println!(
            "| {name} | {} ms | {:.0} | {:.0} % |",
            pause.as_millis(),
            rate / 1e3,
            rate / before.1 * 100.0
        );
    };
    row("3 s before the reload", before);
    row("while the new version compiles", during);
    if swapped + 2 * second < drained {
        row("2 s after the swap", after);
    } else {
        println!(
            "| 2 s after the swap (the backlog done; a trickle of about 4,000 events/s) | {} ms | {:.0} | — |",
            after.0.as_millis(),
            after.1 / 1e3
        );
    }
    println!(
        "| events / kept by the filter / lost | {} / {} / {lost} |",
        BACKLOG as i64 + trickled.values().sum::<i64>(),
        kept.len()
    );
    println!();
    assert_eq!(lost, 0, "events lost across the compile and swap");
    assert!(
        busy_until - trigger > 3 * second,
        "the compile overlapped the backlog for only {:?}: make it larger",
        busy_until - trigger
    );
    let paused = after.0.max(during.0);
    assert!(
        paused < second,
        "delivery paused {paused:?} during the compile or after the swap"
    );
    assert!(
        during.1 > before.1 * 0.7,
        "delivery slowed from {:.0} to {:.0} bytes/s during the compile",
        before.1,
        during.1
    );
    eprintln!("compile under load: ok");
}

/// A sink blocked on an event it rejects (`on_failure = "block"`) is fixed
/// by a reload: the retrying batch picks up the new version, the partition
/// unblocks and everything is committed, without a restart.
fn blocked_partition_takes_the_fix() {
    let broker = Broker::mock();
    let topic = "e2e-reload-fix";
    broker.create_topic(topic, 2);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, topic, 2, 400, |i| i == 150);
    let work = Workdir::new();
    let admin = free_port();
    let config = work.path("flumen.toml");
    let write = |reject: &str| {
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500 }}
[admin]
listen = "127.0.0.1:{admin}"
[reload]
watch = false
[[pipeline]]
name = "fix"
topics = ["{topic}"]
group_id = "fix-group"
batch = {{ max_events = 100, max_wait_ms = 20 }}
commit = {{ interval_ms = 200 }}
[[pipeline.sink]]
name = "out"
component = "{wasm}"
config = {{ path = "/out/out-%{{partition}}.jsonl"{reject} }}
dirs = [{{ host = "{out}", guest = "/out" }}]
retry = {{ attempts = 2, initial_backoff_ms = 20, max_backoff_ms = 200 }}
"#,
            wasm = guest("reject_sink").display(),
            out = work.out.display(),
        );
        replace(&config, text.as_bytes());
    };
    write(r#", reject = "POISON""#);
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !flumen.log_text().contains("partition BLOCKED") {
        assert!(
            Instant::now() < deadline,
            "never blocked:\n{}",
            flumen.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    write("");
    let (status, body) = post_reload(admin);
    assert_eq!(status, 200, "{body}");
    wait_committed(
        &mut flumen,
        &bootstrap,
        "fix-group",
        topic,
        2,
        Duration::from_secs(60),
        |c| c == &produced.end,
    );
    let text = flumen.log_text();
    assert!(flumen.terminate().success());
    assert!(
        text.contains("component switched to a new version while retrying a failed batch"),
        "{text}"
    );
    let got: BTreeSet<(i32, i64)> = read_sink(&work.out, "out").into_iter().collect();
    let want: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(got, want, "every event delivered once the fix was loaded");
    println!("| a partition blocked by a rejecting sink, fixed by a reload | unblocked and committed to the end, no restart |");
    eprintln!("reload test: blocked partition took the fix");
}

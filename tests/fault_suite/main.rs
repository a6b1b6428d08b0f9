//! The fault suite: each scenario runs the real `flumen` binary against a
//! real broker, injects one kind of fault, and counts events. It prints one
//! table: scenario, events produced, events delivered (distinct, counting
//! the dead-letter topic), lost, duplicates, and whether the committed
//! offsets reached the end offsets.
//!
//! Run it with `cargo test --test fault_suite` (all scenarios) or
//! `cargo test --test fault_suite -- sigkill churn` (scenarios whose name
//! contains one of the words). `FLUMEN_FAULT_EVENTS` sets the event count of
//! the SIGKILL scenario (default 200,000), and `FLUMEN_FAULT_KILLS` its
//! kills (default 20). It fails if any scenario lost an event or failed its
//! own checks.
//!
//! `FLUMEN_FAULT_ORDERING=key` or `=unordered` runs every sink with
//! `max_in_flight = 8` (or `FLUMEN_FAULT_MAX_IN_FLIGHT`) and that ordering
//! (issue 20's modes); unset, sinks
//! take one call at a time in partition order. Where a scenario's sink
//! never retries single events within a call, the suite also checks order
//! in the sink's files: per partition, or per key in `key` mode, no event is
//! written for the first time after a later one (redeliveries after a
//! crash repeat events already written, and do not count).

#[path = "../support/mod.rs"]
mod support;

mod exactly_once;
mod network;

use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::*;

const PARTITIONS: i32 = 4;
const TOPIC: &str = "faults";
const DLQ: &str = "faults-dlq";
const GROUP: &str = "faults-group";

/// `(partition, offset)` of an event.
type Pos = (i32, i64);

/// A scenario: its name (what the command line's words match) and how to
/// run it.
type Scenario = (&'static str, fn() -> Row);

/// One line of the table.
struct Row {
    scenario: String,
    broker: &'static str,
    produced: usize,
    delivered: usize,
    lost: usize,
    duplicates: usize,
    committed_end: bool,
    note: String,
}

/// The ordering the suite runs its sinks with, from
/// `FLUMEN_FAULT_ORDERING`: `None` for one call at a time in partition order.
fn ordering() -> Option<String> {
    std::env::var("FLUMEN_FAULT_ORDERING")
        .ok()
        .filter(|o| o != "partition" && !o.is_empty())
}

/// Calls in flight per partition under [`ordering`]:
/// `FLUMEN_FAULT_MAX_IN_FLIGHT`, 8 unless set.
fn max_in_flight() -> usize {
    std::env::var("FLUMEN_FAULT_MAX_IN_FLIGHT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8)
}

/// Adds the delivery settings of [`ordering`] to every sink table.
fn with_ordering(components: String) -> String {
    let window = max_in_flight();
    match ordering() {
        None => components,
        // Each instance writes a file of its own (instances appending to
        // one file would tear each other's lines).
        Some(o) => components
            .replace(
                "[[pipeline.sink]]\n",
                &format!("[[pipeline.sink]]\nmax_in_flight = {window}\nordering = \"{o}\"\n"),
            )
            .replace("-%{partition}.jsonl", "-%{partition}-%{instance}.jsonl"),
    }
}

/// Checks order in sink `s`'s files under the suite's ordering: the number
/// of events first written after a later event they must not be overtaken
/// by (same partition, and in key mode same key), or `None` under
/// `unordered`, which promises no order.
fn overtaken(dir: &Path) -> Option<usize> {
    let by_key = match ordering().as_deref() {
        None => false,
        Some("key") => true,
        Some(_) => return None,
    };
    // Each instance writes its own file, in order; across files, the
    // chaos sink's `"at"` (when its call began) orders the lines.
    let mut lines: Vec<(u128, usize, usize, Pos, Option<String>)> = Vec::new();
    let files = flumen::cli::demo::output_files(dir, "s").expect("output dir");
    for (f, path) in files.iter().enumerate() {
        let text = std::fs::read(path).expect("read output");
        for (n, l) in text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) else {
                continue; // torn by a kill: redelivered whole later
            };
            let pos = (
                v["partition"].as_i64().expect("partition") as i32,
                v["offset"].as_i64().expect("offset"),
            );
            let key = match (by_key, v.get("key")) {
                (false, _) => None,
                (true, Some(k)) if !k.is_null() => Some(k.to_string()),
                // No key: no order to keep.
                (true, _) => continue,
            };
            let Some(at) = v["at"].as_u64() else {
                // Lines without the time of their call cannot be ordered
                // across instances' files: only one file can be checked.
                assert!(
                    files.len() <= PARTITIONS as usize,
                    "several files per partition without `at`: the order cannot be checked"
                );
                lines.push((0, f, n, pos, key));
                continue;
            };
            lines.push((u128::from(at), f, n, pos, key));
        }
    }
    lines.sort_by_key(|l| (l.0, l.1, l.2));
    let mut seen: BTreeSet<Pos> = BTreeSet::new();
    let mut furthest: BTreeMap<(i32, Option<String>), i64> = BTreeMap::new();
    let mut overtaken = 0;
    for (_, _, _, pos, key) in lines {
        if !seen.insert(pos) {
            continue;
        }
        let f = furthest.entry((pos.0, key)).or_insert(pos.1);
        if pos.1 < *f {
            overtaken += 1;
        }
        *f = (*f).max(pos.1);
    }
    Some(overtaken)
}

/// Adds the order check's outcome to `row`; an overtaken event fails it.
fn check_order(mut row: Row, dir: &Path) -> Row {
    match overtaken(dir) {
        Some(0) => row.note.push_str("; order kept"),
        Some(n) => {
            row.note
                .push_str(&format!("; ORDER BROKEN: {n} events overtaken"));
            row.lost += n; // counted as a failure of the scenario
        }
        None => {}
    }
    row
}

/// Counts a scenario's outcome: `lines` is what the sinks wrote, `dead` what
/// the dead-letter topic holds.
fn tally(
    scenario: &str,
    broker: &'static str,
    produced: &Produced,
    lines: &[Pos],
    dead: &[Pos],
    committed_end: bool,
    note: String,
) -> Row {
    let written: BTreeSet<Pos> = lines.iter().copied().collect();
    let dead_set: BTreeSet<Pos> = dead.iter().copied().collect();
    let delivered: BTreeSet<Pos> = written.union(&dead_set).copied().collect();
    let lost = produced
        .events
        .keys()
        .filter(|k| !delivered.contains(k))
        .count();
    Row {
        scenario: scenario.into(),
        broker,
        produced: produced.events.len(),
        delivered: delivered.len(),
        lost,
        duplicates: (lines.len() - written.len()) + (dead.len() - dead_set.len()),
        committed_end,
        note,
    }
}

/// A scenario's scratch space: broker, topic, output directory, configs.
struct Setup {
    broker: Broker,
    work: Workdir,
    produced: Produced,
}

impl Setup {
    fn new(broker: Broker, events: usize, mark: impl Fn(usize) -> Option<&'static str>) -> Self {
        broker.create_topic(TOPIC, PARTITIONS);
        broker.create_topic(DLQ, 2);
        let produced = produce_marked(&broker.bootstrap(), TOPIC, PARTITIONS, events, mark);
        Self {
            broker,
            work: Workdir::new(),
            produced,
        }
    }

    fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// Writes config `name` with the given component tables (and extra
    /// pipeline tables before them).
    fn config(&self, name: &str, components: String) -> PathBuf {
        let components = with_ordering(components);
        let path = self.work.path(&format!("{name}.toml"));
        PipelineToml {
            bootstrap: self.bootstrap(),
            topic: TOPIC.into(),
            group: GROUP.into(),
            out: self.work.out.clone(),
            components,
            commit_interval_ms: 200,
        }
        .write(&path);
        path
    }

    /// Like [`Setup::config`], with text replacements applied to the
    /// written file (smaller batches, other librdkafka options).
    fn config_edited(&self, name: &str, components: String, edits: &[(&str, &str)]) -> PathBuf {
        let path = self.config(name, components);
        let mut text = std::fs::read_to_string(&path).expect("config");
        for (from, to) in edits {
            assert!(text.contains(from), "config has no `{from}`");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).expect("config");
        path
    }

    /// Runs flumen until the end offsets are committed, stops it, and
    /// returns its log.
    fn run_to_end(&self, config: &Path, log: &str) -> String {
        run_until_committed(
            config,
            &self.work.path(log),
            &self.bootstrap(),
            GROUP,
            TOPIC,
            &self.produced.end,
            Duration::from_secs(180),
        )
    }

    fn start(&self, config: &Path, log: &str) -> Flumen {
        Flumen::run(config, &self.work.path(log))
    }

    fn committed(&self) -> BTreeMap<i32, i64> {
        committed(&self.bootstrap(), GROUP, TOPIC, PARTITIONS)
    }

    /// Waits until the group's commits reach the end offsets.
    fn wait_end(&self, flumen: &mut Flumen, timeout: Duration) {
        let end = self.produced.end.clone();
        wait_committed(
            flumen,
            &self.bootstrap(),
            GROUP,
            TOPIC,
            PARTITIONS,
            timeout,
            |c| c == &end,
        );
    }

    /// The table row of a mock-cluster scenario whose sink `s` holds
    /// everything (no dead letters).
    fn row(&self, scenario: &str, note: String) -> Row {
        let row = tally(
            scenario,
            "mock",
            &self.produced,
            &read_sink(&self.work.out, "s"),
            &[],
            self.committed_end(),
            note,
        );
        check_order(row, &self.work.out)
    }

    fn committed_end(&self) -> bool {
        self.committed() == self.produced.end
    }

    /// `(partition, offset)` of every dead letter, from its headers, and the
    /// records themselves.
    fn dead_letters(&self, expected: usize) -> (Vec<Pos>, Vec<OwnedMessage>) {
        let msgs = read_topic(&self.bootstrap(), DLQ, 2, expected, Duration::from_secs(20));
        let pos = msgs
            .iter()
            .map(|m| {
                let p = header(m, "flumen.original.partition")
                    .parse()
                    .expect("partition");
                let o = header(m, "flumen.original.offset").parse().expect("offset");
                (p, o)
            })
            .collect();
        (pos, msgs)
    }

    fn positions_marked(&self, events: usize, mark: impl Fn(usize) -> bool) -> BTreeSet<Pos> {
        (0..events)
            .filter(|&i| mark(i))
            .map(|i| self.produced.index[&i])
            .collect()
    }
}

/// A `reject_sink` table named `s`, with guest config `guest_cfg` (starting
/// with a comma) and component settings `settings`.
fn chaos_sink(guest_cfg: &str, settings: &str) -> String {
    format!("{}{settings}\n", file_sink("s", "reject_sink", guest_cfg))
}

/// Config edit: batches of 50 instead of 500.
const SMALL_BATCHES: (&str, &str) = ("max_events = 500", "max_events = 50");

const DEAD_LETTER: &str = "[pipeline.dead_letter]\ntopic = \"faults-dlq\"\n";

/// Sink output that a SIGKILL may have cut mid-line: a line that does not
/// parse is counted as torn and skipped. Its event was not acknowledged, so
/// it must show up again complete — or it counts as lost.
fn read_lenient(dir: &Path) -> (Vec<Pos>, usize) {
    let mut lines = Vec::new();
    let mut torn = 0;
    for path in flumen::cli::demo::output_files(dir, "s").expect("output dir") {
        let text = std::fs::read(&path).expect("read output");
        for l in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<serde_json::Value>(l) {
                Ok(v) => lines.push((
                    v["partition"].as_i64().expect("partition") as i32,
                    v["offset"].as_i64().expect("offset"),
                )),
                Err(_) => torn += 1,
            }
        }
    }
    (lines, torn)
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

// ---------------------------------------------------------------- scenarios

/// SIGKILL at random moments while events flow, restart each time. The
/// events arrive in 20 waves, one per run: half of a wave waits as a
/// backlog when flumen starts, and the other half arrives while it runs, in
/// slices over about a second, so that every kill lands in a live stream
/// rather than after the backlog is done (a backlog alone is delivered and
/// committed in a few hundred milliseconds).
fn sigkill() -> Row {
    let events: usize = std::env::var("FLUMEN_FAULT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    // Each kill costs a restart and a group join, a few seconds whatever
    // the events: the repeated modes in scripts/test.sh run fewer.
    let kills: usize = std::env::var("FLUMEN_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    const SLICES: usize = 10;
    let mut s = Setup::new(Broker::mock(), 0, |_| None);
    // With several instances per partition, the chaos sink (without chaos):
    // its lines carry the time of their call, which orders the instances'
    // files for the order check.
    let sink = match ordering() {
        None => file_sink("s", "file_sink", ", sync = false"),
        Some(_) => chaos_sink("", ""),
    };
    let config = s.config("sigkill", sink);
    let wave = events / kills;
    let slice = (wave - wave / 2) / SLICES;
    let mut during = 0;
    let mut written_uncommitted = 0;
    let mut window = 0;
    // One producer for the whole scenario: the stream after each start
    // should last a little longer than the second within which the kill
    // comes, not several seconds of connecting.
    let mut producer = TestProducer::connect(&s.bootstrap());
    for k in 0..kills {
        let backlog = producer.produce(TOPIC, PARTITIONS, wave / 2, |_| false);
        s.produced.merge(backlog);
        let before = out_bytes(&s.work.out);
        let mut f = s.start(&config, &format!("sigkill-{k}.log"));
        // Kill only once this run has delivered something, at a random
        // moment while the rest of the wave streams in.
        let deadline = Instant::now() + Duration::from_secs(60);
        while out_bytes(&s.work.out) <= before && Instant::now() < deadline {
            assert!(f.alive(), "flumen exited: {}", f.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        let streamed = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..SLICES {
                    let p = producer.produce(TOPIC, PARTITIONS, slice, |_| false);
                    streamed.lock().expect("streamed").push(p);
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            std::thread::sleep(Duration::from_millis(fastrand::u64(0..1000)));
            f.kill();
            // The end offsets of what was produced before the kill.
            let mut end = s.produced.end.clone();
            for p in streamed.lock().expect("streamed").iter() {
                for (&partition, &e) in &p.end {
                    let at = end.entry(partition).or_insert(0);
                    *at = (*at).max(e);
                }
            }
            let committed = s.committed();
            if end
                .iter()
                .any(|(p, &e)| committed.get(p).copied().unwrap_or(0) < e)
            {
                during += 1;
            }
            // What this kill can cost in duplicates: everything written past
            // the committed offsets, which the next run delivers again.
            let mut written: BTreeMap<i32, i64> = BTreeMap::new();
            for (p, o) in read_lenient(&s.work.out).0 {
                let w = written.entry(p).or_insert(-1);
                *w = (*w).max(o);
            }
            let past = written
                .iter()
                .map(|(p, &w)| (w + 1 - committed.get(p).copied().unwrap_or(0)).max(0) as usize)
                .sum::<usize>();
            if past > 0 {
                written_uncommitted += 1;
            }
            window += past;
        });
        for p in streamed.into_inner().expect("streamed") {
            s.produced.merge(p);
        }
    }
    s.run_to_end(&config, "sigkill-final.log");
    let (lines, torn) = read_lenient(&s.work.out);
    let mut row = tally(
        &format!("SIGKILL ×{kills} at random moments, restart each time"),
        "mock",
        &s.produced,
        &lines,
        &[],
        s.committed_end(),
        format!(
            "{during} of {kills} kills with events in flight (produced, not yet committed), \
             {written_uncommitted} with events written but not yet committed; \
             {torn} lines torn by a kill and redelivered whole; duplicates ≤ the in-flight \
             window at the kills ({window} events written past the committed offsets)"
        ),
    );
    if row.duplicates > window || during < kills / 2 {
        row.note.push_str(" — CHECK FAILED");
        row.lost = row.lost.max(1);
    }
    check_order(row, &s.work.out)
}

/// Bytes the sinks have written so far: a cheap progress signal.
fn out_bytes(dir: &Path) -> u64 {
    flumen::cli::demo::output_files(dir, "s")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// A sink whose calls trap 10 % of the time.
fn trap_ten_percent() -> Row {
    let s = Setup::new(Broker::mock(), 20_000, |_| None);
    // Small batches: many calls, so 10 % of them is many traps.
    let config = s.config_edited(
        "trap",
        chaos_sink(", trap_percent = 10", ""),
        &[SMALL_BATCHES],
    );
    let log = s.run_to_end(&config, "trap.log");
    // The panic message goes to the guest's stderr, which is not forwarded
    // yet; the host logs every trap itself.
    let traps = count(&log, "component `s` trapped");
    assert!(traps > 0, "no trap happened");
    s.row(
        "sink traps on 10 % of calls (block)",
        format!("{traps} traps, each retried on a fresh instance"),
    )
}

/// A sink that fails whole calls and asks for retries of single events.
fn transient() -> Row {
    let s = Setup::new(Broker::mock(), 20_000, |_| None);
    let config = s.config_edited(
        "transient",
        chaos_sink(", fail_percent = 10, retry_percent = 5", ""),
        &[SMALL_BATCHES],
    );
    let log = s.run_to_end(&config, "transient.log");
    let lines = read_sink(&s.work.out, "s");
    tally(
        "sink: 10 % of calls fail, 5 % of events `retry` (block)",
        "mock",
        &s.produced,
        &lines,
        &[],
        s.committed_end(),
        format!(
            "{} calls failed whole, {} calls answered `retry` for some events; only the \
             failed events were sent again",
            count(&log, "random failure"),
            count(&log, "random retry")
        ),
    )
}

fn poisoned(i: usize) -> bool {
    i % 97 == 5
}

/// A sink rejecting ~1 % of events permanently, under `dead-letter`.
fn reject_dead_letter() -> Row {
    const EVENTS: usize = 20_000;
    let s = Setup::new(Broker::mock(), EVENTS, |i| poisoned(i).then_some("POISON"));
    let config = s.config(
        "dlq",
        format!(
            "{DEAD_LETTER}{}",
            chaos_sink(", reject = \"POISON\"", "on_failure = \"dead-letter\"")
        ),
    );
    s.run_to_end(&config, "dlq.log");
    let poison = s.positions_marked(EVENTS, poisoned);
    let (dead, msgs) = s.dead_letters(poison.len());
    let dead_set: BTreeSet<Pos> = dead.iter().copied().collect();
    assert_eq!(
        dead_set, poison,
        "the dead-letter topic must hold exactly the rejected events"
    );
    for m in &msgs {
        assert_eq!(header(m, "flumen.component"), "s");
        assert_eq!(header(m, "flumen.pipeline"), "e2e");
        assert_eq!(header(m, "flumen.original.topic"), TOPIC);
        assert_eq!(header(m, "flumen.attempts"), "1", "a rejection is final");
        assert!(header(m, "flumen.error").contains("matches `reject`"));
        let ts: i64 = header(m, "flumen.original.timestamp")
            .parse()
            .expect("timestamp");
        assert_eq!(m.timestamp().to_millis(), Some(ts), "timestamp kept");
        let value = String::from_utf8_lossy(m.payload().expect("value"));
        assert!(value.ends_with(" POISON"), "value kept: {value}");
        assert!(
            ["info", "debug"].contains(&header(m, "level").as_str()),
            "original headers kept"
        );
    }
    let lines = read_sink(&s.work.out, "s");
    assert!(
        lines.iter().all(|p| !poison.contains(p)),
        "a rejected event was written"
    );
    tally(
        "sink rejects 1 % permanently (dead-letter)",
        "mock",
        &s.produced,
        &lines,
        &dead,
        s.committed_end(),
        format!(
            "dead-letter topic holds exactly the {} rejected events, headers checked",
            poison.len()
        ),
    )
}

/// The same rejections under `block`: each partition stops at its first
/// rejected event; a restart with a fixed sink delivers the rest.
fn reject_block() -> Row {
    const EVENTS: usize = 20_000;
    let s = Setup::new(Broker::mock(), EVENTS, |i| poisoned(i).then_some("POISON"));
    let blocking = s.config(
        "block",
        chaos_sink(
            ", reject = \"POISON\"",
            "retry = { attempts = 3, initial_backoff_ms = 20, max_backoff_ms = 200 }",
        ),
    );
    let poison = s.positions_marked(EVENTS, poisoned);
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in &poison {
        first.entry(p).or_insert(o);
    }
    let mut f = s.start(&blocking, "block-1.log");
    let expect = first.clone();
    wait_committed(
        &mut f,
        &s.bootstrap(),
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &expect,
    );
    // Blocked means it stays there.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.committed(), first, "a blocked partition moved on");
    let log = f.log_text();
    assert!(log.contains("partition BLOCKED"), "block not surfaced");
    assert!(f.terminate().success());
    let fixed = s.config("fixed", chaos_sink("", ""));
    let mut f = s.start(&fixed, "block-2.log");
    s.wait_end(&mut f, Duration::from_secs(120));
    assert!(f.terminate().success());
    // Not checked for order: the sink rejects single events of a call and
    // delivers the rest, which the contract lets overtake them.
    tally(
        "sink rejects 1 % permanently (block), then fixed",
        "mock",
        &s.produced,
        &read_sink(&s.work.out, "s"),
        &[],
        s.committed_end(),
        format!("run 1 committed exactly the first rejected offsets {first:?} and held them"),
    )
}

/// A guest that loops forever on some events: the call deadline interrupts
/// it, the other partitions keep flowing, and dead-letter takes the loopers.
fn spin() -> Row {
    guest_runaway(
        "SPIN",
        "spin",
        "limits = { call_timeout_ms = 300 }",
        "interrupt",
        "sink loops forever on 3 events (deadline 300 ms, dead-letter)",
    )
}

/// A guest that allocates without bound: the memory cap stops it.
fn grow() -> Row {
    guest_runaway(
        "GROW",
        "grow",
        "limits = { memory_mb = 32 }",
        "memory",
        "sink allocates without bound on 3 events (cap 32 MiB, dead-letter)",
    )
}

fn guest_runaway(marker: &'static str, key: &str, limits: &str, reason: &str, title: &str) -> Row {
    const EVENTS: usize = 20_000;
    // Three markers, all in partition 0 (event i goes to partition i % 4).
    let marked = |i: usize| matches!(i, 4_000 | 4_404 | 12_000);
    let s = Setup::new(Broker::mock(), EVENTS, |i| marked(i).then_some(marker));
    let config = s.config(
        key,
        format!(
            "{DEAD_LETTER}{}",
            chaos_sink(
                &format!(", {key} = \"{marker}\""),
                &format!(
                    "on_failure = \"dead-letter\"\n\
                     retry = {{ attempts = 2, initial_backoff_ms = 20, max_backoff_ms = 100 }}\n\
                     {limits}"
                ),
            )
        ),
    );
    let started = Instant::now();
    let mut f = s.start(&config, &format!("{key}.log"));
    // The other partitions finish without waiting for partition 0.
    let end = s.produced.end.clone();
    let others = wait_committed(
        &mut f,
        &s.bootstrap(),
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(120),
        |c| (1..PARTITIONS).all(|p| c.get(&p) == end.get(&p)),
    );
    let others_done = started.elapsed();
    s.wait_end(&mut f, Duration::from_secs(180));
    let all_done = started.elapsed();
    let log = f.log_text();
    assert!(f.terminate().success());
    let poison = s.positions_marked(EVENTS, marked);
    let (dead, msgs) = s.dead_letters(poison.len());
    let dead_set: BTreeSet<Pos> = dead.iter().copied().collect();
    assert_eq!(
        dead_set, poison,
        "dead letters must be exactly the runaway events"
    );
    for m in &msgs {
        let error = header(m, "flumen.error");
        assert!(error.contains(reason), "unexpected error: {error}");
    }
    tally(
        title,
        "mock",
        &s.produced,
        &read_sink(&s.work.out, "s"),
        &dead,
        s.committed_end(),
        format!(
            "partitions 1–3 done after {:.1} s (partition 0 then committed to {}), all after \
             {:.1} s; \
             {} traps naming `{reason}`",
            others_done.as_secs_f64(),
            others.get(&0).copied().unwrap_or(0),
            all_done.as_secs_f64(),
            count(&log, reason)
        ),
    )
}

/// An interceptor that fails some batches, under `fail-open`.
fn interceptor_fail_open() -> Row {
    const EVENTS: usize = 10_000;
    let marked = |i: usize| i % 211 == 17;
    let s = Setup::new(Broker::mock(), EVENTS, |i| marked(i).then_some("FAILME"));
    let config = s.config(
        "failopen",
        format!(
            r#"
[[pipeline.interceptor]]
name = "router"
component = "{}"
config = {{ fail = "FAILME" }}
on_failure = "fail-open"
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 50 }}
{}"#,
            guest("router").display(),
            file_sink("s", "file_sink", ", sync = false")
        ),
    );
    let log = s.run_to_end(&config, "failopen.log");
    let passed = count(&log, "passed on unchanged");
    let expected = (0..EVENTS).filter(|&i| marked(i)).count();
    assert_eq!(
        passed, expected,
        "exactly the failing events pass unchanged"
    );
    s.row(
        "interceptor fails on 0.5 % of events (fail-open)",
        format!("{passed} events passed on unchanged after the batch was narrowed down"),
    )
}

/// The broker goes down and comes back, three times, and commits fail.
fn broker_down_and_commit_errors() -> Row {
    const EVENTS: usize = 60_000;
    let s = Setup::new(Broker::mock(), EVENTS, |_| None);
    let config = s.config("brokerdown", chaos_sink(", delay_ms = 20", ""));
    let mut f = s.start(&config, "brokerdown.log");
    let mock = s.broker.mock_cluster();
    let mut outages = 0;
    for round in 0..3 {
        let before = out_bytes(&s.work.out);
        let deadline = Instant::now() + Duration::from_secs(60);
        while out_bytes(&s.work.out) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if round == 1 {
            // Commits fail for a while: the offsets are committed later.
            mock.request_errors(
                RDKafkaApiKey::OffsetCommit,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 8],
            );
        }
        mock.broker_down(1).expect("broker down");
        std::thread::sleep(Duration::from_secs(2));
        mock.broker_up(1).expect("broker up");
        outages += 1;
    }
    s.wait_end(&mut f, Duration::from_secs(180));
    let log = f.log_text();
    assert!(f.terminate().success());
    s.row(
        "broker down 2 s ×3, 8 commit errors (mock)",
        format!(
            "{outages} outages; {} failed commits logged and retried",
            count(&log, "offset commit failed")
        ),
    )
}

/// Three members of one group, joining and leaving while events flow; then
/// a second wave checks that the survivors still consume (no stall after
/// the rebalances).
fn group_churn(cooperative: bool) -> Row {
    const STEP_EVENTS: usize = 10_000;
    const WAVE: usize = 4_000;
    let mut s = Setup::new(Broker::mock(), STEP_EVENTS, |_| None);
    let edits: &[(&str, &str)] = if cooperative {
        &[(
            "\"max.poll.interval.ms\" = 10000",
            "\"max.poll.interval.ms\" = 10000, \"partition.assignment.strategy\" = \"cooperative-sticky\"",
        )]
    } else {
        &[]
    };
    let config = s.config_edited(
        if cooperative { "churn-coop" } else { "churn" },
        chaos_sink(", delay_ms = 10", ""),
        edits,
    );
    let name = |m: &str, k: usize| format!("churn-{cooperative}-{m}-{k}.log");
    let mut members: Vec<Option<Flumen>> = (0..3)
        .map(|m| Some(s.start(&config, &name(&m.to_string(), 0))))
        .collect();
    // Leave gracefully, die, rejoin: each step once flow is seen.
    let steps: [(usize, &str); 6] = [
        (1, "term"),
        (1, "start"),
        (2, "kill"),
        (0, "term"),
        (2, "start"),
        (0, "start"),
    ];
    for (k, (m, what)) in steps.iter().enumerate() {
        // Measured before producing: a member can write the whole wave
        // before `produce` returns, and a later reading would then wait out
        // the deadline for flow that had already been seen.
        let before = out_bytes(&s.work.out);
        let wave = produce(&s.bootstrap(), TOPIC, PARTITIONS, STEP_EVENTS, |_| false);
        s.produced.merge(wave);
        let deadline = Instant::now() + Duration::from_secs(60);
        while out_bytes(&s.work.out) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(200..1500)));
        match *what {
            "term" => {
                let status = members[*m].take().expect("member running").terminate();
                assert!(status.success(), "member {m} exit {status}");
            }
            "kill" => members[*m].take().expect("member running").kill(),
            _ => members[*m] = Some(s.start(&config, &name(&m.to_string(), k + 1))),
        }
    }
    let mut probe = members[0].take().expect("member 0");
    s.wait_end(&mut probe, Duration::from_secs(180));
    // Second wave after all the rebalances: must be consumed promptly.
    let wave = produce(&s.bootstrap(), TOPIC, PARTITIONS, WAVE, |_| false);
    let wave_started = Instant::now();
    let mut produced = s.produced.events.clone();
    let mut end = s.produced.end.clone();
    for (&(p, o), d) in &wave.events {
        produced.insert((p, o), *d);
        let e = end.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let end2 = end.clone();
    wait_committed(
        &mut probe,
        &s.bootstrap(),
        GROUP,
        TOPIC,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &end2,
    );
    let wave_secs = wave_started.elapsed().as_secs_f64();
    assert!(probe.terminate().success());
    for m in members.into_iter().flatten() {
        assert!(m.terminate().success());
    }
    let all = Produced {
        events: produced,
        end: end.clone(),
        index: BTreeMap::new(),
    };
    let committed_end = s.committed() == end;
    // The member killed may have been writing: its last line torn.
    let (lines, torn) = read_lenient(&s.work.out);
    let row = tally(
        if cooperative {
            "3 members join/leave/die (cooperative-sticky)"
        } else {
            "3 members join/leave/die (eager)"
        },
        "mock",
        &all,
        &lines,
        &[],
        committed_end,
        format!(
            "6 membership changes; a {WAVE}-event wave after them was consumed in {wave_secs:.1} s \
             (no stall); {torn} lines torn by the kill and redelivered whole"
        ),
    );
    check_order(row, &s.work.out)
}

/// A member whose partitions are paused (full queues behind a slow sink)
/// loses them in a rebalance and gets them back in the next. librdkafka
/// keeps its pause flag through the unassignment, so a partition flumen does
/// not resume on assignment could stay paused for good; every event must
/// still be delivered and committed.
fn rebalance_while_paused() -> Row {
    const EVENTS: usize = 40_000;
    let mut s = Setup::new(Broker::mock(), EVENTS, |_| None);
    let config = s.config("paused", chaos_sink(", delay_ms = 300", ""));
    let mut a = s.start(&config, "paused-a.log");
    wait_logged(&a, "partition paused", "no partition was paused");
    let mut rebalances = 0;
    for round in 0..2 {
        // B joins (A gives up every partition, paused ones included, and
        // gets half of them back), works a little, and leaves (A gets all
        // of them back).
        let b = s.start(&config, &format!("paused-b-{round}.log"));
        wait_logged(
            &b,
            "partitions assigned",
            "the second member got no partitions",
        );
        std::thread::sleep(Duration::from_millis(1500));
        assert!(b.terminate().success());
        rebalances += 2;
    }
    // Events produced after the rebalances: a partition left paused would
    // never reach its new end.
    let wave = produce(&s.bootstrap(), TOPIC, PARTITIONS, 2_000, |_| false);
    s.produced.merge(wave);
    s.wait_end(&mut a, Duration::from_secs(120));
    let log = a.log_text();
    assert!(a.terminate().success());
    s.row(
        "rebalance while partitions are paused, ×2",
        format!(
            "{rebalances} rebalances with a second member joining and leaving; {} pauses; \
             every partition fetched to its end afterwards",
            count(&log, "partition paused")
        ),
    )
}

/// Waits up to a minute for `needle` in `f`'s log; panics with `what`.
fn wait_logged(f: &Flumen, needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&f.log_text(), needle) == 0 {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A slow sink behind a large backlog: partitions pause instead of
/// buffering, and the process's memory stays flat.
fn backpressure() -> Row {
    const EVENTS: usize = 100_000;
    let broker = Broker::tansu();
    broker.create_topic(TOPIC, PARTITIONS);
    broker.create_topic(DLQ, 2);
    let records: Vec<Record> = (0..EVENTS)
        .map(|i| {
            let mut value = format!("seq={i} ").into_bytes();
            value.resize(1000, b'x');
            Record {
                partition: (i % PARTITIONS as usize) as i32,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(value),
                headers: vec![],
            }
        })
        .collect();
    let acked = produce_records(&broker.bootstrap(), TOPIC, &records);
    let mut produced = Produced::default();
    for (i, (p, o)) in acked.into_iter().enumerate() {
        produced.events.insert((p, o), false);
        produced.index.insert(i, (p, o));
        let e = produced.end.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let s = Setup {
        broker,
        work: Workdir::new(),
        produced,
    };
    let config = s.config("slow", chaos_sink(", delay_ms = 50", ""));
    let mut f = s.start(&config, "slow.log");
    // (bytes written, RSS) every 200 ms until everything is committed.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_check = Instant::now();
    loop {
        if let Some(rss) = f.rss_kib() {
            samples.push((out_bytes(&s.work.out), rss));
        }
        if last_check.elapsed() > Duration::from_secs(1) {
            if s.committed_end() {
                break;
            }
            last_check = Instant::now();
        }
        assert!(Instant::now() < deadline, "backlog not consumed in time");
        assert!(f.alive(), "flumen exited: {}", f.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = f.log_text();
    assert!(f.terminate().success());
    let pauses = count(&log, "partition paused");
    assert!(pauses > 0, "no partition was paused");
    // Flat: after the first tenth is delivered, the resident size stays
    // within a band; it does not grow with the backlog consumed.
    let total = out_bytes(&s.work.out);
    let after_warmup: Vec<u64> = samples
        .iter()
        .filter(|(d, _)| *d >= total / 10)
        .map(|(_, r)| *r)
        .collect();
    let (lo, hi) = (
        after_warmup.iter().copied().min().unwrap_or(0),
        after_warmup.iter().copied().max().unwrap_or(0),
    );
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let mut row = tally(
        "slow sink, 100 MB backlog (pause/resume)",
        "tansu",
        &s.produced,
        &read_sink(&s.work.out, "s"),
        &[],
        s.committed_end(),
        format!(
            "{pauses} pauses; RSS after warm-up {}–{} MiB, peak {} MiB ({} samples)",
            lo / 1024,
            hi / 1024,
            peak / 1024,
            samples.len()
        ),
    );
    // The bound: librdkafka's prefetch cap + per-partition queues + the
    // runtime; the backlog itself is 100 MB. Each further call in flight per
    // partition (docs/slow-destinations.md, "Instances and memory") may hold
    // a batch in flight and one waiting (500 events of 1 KB: 0.5 MiB each)
    // and has an instance of its own, whose memory grows to about twice a
    // batch (its columns and the lines it renders): 3 MiB in all. The
    // instances start as the window fills, so RSS may climb by half of that
    // after the warm-up.
    let window = ordering().map_or(1, |_| max_in_flight());
    let extra = (window as u64 - 1) * PARTITIONS as u64 * 3 * 1024;
    row.note.push_str(&format!(
        "; bound {} MiB (max_in_flight = {window})",
        (200 * 1024 + extra) / 1024
    ));
    if peak > 200 * 1024 + extra || hi.saturating_sub(lo) > 48 * 1024 + extra / 2 {
        row.note.push_str(" — MEMORY NOT FLAT");
        row.lost = row.lost.max(1);
    }
    row
}

/// A real broker restart: tansu storing in an object store (a SeaweedFS),
/// SIGKILLed and started again on the same port and storage while events
/// flow. A wave of events is produced after each restart, and the sink is
/// slow, so that each kill lands mid-stream.
fn broker_restart() -> Row {
    // Small waves of a slow sink: a few seconds of flow each, so that every
    // kill finds events in flight.
    const WAVE: usize = 2_000;
    const RESTARTS: usize = 3;
    let mut tansu = DurableBroker::start();
    let bootstrap = tansu.bootstrap.clone();
    let mut s = Setup::new(Broker::External(bootstrap.clone()), WAVE, |_| None);
    let config = s.config_edited(
        "restart",
        chaos_sink(", delay_ms = 300", ""),
        &[
            SMALL_BATCHES,
            // The group coordinator writes each change to the store: give
            // it time, as a cluster on S3 would need.
            (
                "\"session.timeout.ms\" = 3000, \"heartbeat.interval.ms\" = 500, \"max.poll.interval.ms\" = 10000",
                "\"session.timeout.ms\" = 10000, \"heartbeat.interval.ms\" = 1000, \"max.poll.interval.ms\" = 60000",
            ),
        ],
    );
    let mut f = s.start(&config, "restart.log");
    let mut mid_stream = 0;
    let started = Instant::now();
    for _ in 0..RESTARTS {
        let before = out_bytes(&s.work.out);
        let deadline = Instant::now() + Duration::from_secs(90);
        while out_bytes(&s.work.out) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(300..1200)));
        if !s.committed_end() {
            mid_stream += 1;
        }
        tansu.kill();
        std::thread::sleep(Duration::from_secs(2));
        tansu.start_again();
        let wave = produce(&bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
    }
    let waited = std::panic::catch_unwind(AssertUnwindSafe(|| {
        s.wait_end(&mut f, Duration::from_secs(240))
    }));
    if let Err(e) = waited {
        eprintln!("tansu log, last lines:\n{}", tail(&tansu.log(), 30));
        std::panic::resume_unwind(e);
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(f.terminate().success());
    tally(
        &format!("broker SIGKILLed and restarted ×{RESTARTS}"),
        "tansu on S3",
        &s.produced,
        &read_sink(&s.work.out, "s"),
        &[],
        s.committed_end(),
        format!(
            "{mid_stream} of {RESTARTS} broker kills with events in flight; a wave of {WAVE} \
             events produced after each restart; all committed {secs:.0} s after the run began"
        ),
    )
}

// ------------------------------------------------------------------- runner

/// Runs one scenario, saying when it starts and how it ended: its row, or
/// `None` if it panicked.
fn run_scenario(name: &str, run: fn() -> Row) -> Option<Row> {
    eprintln!("fault suite: {name} …");
    let started = Instant::now();
    match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(row) => {
            eprintln!(
                "fault suite: {name}: lost {} in {:.0} s",
                row.lost,
                started.elapsed().as_secs_f64()
            );
            Some(row)
        }
        Err(_) => {
            eprintln!("fault suite: {name}: FAILED (see the panic above)");
            None
        }
    }
}

fn main() {
    // Arguments name the scenarios to run (any whose name contains one),
    // and `--skip=NAME` those not to, as libtest's filters do.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let skips: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--skip="))
        .collect();
    let wanted = |name: &str| {
        (filters.is_empty() || filters.iter().any(|f| name.contains(f)))
            && !skips.iter().any(|s| name.contains(s))
    };
    let scenarios: Vec<Scenario> = vec![
        ("sigkill", sigkill),
        ("trap", trap_ten_percent),
        ("transient", transient),
        ("reject-dead-letter", reject_dead_letter),
        ("reject-block", reject_block),
        ("spin", spin),
        ("grow", grow),
        ("interceptor-fail-open", interceptor_fail_open),
        ("broker-down", broker_down_and_commit_errors),
        ("broker-restart", broker_restart),
        ("network-partition", network::partition_heals),
        ("network-member-cut-off", network::member_cut_off),
        ("network-destination-cut-off", network::destination_cut_off),
        ("network-slow-link", network::slow_lossy_link),
        ("network-exactly-once-cut-off", exactly_once::cut_off),
        (
            "network-exactly-once-late-writes",
            exactly_once::late_writes,
        ),
        ("churn-eager", || group_churn(false)),
        ("churn-cooperative", || group_churn(true)),
        ("rebalance-while-paused", rebalance_while_paused),
        ("backpressure", backpressure),
    ];
    // An exactly-once sink takes one call in flight per partition: the
    // scenario has nothing to show in key order or unordered.
    let one_call = |name: &str| name.contains("exactly-once") && ordering().is_some();
    for (name, _) in scenarios.iter().filter(|(n, _)| wanted(n) && one_call(n)) {
        println!("fault suite: {name}: SKIPPED under FLUMEN_FAULT_ORDERING (exactly_once needs one call in flight; it runs in the main mode)");
    }
    let wanted: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|(n, _)| wanted(n) && !one_call(n))
        .collect();
    // Scenarios that mostly wait (on a cut link, a session to expire, a
    // slow sink, a restart and a group join), each with a broker of its
    // own and no figure that CPU contention would spoil: they run side by
    // side, before the others, one at a time. Together they use about a
    // quarter of two cores (18 s of CPU in 66 s for the network group, 16 s
    // in 108 s for sigkill). broker-restart is not among them: beside other
    // load it twice missed its 240 s (against 30-40 s on its own), once
    // with tansu back from its restart refusing the member's commits
    // (UnknownMemberId) for four minutes and flumen never rejoining. An
    // open problem; scripts/test.sh runs it alone.
    let waits = |name: &str| {
        name.starts_with("network-")
            || ["broker-down", "rebalance-while-paused", "sigkill"].contains(&name)
    };
    let (side_by_side, one_by_one): (Vec<Scenario>, Vec<Scenario>) =
        wanted.iter().partition(|(n, _)| waits(n));
    let mut outcomes: Vec<(&str, Option<Row>)> = std::thread::scope(|scope| {
        let running: Vec<_> = side_by_side
            .iter()
            .map(|&(name, run)| (name, scope.spawn(move || run_scenario(name, run))))
            .collect();
        running
            .into_iter()
            .map(|(name, handle)| (name, handle.join().ok().flatten()))
            .collect()
    });
    for (name, run) in one_by_one {
        outcomes.push((name, run_scenario(name, run)));
    }
    let position = |name: &str| wanted.iter().position(|(n, _)| *n == name);
    outcomes.sort_by_key(|(name, _)| position(name));
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (name, row) in outcomes {
        match row {
            Some(row) if row.lost == 0 && row.committed_end => rows.push(row),
            Some(row) => {
                failed.push(name);
                rows.push(row);
            }
            None => failed.push(name),
        }
    }
    println!();
    println!("| scenario | broker | produced | delivered (distinct) | lost | duplicates | committed = end | notes |");
    println!("|---|---|---:|---:|---:|---:|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.broker,
            r.produced,
            r.delivered,
            r.lost,
            r.duplicates,
            if r.committed_end { "yes" } else { "NO" },
            r.note
        );
    }
    println!();
    if !failed.is_empty() {
        eprintln!("fault suite FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
}

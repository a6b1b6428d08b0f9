//! A sink that rejects an event blocks its partition there: nothing past it
//! is committed, other partitions go on. When the blocked flumen stops — by
//! restart, or by handing its partitions to another group member — delivery
//! resumes from the blocked offset: at-least-once, by counting.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EVENTS: usize = 4_000;
const PARTITIONS: i32 = 4;
/// The event index that carries the poison.
const POISON: usize = 2_001;
const GROUP: &str = "reject-group";
const TOPIC: &str = "e2e-reject";

/// `(partition, offset)` of an event.
type Pos = (i32, i64);

/// A topic with one poisoned event, and configs for flumen members that
/// reject it (or not).
struct Scenario {
    broker: Broker,
    dir: tempfile::TempDir,
    produced: Produced,
    poison: (i32, i64),
}

impl Scenario {
    fn new(broker: Broker) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        broker.create_topic(TOPIC, PARTITIONS);
        let produced = produce(&broker.bootstrap(), TOPIC, PARTITIONS, EVENTS, |i| {
            i == POISON
        });
        let poison = produced.index[&POISON];
        Self {
            broker,
            dir,
            produced,
            poison,
        }
    }

    /// Writes the config of member `name`: sinks `all` (file sink) and
    /// `picky` (rejects values with `reject`), output in `<dir>/<name>/`.
    fn config(&self, name: &str, reject: bool) -> PathBuf {
        self.config_with(name, reject, 200)
    }

    fn config_with(&self, name: &str, reject: bool, commit_interval_ms: u64) -> PathBuf {
        let out = self.out(name);
        std::fs::create_dir_all(&out).expect("out dir");
        let path = self.dir.path().join(format!("{name}.toml"));
        let reject = if reject { ", reject = \"POISON\"" } else { "" };
        PipelineToml {
            bootstrap: self.broker.bootstrap(),
            topic: TOPIC.into(),
            group: GROUP.into(),
            out,
            components: format!(
                "{}{}",
                file_sink("all", "file_sink", ", sync = false"),
                file_sink("picky", "reject_sink", reject),
            ),
            commit_interval_ms,
        }
        .write(&path);
        path
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Committed offsets when blocked at the poison: its partition at the
    /// poison's offset, the others at their end.
    fn blocked(&self) -> BTreeMap<i32, i64> {
        let mut c = self.produced.end.clone();
        c.insert(self.poison.0, self.poison.1);
        c
    }

    fn wait(&self, flumen: &mut Flumen, expected: &BTreeMap<i32, i64>) {
        let bootstrap = self.broker.bootstrap();
        wait_committed(
            flumen,
            &bootstrap,
            GROUP,
            TOPIC,
            PARTITIONS,
            Duration::from_secs(120),
            |c| c == expected,
        );
    }

    fn committed(&self) -> BTreeMap<i32, i64> {
        committed(&self.broker.bootstrap(), GROUP, TOPIC, PARTITIONS)
    }

    /// How often each event appears in `sink`'s output over `members`, and
    /// the events that appear more than once.
    fn counts(&self, members: &[&str], sink: &str) -> (BTreeMap<Pos, usize>, Vec<Pos>) {
        let mut counts: BTreeMap<Pos, usize> = BTreeMap::new();
        for m in members {
            for l in read_sink(&self.out(m), sink) {
                *counts.entry(l).or_default() += 1;
            }
        }
        let dups = counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(k, _)| *k)
            .collect();
        (counts, dups)
    }

    /// Whether every duplicate lies in the poisoned partition, from the
    /// poison on (where a blocked partition is legitimately redelivered).
    fn after_poison(&self, dups: &[Pos]) -> bool {
        let (pp, po) = self.poison;
        dups.iter().all(|&(p, o)| p == pp && o >= po)
    }

    /// Counts every event over the outputs of `members`: each sink holds
    /// every event at least once; duplicates only in the poisoned partition
    /// from the poison on.
    fn assert_all_delivered(&self, members: &[&str], label: &str) {
        for sink in ["all", "picky"] {
            let (counts, dups) = self.counts(members, sink);
            let lost: Vec<_> = self
                .produced
                .events
                .keys()
                .filter(|k| !counts.contains_key(k))
                .collect();
            assert!(
                lost.is_empty(),
                "{label}: {sink} lost {} events, first {:?}",
                lost.len(),
                lost.first()
            );
            assert!(
                self.after_poison(&dups),
                "{label}: {sink} has unexpected duplicates {dups:?}"
            );
            eprintln!(
                "{label}: sink {sink}: {} lines for {EVENTS} events, lost 0, {} redelivered",
                counts.values().sum::<usize>(),
                dups.len()
            );
        }
    }
}

fn assert_clean_exit(flumen: Flumen, what: &str) {
    let log = flumen.log.clone();
    let status = flumen.terminate();
    assert!(
        status.success(),
        "{what}: exit status {status}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn assert_poison_not_written(out: &Path, poison: (i32, i64)) {
    assert!(
        !read_sink(out, "picky").contains(&poison),
        "the rejected event was written"
    );
}

fn reject_blocks_then_restart_redelivers(broker: Broker, label: &str) {
    let s = Scenario::new(broker);

    // Run 1: the picky sink rejects the poison event.
    let mut flumen = Flumen::run(&s.config("run1", true), &s.log("run1"));
    s.wait(&mut flumen, &s.blocked());
    // Stay blocked: a later success must never move the commit past it.
    std::thread::sleep(Duration::from_secs(2));
    assert_clean_exit(flumen, "run 1");
    let after_run1 = s.committed();
    assert_eq!(
        after_run1,
        s.blocked(),
        "{label}: committed past the rejected event"
    );
    assert_poison_not_written(&s.out("run1"), s.poison);

    // Run 2: the sink is fixed; the host resumes from the blocked offset.
    let mut flumen = Flumen::run(&s.config("run2", false), &s.log("run2"));
    s.wait(&mut flumen, &s.produced.end);
    assert_clean_exit(flumen, "run 2");
    s.assert_all_delivered(&["run1", "run2"], label);
    eprintln!(
        "{label}: run 1 committed {after_run1:?} (blocked at partition {} offset {}); run 2 \
         committed {:?} = end offsets",
        s.poison.0, s.poison.1, s.produced.end
    );
}

#[test]
fn rejected_event_blocks_commit_until_restart_mock_cluster() {
    reject_blocks_then_restart_redelivers(Broker::mock(), "mock cluster");
}

#[test]
fn rejected_event_blocks_commit_until_restart_tansu() {
    reject_blocks_then_restart_redelivers(Broker::tansu(), "tansu");
}

/// Commits on revoke and on leaving, proven by members whose periodic
/// commit never fires (one hour): member A processes everything and blocks
/// on the poison; member B joins, so A's partitions are revoked — A must
/// drain and commit exactly up to the poison before releasing them. Then A
/// leaves and B, which rejects the poison too, takes everything over from
/// those commits: nothing lost, nothing committed past the poison.
/// `strict`: whether duplicates are allowed only where the poison blocked.
/// A broker that refuses commits during a rebalance (librdkafka's mock
/// cluster) gets the revoke commit only after the rebalance, which races
/// with the new owner reading its start offset: duplicates then, never loss.
fn revoke_and_leave_commit_what_is_finalized_and_hand_over(
    broker: Broker,
    label: &str,
    strict: bool,
) {
    let s = Scenario::new(broker);
    const HOUR: u64 = 3_600_000;
    let mut a = Flumen::run(&s.config_with("a", true, HOUR), &s.log("a"));
    // A has delivered everything it can once sink `all` holds every event.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while read_sink_live(&s.out("a"), "all").len() < EVENTS {
        assert!(a.alive(), "member A exited; log:\n{}", a.log_text());
        assert!(
            std::time::Instant::now() < deadline,
            "A stalled; log:\n{}",
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        s.committed().is_empty(),
        "nothing may be committed before a revoke"
    );

    let b = Flumen::run(&s.config_with("b", true, HOUR), &s.log("b"));
    // The only way offsets get committed now is A's revoke.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.committed() != s.blocked() {
        assert!(
            std::time::Instant::now() < deadline,
            "no commit on revoke: committed {:?}\nA log:\n{}\nB log:\n{}",
            s.committed(),
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        a.log_text().contains("partitions revoked"),
        "A log:\n{}",
        a.log_text()
    );
    // Let the rebalance finish before A leaves, as an operator scaling in
    // would. (tansu 0.6 never completes a rebalance that a member leaves in
    // the middle of: seen here, the remaining member stayed unassigned.)
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(a.log_text().matches("partitions assigned").count() >= 2
        && b.log_text().contains("partitions assigned"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "rebalance did not complete; A log:\n{}\nB log:\n{}",
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    assert_clean_exit(a, "member A");
    // B takes every partition over and blocks at the poison again.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !read_sink_live(&s.out("b"), "all").contains(&s.poison) {
        assert!(
            std::time::Instant::now() < deadline,
            "B never got the poisoned partition; A log:\n{}\nB log:\n{}",
            std::fs::read_to_string(s.log("a")).unwrap_or_default(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_clean_exit(b, "member B");
    assert_eq!(
        s.committed(),
        s.blocked(),
        "committed past the poison, or lost a commit"
    );

    // Count: `all` has every event; `picky` every event but the poison;
    // duplicates only from the poison on, in its partition.
    for sink in ["all", "picky"] {
        let (counts, dups) = s.counts(&["a", "b"], sink);
        for key in s.produced.events.keys() {
            let expected = !(sink == "picky" && *key == s.poison);
            assert_eq!(counts.contains_key(key), expected, "{sink}: event {key:?}");
        }
        assert!(
            !strict || s.after_poison(&dups),
            "{sink}: duplicates {dups:?}"
        );
        eprintln!(
            "{label}: handover: sink {sink}: {} lines over members a and b, lost 0, {} redelivered",
            counts.values().sum::<usize>(),
            dups.len()
        );
    }
}

#[test]
fn revoke_commits_and_hands_over_mock_cluster() {
    revoke_and_leave_commit_what_is_finalized_and_hand_over(Broker::mock(), "mock cluster", false);
}

#[test]
fn revoke_commits_and_hands_over_tansu() {
    revoke_and_leave_commit_what_is_finalized_and_hand_over(Broker::tansu(), "tansu", true);
}

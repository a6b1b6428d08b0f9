//! Faults that cross a network: the broker, flumen and the test's own
//! clients each in a network namespace of their own (see
//! `support::netns`), and the link between flumen and the broker cut so
//! that packets vanish, for longer than the group's session, then healed.

use super::*;
use std::process::{Child, Stdio};

/// The group's session in these scenarios (librdkafka
/// `session.timeout.ms`); tansu needs several seconds for a join.
pub const SESSION_MS: u64 = 6_000;

/// tansu (memory storage) inside `host`'s namespace, on its address.
pub struct NetTansu {
    child: Child,
    /// Its address, for clients.
    pub bootstrap: String,
}

impl NetTansu {
    /// Starts it; call from a namespace that reaches `host`, which waits
    /// until it listens.
    pub fn start(host: &NetHost) -> Self {
        let bootstrap = format!("{}:9092", host.ip);
        let mut tansu = host.command(tansu_bin());
        let child = tansu_broker(&mut tansu, &bootstrap, &bootstrap, "memory://tansu/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        wait_listening(&bootstrap);
        Self { child, bootstrap }
    }
}

impl Drop for NetTansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Librdkafka settings for these scenarios: a session tansu can keep, and
/// heartbeats every sixth of it.
pub fn session_edit() -> (&'static str, String) {
    (
        "\"session.timeout.ms\" = 3000, \"heartbeat.interval.ms\" = 500, \"max.poll.interval.ms\" = 10000",
        format!(
            "\"session.timeout.ms\" = {SESSION_MS}, \"heartbeat.interval.ms\" = {}, \
             \"max.poll.interval.ms\" = 30000",
            SESSION_MS / 6
        ),
    )
}

/// Waits until the group has split the four partitions between the two
/// members, two each: both hold partitions when a scenario cuts one off.
pub fn wait_split(a: &Flumen, b: &Flumen) {
    for m in [a, b] {
        wait_logged(
            m,
            "partitions assigned pipeline=e2e count=2",
            "the group never split the partitions",
        );
    }
}

/// How long after `cut_at` the member `other` took all four partitions
/// over; it must while the link is still down (within `cut`).
pub fn taken_over(other: &Flumen, cut_at: Instant, cut: Duration) -> Duration {
    let deadline = cut_at + cut;
    while count(
        &other.log_text(),
        "partitions assigned pipeline=e2e count=4",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the other member never took the partitions over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cut_at.elapsed()
}

/// Every packet between flumen and the broker dropped for twice the
/// session timeout while events arrive, then the link healed: the group
/// has expired the member by then; it must rejoin, and every event must
/// still be delivered and committed.
pub fn partition_heals() -> Row {
    const WAVE: usize = 10_000;
    let mut net = Net::new();
    let (b, f, t) = (net.host(), net.host(), net.host());
    t.clone().enter(move || {
        let tansu = NetTansu::start(&b);
        let mut s = Setup::new(Broker::External(tansu.bootstrap.clone()), WAVE, |_| None);
        let (from, to) = session_edit();
        let config = s.config_edited(
            "partition",
            chaos_sink(", delay_ms = 20", ""),
            &[(from, &to)],
        );
        let mut flumen = Flumen::run_in(&f, &config, &s.work.path("partition.log"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while out_bytes(&s.work.out) == 0 {
            assert!(Instant::now() < deadline, "no flow before the cut");
            assert!(flumen.alive(), "flumen exited: {}", flumen.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        let cut = Duration::from_millis(2 * SESSION_MS);
        net.cut(&f, &b);
        let cut_at = Instant::now();
        // Events keep arriving from the test's side while flumen is cut off.
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
        let during = out_bytes(&s.work.out);
        std::thread::sleep(cut.saturating_sub(cut_at.elapsed()));
        let written_cut_off = out_bytes(&s.work.out).saturating_sub(during);
        net.heal(&f, &b);
        let healed = Instant::now();
        s.wait_end(&mut flumen, Duration::from_secs(120));
        let recovered = healed.elapsed().as_secs_f64();
        let log = flumen.log_text();
        assert!(flumen.terminate().success(), "flumen exit");
        let row = tally(
            &format!(
                "link to the broker dropped {} s (session {} s), then healed",
                cut.as_secs(),
                SESSION_MS / 1000
            ),
            "tansu, netns",
            &s.produced,
            &read_sink(&s.work.out, "s"),
            &[],
            s.committed_end(),
            format!(
                "committed to the end {recovered:.1} s after the heal; {} failed commits logged; \
                 {} KB written while cut off",
                count(&log, "offset commit failed"),
                written_cut_off / 1024,
            ),
        );
        check_order(row, &s.work.out)
    })
}

/// Two members of a group; one loses the broker (every packet dropped) for
/// three sessions while it can still write to its destination (the sink's
/// files), then the link heals. The other member takes its partitions once
/// its session expires; the cut-off one, a zombie until it learns that,
/// may still deliver what it holds. Nothing may be lost; what the zombie
/// wrote twice shows as duplicates.
pub fn member_cut_off() -> Row {
    const WAVE: usize = 10_000;
    let mut net = Net::new();
    let (b, a, c, t) = (net.host(), net.host(), net.host(), net.host());
    t.clone().enter(move || {
        let tansu = NetTansu::start(&b);
        let mut s = Setup::new(Broker::External(tansu.bootstrap.clone()), WAVE, |_| None);
        let (from, to) = session_edit();
        let config = s.config_edited("cutoff", chaos_sink(", delay_ms = 50", ""), &[(from, &to)]);
        let mut zombie = Flumen::run_in(&a, &config, &s.work.path("cutoff-a.log"));
        let mut other = Flumen::run_in(&c, &config, &s.work.path("cutoff-c.log"));
        wait_split(&zombie, &other);
        // A backlog for both, so that the one cut off holds events when
        // the link goes.
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
        std::thread::sleep(Duration::from_millis(500));
        let cut = Duration::from_millis(3 * SESSION_MS);
        net.cut(&a, &b);
        let cut_at = Instant::now();
        let took_over = taken_over(&other, cut_at, cut).as_secs_f64();
        std::thread::sleep(cut.saturating_sub(cut_at.elapsed()));
        net.heal(&a, &b);
        let healed = Instant::now();
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
        s.wait_end(&mut other, Duration::from_secs(120));
        let recovered = healed.elapsed().as_secs_f64();
        assert!(
            zombie.alive(),
            "the cut-off member exited: {}",
            zombie.log_text()
        );
        assert!(zombie.terminate().success(), "cut-off member exit");
        assert!(other.terminate().success(), "other member exit");
        let row = tally(
            &format!(
                "one of 2 members cut off from the broker {} s, its destination reachable",
                cut.as_secs()
            ),
            "tansu, netns",
            &s.produced,
            &read_sink(&s.work.out, "s"),
            &[],
            s.committed_end(),
            format!(
                "the other member took the partitions {took_over:.1} s into the cut; committed to \
                 the end {recovered:.1} s after the heal"
            ),
        );
        check_order(row, &s.work.out)
    })
}

/// The destination (a ClickHouse in a namespace of its own) cut off from
/// flumen for longer than the sink's own timeout, while the broker stays
/// reachable, under `on_failure = "dead-letter"`: the calls that meet the
/// silence time out and are answered `retry`, the partitions wait (an
/// outage is not poison), and when the link heals every event is inserted
/// but the few the sink rejects (values that are not UTF-8), which alone
/// are dead-lettered.
pub fn destination_cut_off() -> Row {
    const WAVE: usize = 10_000;
    let mut net = Net::new();
    let (b, f, d, t) = (net.host(), net.host(), net.host(), net.host());
    t.clone().enter(move || {
        let tansu = NetTansu::start(&b);
        let ch = ClickHouse::start_in(&d);
        ch.query(
            "CREATE TABLE IF NOT EXISTS events (partition Int32, offset Int64, value String) \
             ENGINE = MergeTree ORDER BY (partition, offset)",
        );
        let mut s = Setup::new(Broker::External(tansu.bootstrap.clone()), WAVE, |_| None);
        let (from, to) = session_edit();
        let sink = clickhouse_sink(
            &ch,
            "events",
            r#", timeout_ms = 2000, topic_column = "", timestamp_column = "", key_column = """#,
            "on_failure = \"dead-letter\"\nbatch = { max_events = 500, max_wait_ms = 100 }",
        );
        let config = s.config_edited(
            "destination",
            format!("{DEAD_LETTER}{sink}"),
            &[(from, &to)],
        );
        let mut flumen = Flumen::run_in(&f, &config, &s.work.path("destination.log"));
        let rows = || -> usize {
            ch.query("SELECT count() FROM events")
                .trim()
                .parse()
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while rows() == 0 {
            assert!(Instant::now() < deadline, "nothing inserted before the cut");
            assert!(flumen.alive(), "flumen exited: {}", flumen.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        let cut = Duration::from_millis(2 * SESSION_MS);
        net.cut(&f, &d);
        let cut_at = Instant::now();
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
        std::thread::sleep(cut.saturating_sub(cut_at.elapsed()));
        net.heal(&f, &d);
        let healed = Instant::now();
        s.wait_end(&mut flumen, Duration::from_secs(120));
        let recovered = healed.elapsed().as_secs_f64();
        let log = flumen.log_text();
        assert!(flumen.terminate().success(), "flumen exit");
        let inserted: Vec<Pos> = ch
            .query("SELECT partition, offset FROM events")
            .lines()
            .filter_map(|l| {
                let (p, o) = l.split_once('\t')?;
                Some((p.parse().ok()?, o.parse().ok()?))
            })
            .collect();
        // The test load has values that are not UTF-8, which the sink
        // rejects in string mode: those, and only those, are dead letters.
        let (dead, letters) = s.dead_letters(count(&log, "event written to the dead-letter topic"));
        for m in &letters {
            let error = header(m, "flumen.error");
            assert!(
                error.contains("not UTF-8"),
                "a good event dead-lettered by the cut: {error}"
            );
        }
        tally(
            &format!(
                "destination cut off {} s (broker reachable), dead-letter",
                cut.as_secs()
            ),
            "tansu, netns",
            &s.produced,
            &inserted,
            &dead,
            s.committed_end(),
            format!(
                "{} dead letters, each a value the sink rejects (not UTF-8), none from the cut; \
                 {} calls retried while cut off; committed to the end \
                 {recovered:.1} s after the heal",
                dead.len(),
                count(&log, "sink did not deliver; retrying")
            ),
        )
    })
}

/// Every byte between the broker and its clients 100 ms late each way (a
/// round trip 200 ms longer), and 5 % of the chunks a retransmission
/// timeout later still, as a lost packet costs (`support::slow_link`):
/// fetches, commits and heartbeats all slow, nothing refused. The member
/// must keep its session and lose nothing.
pub fn slow_lossy_link() -> Row {
    const EVENTS: usize = 20_000;
    let direct = format!("127.0.0.1:{}", free_port());
    let link = SlowLink::start(&direct, Duration::from_millis(100), 0.05);
    // tansu advertises the link, so every client goes through it.
    let mut tansu = std::process::Command::new(tansu_bin());
    let mut tansu = tansu_broker(&mut tansu, &direct, &link.addr, "memory://tansu/")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    wait_listening(&direct);
    let s = Setup::new(Broker::External(link.addr.clone()), EVENTS, |_| None);
    let (from, to) = session_edit();
    let config = s.config_edited("slow", chaos_sink("", ""), &[(from, &to)]);
    let started = Instant::now();
    let mut flumen = Flumen::run(&config, &s.work.path("slow.log"));
    s.wait_end(&mut flumen, Duration::from_secs(180));
    let took = started.elapsed().as_secs_f64();
    let log = flumen.log_text();
    assert!(flumen.terminate().success(), "flumen exit");
    let committed_end = s.committed_end();
    let _ = tansu.kill();
    let _ = tansu.wait();
    let row = tally(
        "every byte to and from the broker 100 ms late each way, 5 % of chunks 200 ms more",
        "tansu, proxy",
        &s.produced,
        &read_sink(&s.work.out, "s"),
        &[],
        committed_end,
        format!(
            "committed to the end {took:.1} s after the start; {} of {} chunks held as lost; \
             {} rebalances",
            link.lost.load(std::sync::atomic::Ordering::Relaxed),
            link.chunks.load(std::sync::atomic::Ordering::Relaxed),
            count(&log, "partitions revoked"),
        ),
    );
    check_order(row, &s.work.out)
}

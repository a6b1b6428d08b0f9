//! A member cut off from the broker under the s3 sink's `exactly_once`,
//! in the network namespaces of [`super::network`]: the member fences
//! itself (`kafka::fence`), and every event is in the bucket once.

use super::network::{session_edit, taken_over, wait_split, NetTansu, SESSION_MS};
use super::*;

/// The member cut off from the broker, under the s3 sink's `exactly_once`:
/// two members write one bucket (a SeaweedFS both reach), one loses the
/// broker for three sessions while it holds a backlog and can still reach
/// the store. Its store traffic passes a proxy that notes when each chunk
/// was sent. The member fences itself (`kafka::fence`): it starts no call
/// once its coordinator has been silent for the fence's limit, and its
/// last call ends before the group may have expired it (`session −
/// heartbeat` after the cut), so nothing it writes can meet the new owner's
/// writes. Every event must be in the bucket once. With
/// `FLUMEN_SELF_FENCE=off` (the control) the members do not fence
/// themselves: the cut-off member writes past the group's deadline, and
/// the check fails.
pub fn cut_off() -> Row {
    exactly_once_zombie(None)
}

/// As [`cut_off`], and the network also holds what the cut-off
/// member sends its store from the cut on for 12 s, past the other
/// member's takeover: requests its calls gave up on (the fence bounds
/// calls, not packets) reach the store after the new owner has written
/// the same offsets. The store's conditional writes refuse them; every
/// event must still be in the bucket once. With
/// `FLUMEN_FAULT_UNCONDITIONAL=1` the proxy takes `If-None-Match` out of
/// the cut-off member's requests (on a store that checks no signature):
/// the measurement of what conditional writes add to the fence.
pub fn late_writes() -> Row {
    exactly_once_zombie(Some(Duration::from_secs(12)))
}

/// The cut-off member under `exactly_once`; `late`: how long the network
/// holds its store traffic from the cut on.
fn exactly_once_zombie(late: Option<Duration>) -> Row {
    const WAVE: usize = 10_000;
    const BUCKET: &str = "eo-cut";
    // A session of 6 s with heartbeats every second leaves calls of up to
    // 2.5 s (see `kafka::fence::Timing`); 2 s here: a fence limit of
    // 6 − 1 − 2 − 0.5 = 2.5 s after the last contact.
    const CALL_MS: u64 = 2_000;
    let heartbeat = Duration::from_millis(SESSION_MS / 6);
    let fencing = std::env::var("FLUMEN_SELF_FENCE").as_deref() != Ok("off");
    let unconditional = std::env::var_os("FLUMEN_FAULT_UNCONDITIONAL").is_some();
    let mut net = Net::new();
    let (b, a, c, t) = (net.host(), net.host(), net.host(), net.host());
    let at = t.ip.clone();
    t.clone().enter(move || {
        let tansu = NetTansu::start(&b);
        let store = if unconditional {
            SeaweedFs::start_open_at(&at)
        } else {
            SeaweedFs::start_at(&at)
        };
        store.create_bucket(BUCKET);
        let mut s = Setup::new(Broker::External(tansu.bootstrap.clone()), WAVE, |_| None);
        // The cut-off member reaches the store through a proxy in its own
        // namespace, each chunk 100 ms late each way: its calls are slow
        // enough (about 0.3 s) that it still holds a backlog past its
        // session when the link goes, and its sink's start-up check (four
        // requests) still fits a call.
        let upstream = store.endpoint.trim_start_matches("http://").to_owned();
        let link = a.enter({
            let upstream = upstream.clone();
            move || SlowLink::start(&upstream, Duration::from_millis(100), 0.0)
        });
        if unconditional {
            link.strip_if_none_match();
        }
        let sink = s3_sink(
            &store,
            BUCKET,
            ", exactly_once = true",
            &format!(
                "batch = {{ max_events = 500, max_wait_ms = 300 }}\non_failure = \"block\"\n\
                 limits = {{ call_timeout_ms = {CALL_MS} }}"
            ),
        );
        let path = s.work.path("eo-cut.toml");
        PipelineToml {
            bootstrap: tansu.bootstrap.clone(),
            topic: TOPIC.into(),
            group: GROUP.into(),
            out: s.work.out.clone(),
            components: sink,
            commit_interval_ms: 200,
        }
        .write(&path);
        let (from, to) = session_edit();
        let text = std::fs::read_to_string(&path).expect("config");
        assert!(text.contains(from), "config has no `{from}`");
        let text = text.replace(from, &to);
        std::fs::write(&path, &text).expect("config");
        let proxied = s.work.path("eo-cut-proxied.toml");
        // It also cuts its objects otherwise (as writers may: the first
        // object stored under an offset wins), so that an object of its
        // and one of the new owner's starting at the same offset differ.
        let zombie_text = text
            .replace(&upstream, &link.addr)
            .replace("max_events = 500", "max_events = 350");
        std::fs::write(&proxied, zombie_text).expect("config");
        let mut zombie = Flumen::run_in(&a, &proxied, &s.work.path("eo-cut-a.log"));
        let mut other = Flumen::run_in(&c, &path, &s.work.path("eo-cut-c.log"));
        wait_split(&zombie, &other);
        // A first wave starts each member's workers (a new s3 sink instance
        // checks the store's conditional writes first); the second is the
        // backlog the cut-off member is writing when the link goes.
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE / 5, |_| false);
        s.produced.merge(wave);
        std::thread::sleep(Duration::from_secs(3));
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, 4 * WAVE, |_| false);
        s.produced.merge(wave);
        std::thread::sleep(Duration::from_secs(1));
        let cut = Duration::from_millis(3 * SESSION_MS);
        if let Some(hold) = late {
            // From half a second before the cut, so that the writes it
            // holds include objects' (a call takes about 0.3 s).
            link.hold(hold);
            std::thread::sleep(Duration::from_millis(500));
        }
        net.cut(&a, &b);
        let cut_at = Instant::now();
        let took_over = taken_over(&other, cut_at, cut);
        std::thread::sleep(cut.saturating_sub(cut_at.elapsed()));
        let healed_at = Instant::now();
        net.heal(&a, &b);
        let wave = produce(&tansu.bootstrap, TOPIC, PARTITIONS, WAVE, |_| false);
        s.produced.merge(wave);
        s.wait_end(&mut other, Duration::from_secs(120));
        assert!(
            zombie.alive(),
            "the cut-off member exited: {}",
            zombie.log_text()
        );
        let zombie_log = zombie.log_text();
        if let Some(dir) = std::env::var_os("FLUMEN_FAULT_LOGS") {
            // Both members' logs, to read an interleaving afterwards.
            let name = if late.is_some() { "late" } else { "cut" };
            for (who, text) in [("cut-off", &zombie_log), ("other", &other.log_text())] {
                let path = std::path::Path::new(&dir).join(format!("eo-{name}-{who}.log"));
                std::fs::write(path, text).expect("write a log copy");
            }
        }
        assert!(zombie.terminate().success(), "cut-off member exit");
        assert!(other.terminate().success(), "other member exit");
        // What the cut-off member sent its store while cut off, by when.
        let sent: Vec<Duration> = (link.sent.lock().expect("the link's log").iter())
            .filter(|&&at| at > cut_at && at < healed_at)
            .map(|&at| at - cut_at)
            .collect();
        let group_deadline = Duration::from_millis(SESSION_MS) - heartbeat;
        let past_deadline = sent.iter().filter(|&&d| d >= group_deadline).count();
        let last = sent.iter().max().copied().unwrap_or_default();
        // What reached the store after the other member took over.
        let after_takeover = (link.passed.lock().expect("the link's log").iter())
            .filter(|&&at| at > cut_at + took_over && at < healed_at)
            .count();
        let counts = bucket_counts(&store, BUCKET);
        let lines: Vec<Pos> = (counts.iter())
            .flat_map(|(&pos, &n)| std::iter::repeat_n(pos, n))
            .collect();
        let row = tally(
            &format!(
                "one of 2 members cut off from the broker {} s, s3 exactly_once{}{}{}",
                cut.as_secs(),
                late.map_or(String::new(), |d| format!(
                    ", its writes held {} s from the cut",
                    d.as_secs()
                )),
                if fencing {
                    ""
                } else {
                    " (control: self-fencing off)"
                },
                if unconditional {
                    " (measurement: its writes not conditional)"
                } else {
                    ""
                },
            ),
            "tansu, netns",
            &s.produced,
            &lines,
            &[],
            s.committed_end(),
            format!(
                "the other member took over {:.1} s into the cut; the cut-off member's store \
                 traffic while cut off: last chunk {:.1} s in, {past_deadline} chunks at or after the \
                 group's earliest deadline ({:.0} s), {after_takeover} reached the store after \
                 the takeover; {} fence closings logged; {} objects",
                took_over.as_secs_f64(),
                last.as_secs_f64(),
                group_deadline.as_secs_f64(),
                count(&zombie_log, "starting no sink call and sending no commit"),
                store.objects(BUCKET).len(),
            ),
        );
        // The control (self-fencing off) is checked the same way, so that
        // it fails where the fence is what holds; the measurement without
        // conditional writes only reports.
        if !unconditional {
            assert_eq!(
                (row.lost, row.duplicates, past_deadline),
                (0, 0, 0),
                "exactly once across a cut-off member (lost, duplicated, chunks the \
                 cut-off member sent at or after the group's deadline): {}",
                row.note
            );
        }
        row
    })
}

//! The Flume-parity guest library and `flumen test`, which runs one real
//! component (built by guests/build.sh) offline over events from a file.
//! Each library interceptor is checked for what it does to an event, for
//! its config keys' defaults, and for a clear refusal of a bad config.

use crate::support::*;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// What one `flumen test` run printed.
struct Run {
    ok: bool,
    /// stdout, one JSON value per line.
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    /// The event an interceptor passed on for the `i`-th input.
    fn event(&self, i: usize) -> &Value {
        &self.lines[i]["event"]
    }

    /// Header `name` of the `i`-th output event, as text.
    fn header(&self, i: usize, name: &str) -> Option<String> {
        self.event(i)["headers"]
            .as_array()?
            .iter()
            .find(|h| h["name"] == name)
            .and_then(|h| h["value"].as_str().map(str::to_owned))
    }

    fn verdicts(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| l["verdict"].as_str().unwrap_or("?"))
            .collect()
    }
}

/// Runs `flumen test` on `component` with `args`, feeding `events` (JSON
/// values, one per line) on standard input.
fn flumen_test(component: &std::path::Path, args: &[&str], events: &[Value]) -> Run {
    let cache = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .arg("test")
        .arg("--component")
        .arg(component)
        .args(["--events", "-"])
        .args(args)
        .env("FLUMEN_CACHE_DIR", cache.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flumen test");
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write events");
    }
    let out = child.wait_with_output().expect("wait for flumen test");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "flumen test panicked:\n{stderr}"
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    Run {
        ok: out.status.success(),
        lines,
        stderr,
    }
}

fn ev(value: &str) -> Value {
    json!({ "value": value })
}

#[test]
fn timestamp_stamps_the_time_of_passage_or_the_events_own() {
    let events = [
        json!({ "value": "a", "timestamp": 1234 }),
        json!({ "value": "b", "headers": [{ "name": "timestamp", "value": "1" }] }),
    ];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let now = flumen_test(&guest("timestamp"), &[], &events);
    assert!(now.ok, "{}", now.stderr);
    assert_eq!(now.verdicts(), ["replace", "replace"]);
    for i in 0..2 {
        let t: i64 = now
            .header(i, "timestamp")
            .expect("header")
            .parse()
            .expect("millis");
        assert!(
            (before..before + 60_000).contains(&t),
            "{t} is not now ({before})"
        );
    }

    let own = flumen_test(
        &guest("timestamp"),
        &[
            "--config",
            "from=event",
            "--config",
            "header=ts",
            "--config",
            "preserve_existing=true",
        ],
        &events,
    );
    assert!(own.ok, "{}", own.stderr);
    assert_eq!(own.header(0, "ts").as_deref(), Some("1234"));
    assert_eq!(own.header(1, "timestamp").as_deref(), Some("1"));

    let bad = flumen_test(&guest("timestamp"), &["--config", "from=later"], &events);
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("`from` must be `now` or `event`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn host_stamps_the_configured_or_granted_host_name() {
    let events = [
        ev("a"),
        json!({ "value": "b", "headers": [{ "name": "host", "value": "origin" }] }),
    ];
    let named = flumen_test(
        &guest("host_header"),
        &["--config", "hostname=edge-7"],
        &events,
    );
    assert!(named.ok, "{}", named.stderr);
    assert_eq!(named.header(0, "host").as_deref(), Some("edge-7"));
    // Overwritten by default, as in Flume.
    assert_eq!(named.header(1, "host").as_deref(), Some("edge-7"));

    let granted = flumen_test(
        &guest("host_header"),
        &[
            "--env",
            "HOSTNAME=box-3",
            "--config",
            "preserve_existing=true",
        ],
        &events,
    );
    assert!(granted.ok, "{}", granted.stderr);
    assert_eq!(granted.header(0, "host").as_deref(), Some("box-3"));
    assert_eq!(granted.header(1, "host").as_deref(), Some("origin"));

    // flumen's own HOSTNAME is not visible unless granted.
    let ungranted = flumen_test(&guest("host_header"), &[], &events);
    assert!(!ungranted.ok);
    assert!(
        ungranted.stderr.contains("no host name"),
        "{}",
        ungranted.stderr
    );
}

#[test]
fn static_header_adds_a_fixed_header_and_preserves_by_default() {
    let events = [
        ev("a"),
        json!({ "value": "b", "headers": [{ "name": "dc", "value": "us-2" }] }),
    ];
    let r = flumen_test(
        &guest("static_header"),
        &["--config", "header=dc", "--config", "value=eu-1"],
        &events,
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["replace", "keep"]);
    assert_eq!(r.header(0, "dc").as_deref(), Some("eu-1"));
    assert_eq!(r.header(1, "dc").as_deref(), Some("us-2"));

    let over = flumen_test(
        &guest("static_header"),
        &[
            "--config",
            "header=dc",
            "--config",
            "value=eu-1",
            "--config",
            "preserve_existing=false",
        ],
        &events,
    );
    assert_eq!(over.header(1, "dc").as_deref(), Some("eu-1"));
    let headers = over.event(1)["headers"].as_array().expect("headers").len();
    assert_eq!(headers, 1, "the old header is replaced, not duplicated");

    let missing = flumen_test(&guest("static_header"), &["--config", "header=dc"], &events);
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("missing required config key `value`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn regex_extractor_copies_capture_groups_into_headers() {
    let events = [
        ev("level=warn id=42 disk almost full"),
        ev("no fields here"),
        json!({ "value": null }),
    ];
    let named = flumen_test(
        &guest("regex_extractor"),
        &["--config", r"pattern=level=(?P<level>\w+) id=(?P<id>\d+)"],
        &events,
    );
    assert!(named.ok, "{}", named.stderr);
    assert_eq!(named.verdicts(), ["replace", "keep", "keep"]);
    assert_eq!(named.header(0, "level").as_deref(), Some("warn"));
    assert_eq!(named.header(0, "id").as_deref(), Some("42"));
    assert_eq!(named.event(0)["value"], "level=warn id=42 disk almost full");

    let positional = flumen_test(
        &guest("regex_extractor"),
        &[
            "--config",
            r"pattern=level=(\w+) id=(\d+)",
            "--config",
            "headers=severity, ",
        ],
        &events,
    );
    assert!(positional.ok, "{}", positional.stderr);
    assert_eq!(positional.header(0, "severity").as_deref(), Some("warn"));
    let headers = positional.event(0)["headers"]
        .as_array()
        .expect("headers")
        .len();
    assert_eq!(headers, 1, "an empty name skips its group");

    let mismatch = flumen_test(
        &guest("regex_extractor"),
        &["--config", r"pattern=(\w+)", "--config", "headers=a,b"],
        &events,
    );
    assert!(!mismatch.ok);
    assert!(
        mismatch
            .stderr
            .contains("names 2 headers but `pattern` has 1 capture groups"),
        "{}",
        mismatch.stderr
    );
    let nothing = flumen_test(
        &guest("regex_extractor"),
        &["--config", "pattern=x"],
        &events,
    );
    assert!(
        nothing.stderr.contains("nothing to extract"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn search_replace_rewrites_every_match_in_the_value() {
    let events = [
        ev("card 1234-5678-9012-3456 and 1111-2222-3333-4444"),
        ev("nothing to hide"),
        json!({ "value": null, "key": "k" }),
    ];
    let r = flumen_test(
        &guest("search_replace"),
        &[
            "--config",
            r"search_pattern=\d{4}-\d{4}-\d{4}-(\d{4})",
            "--config",
            "replace_string=****-$1",
        ],
        &events,
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["replace", "keep", "keep"]);
    assert_eq!(r.event(0)["value"], "card ****-3456 and ****-4444");
    assert_eq!(r.event(2)["value"], Value::Null);
    assert_eq!(r.event(2)["key"], "k");

    let bad = flumen_test(
        &guest("search_replace"),
        &["--config", "search_pattern=("],
        &events,
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("`search_pattern` is not a valid regex"),
        "{}",
        bad.stderr
    );
}

#[test]
fn uuid_header_gives_each_event_its_own_uuid() {
    let mut events: Vec<Value> = (0..200).map(|i| ev(&format!("e{i}"))).collect();
    events.push(json!({ "value": "x", "headers": [{ "name": "id", "value": "keep-me" }] }));
    let r = flumen_test(
        &guest("uuid_header"),
        &["--config", "prefix=flumen-"],
        &events,
    );
    assert!(r.ok, "{}", r.stderr);
    let ids: Vec<String> = (0..200).map(|i| r.header(i, "id").expect("id")).collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 200, "UUIDs repeat");
    for id in &ids {
        let uuid = id.strip_prefix("flumen-").expect("prefix");
        assert_eq!(uuid.len(), 36, "{uuid}");
        assert_eq!(&uuid[14..15], "4", "not a version 4 UUID: {uuid}");
    }
    assert_eq!(r.header(200, "id").as_deref(), Some("keep-me"));
}

#[test]
fn flumen_test_runs_a_sink_with_its_grants_and_reports_each_verdict() {
    let work = tempfile::tempdir().expect("tempdir");
    let events = [
        ev("one"),
        ev("please reject this"),
        json!({ "value_base64": "/w==", "offset": 9 }),
    ];
    let grant = format!("{}=/out", work.path().display());
    let r = flumen_test(
        &guest("reject_sink"),
        &[
            "--config",
            "path=/out/o-%{partition}.jsonl",
            "--config",
            "reject=reject",
            "--dir",
            &grant,
            "--partition",
            "3",
        ],
        &events,
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["delivered", "reject", "delivered"]);
    assert!(r.lines[1]["reason"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        r.stderr
            .contains("sink `reject_sink`: 3 events: delivered 2, reject 1"),
        "{}",
        r.stderr
    );
    let written = std::fs::read_to_string(work.path().join("o-3.jsonl")).expect("sink output");
    let offsets: Vec<i64> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["offset"]
                .as_i64()
                .expect("offset")
        })
        .collect();
    assert_eq!(offsets, [0, 9]);
}

#[test]
fn an_answer_that_does_not_fit_the_batch_fails_the_call_by_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let grant = format!("{}=/out", work.path().display());
    let r = flumen_test(
        &guest("reject_sink"),
        &[
            "--config",
            "path=/out/o-%{partition}.jsonl",
            "--config",
            "miscount=odd",
            "--dir",
            &grant,
        ],
        &[ev("one"), ev("odd one")],
    );
    assert!(!r.ok, "a miscounted answer passed: {:?}", r.lines);
    assert!(r.verdicts().is_empty(), "{:?}", r.lines);
    assert!(
        r.stderr.contains(
            "component `reject_sink` broke the contract: a failure names event 2 in a \
             batch of 2"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn flumen_test_output_pipes_into_the_next_component() {
    let events = [ev("level=info a"), ev("level=debug b")];
    let tagged = flumen_test(
        &guest("static_header"),
        &["--config", "header=stage", "--config", "value=1"],
        &events,
    );
    let passed: Vec<Value> = tagged.lines.iter().map(|l| l["event"].clone()).collect();
    let filtered = flumen_test(
        &guest("filter"),
        &[
            "--config",
            "pattern=^1$",
            "--config",
            "field=header:stage",
            "--config",
            "mode=keep",
        ],
        &passed,
    );
    assert!(filtered.ok, "{}", filtered.stderr);
    assert_eq!(filtered.verdicts(), ["keep", "keep"]);
    assert_eq!(filtered.event(1)["topic"], "test");
}

#[test]
fn flumen_test_names_what_is_wrong() {
    // A bad events line: the line number and the field.
    let r = flumen_test(
        &guest("null_sink"),
        &[],
        &[ev("a"), json!({ "valeu": "b" })],
    );
    assert!(!r.ok);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("valeu"),
        "{}",
        r.stderr
    );
    // A config the component refuses, before any event is read.
    let r = flumen_test(&guest("filter"), &["--config", "patern=x"], &[ev("a")]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("unknown config key `patern`"),
        "{}",
        r.stderr
    );
    assert!(r.lines.is_empty());
    // Not a component.
    let work = tempfile::tempdir().expect("tempdir");
    let junk = work.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").expect("write");
    let r = flumen_test(&junk, &[], &[ev("a")]);
    assert!(!r.ok);
    assert!(r.stderr.contains("junk"), "{}", r.stderr);
    // A malformed flag.
    let r = flumen_test(&guest("filter"), &["--config", "pattern"], &[ev("a")]);
    assert!(
        r.stderr.contains("--config `pattern`: expected KEY=VALUE"),
        "{}",
        r.stderr
    );
}

#[test]
fn logger_sink_writes_each_event_into_the_host_log() {
    let events = [
        json!({ "value": "hello", "key": "k1", "timestamp": 7, "headers": [{ "name": "h", "value": "v" }] }),
        ev("a value longer than sixteen bytes"),
        json!({ "value_base64": "AP8K" }),
        json!({ "value": null }),
    ];
    let r = flumen_test(&guest("logger_sink"), &["--config", "level=warn"], &events);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["delivered"; 4]);
    for expected in [
        "offset=0 timestamp=7 key=k1 value=hello headers=[h=v]",
        "offset=1 value=a value longer t…(+17 bytes)",
        r"offset=2 value=\x00\xff\n",
        "offset=3 value=<tombstone>",
    ] {
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(expected))
            .unwrap_or_else(|| panic!("no log line with `{expected}`:\n{}", r.stderr));
        assert!(line.contains("WARN"), "not at the configured level: {line}");
    }
    let all = flumen_test(
        &guest("logger_sink"),
        &["--config", "max_bytes=0"],
        &events[1..2],
    );
    assert!(
        all.stderr
            .contains("value=a value longer than sixteen bytes"),
        "{}",
        all.stderr
    );
    let bad = flumen_test(&guest("logger_sink"), &["--config", "level=loud"], &events);
    assert!(
        bad.stderr
            .contains("`level` must be trace, debug, info, warn or error"),
        "{}",
        bad.stderr
    );
}

#[test]
fn kafka_sink_writes_only_granted_topics_and_only_acknowledged_records_are_delivered() {
    use rdkafka::message::{Headers, Message};
    let broker = Broker::mock();
    broker.create_topic("src-copy", 2);
    broker.create_topic("other", 1);
    let bootstrap = broker.bootstrap();
    let big = "x".repeat(2_000_000);
    let events = [
        json!({ "value": "a", "key": "k", "timestamp": 1_700_000_000_000i64,
                "headers": [{ "name": "h", "value": "v" }] }),
        json!({ "value": null, "key": "gone" }),
        json!({ "value": big }),
    ];
    // `%{topic}` is the source topic (`--topic src`); `same` keeps the
    // source partition (`--partition 1`).
    let common = [
        "--kafka",
        &bootstrap,
        "--topic",
        "src",
        "--partition",
        "1",
        "--config",
        "topic=%{topic}-copy",
        "--config",
        "partition=same",
    ];
    let granted = [&common[..], &["--kafka-produce", "src-copy"]].concat();
    let r = flumen_test(&guest("kafka_sink"), &granted, &events);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["delivered", "delivered", "reject"]);
    let reason = r.lines[2]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("too large"), "{reason}");

    let got = read_topic(
        &bootstrap,
        "src-copy",
        2,
        2,
        std::time::Duration::from_secs(20),
    );
    assert_eq!(
        got.len(),
        2,
        "exactly the delivered records are on the topic"
    );
    let (a, tombstone) = (&got[0], &got[1]);
    assert_eq!((a.partition(), tombstone.partition()), (1, 1));
    assert_eq!(a.key(), Some(&b"k"[..]));
    assert_eq!(a.payload(), Some(&b"a"[..]));
    assert_eq!(a.timestamp().to_millis(), Some(1_700_000_000_000));
    let h = a.headers().expect("headers").get(0);
    assert_eq!((h.key, h.value), ("h", Some(&b"v"[..])));
    assert_eq!(tombstone.key(), Some(&b"gone"[..]));
    assert_eq!(tombstone.payload(), None, "a tombstone stays a tombstone");

    // Not granted: every record refused before anything is sent, even to
    // a topic that exists.
    let other = [&common[..], &["--config", "topic=other"]].concat();
    let denied = flumen_test(&guest("kafka_sink"), &other, &events[..1]);
    assert!(denied.ok, "{}", denied.stderr);
    assert_eq!(denied.verdicts(), ["reject"]);
    let reason = denied.lines[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`other` is not granted"), "{reason}");
    let leaked = read_topic(&bootstrap, "other", 1, 1, std::time::Duration::from_secs(2));
    assert!(leaked.is_empty(), "a record reached a topic not granted");

    let bad = flumen_test(
        &guest("kafka_sink"),
        &["--config", "partition=random"],
        &events,
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("missing required config key `topic`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_component_built_against_contract_0_2_is_refused_with_how_to_rebuild_it() {
    let component = guest("compat_sink");
    let bytes = std::fs::read(&component).expect("read component");
    let names_old = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    // Otherwise this would test nothing: the guest must really be built
    // against the older release.
    assert!(names_old("flumen:pipeline/delivery@0.2.0") && names_old("flumen:pipeline/log@0.2.0"));
    let r = flumen_test(&component, &[], &[ev("a"), ev("b")]);
    assert!(!r.ok, "{:?}", r.lines);
    for want in [
        "was built against contract flumen:pipeline@0.2.0",
        "speaks flumen:pipeline@0.4.x",
        "rebuild it against this release's wit/",
        "guests/helpers/",
    ] {
        assert!(
            r.stderr.contains(want),
            "missing {want:?} in:\n{}",
            r.stderr
        );
    }
    // Refused before it ran: no verdict, and not the linker's complaint.
    assert!(r.verdicts().is_empty(), "{:?}", r.lines);
    assert!(!r.stderr.contains("import"), "{}", r.stderr);
}

#[test]
fn a_component_built_against_contract_0_4_0_runs_on_this_host() {
    // 0.4.1 added the `schemas` and `rejection` imports; a guest built
    // before them must load and run unchanged.
    let component = guest("contract_040");
    let bytes = std::fs::read(&component).expect("read component");
    let names = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(
        names("flumen:pipeline/interception@0.4.0") && names("flumen:pipeline/log@0.4.0"),
        "the fixture must really be built against 0.4.0"
    );
    assert!(!names("@0.4.1"), "the fixture names 0.4.1");
    let r = flumen_test(&component, &[], &[ev("a"), ev("b")]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["replace", "replace"]);
    for line in &r.lines {
        let event = line["event"].to_string();
        assert!(
            event.contains("contract") && event.contains("0.4.0"),
            "{event}"
        );
    }
}

/// The lines of every file under `dir`, by path relative to it.
fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path).expect("read");
                let rel = path.strip_prefix(dir).expect("under").display().to_string();
                out.insert(rel, text.lines().map(str::to_owned).collect());
            }
        }
    }
    out
}

fn roll(
    config: &[&str],
    events: &[Value],
    batch: &str,
) -> (Run, std::collections::BTreeMap<String, Vec<String>>) {
    let work = tempfile::tempdir().expect("tempdir");
    let grant = format!("{}=/out", work.path().display());
    let mut args = vec!["--dir", &grant, "--partition", "1", "--batch", batch];
    for c in config {
        args.push("--config");
        args.push(c);
    }
    let r = flumen_test(&guest("file_roll_sink"), &args, events);
    let files = files_under(work.path());
    (r, files)
}

#[test]
fn file_roll_sink_rolls_by_count_and_size_and_names_files_by_date() {
    let events: Vec<Value> = (0..5).map(|i| ev(&format!("event-{i}"))).collect();
    let (r, files) = roll(
        &[
            "path=/out/r-%{partition}-%{seq}.log",
            "format=value",
            "roll_events=2",
        ],
        &events,
        "3",
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.verdicts(), ["delivered"; 5]);
    let expected: std::collections::BTreeMap<String, Vec<String>> = [
        ("r-1-0.log", vec!["event-0", "event-1"]),
        ("r-1-1.log", vec!["event-2", "event-3"]),
        ("r-1-2.log", vec!["event-4"]),
    ]
    .into_iter()
    .map(|(f, l)| (f.to_owned(), l.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(files, expected);

    // 8-byte lines, at most 20 bytes a file: two lines each.
    let (r, files) = roll(
        &[
            "path=/out/s-%{partition}-%{seq}.log",
            "format=value",
            "roll_bytes=20",
        ],
        &events,
        "5",
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.values().all(|l| l.len() <= 2), "{files:?}");

    // Date escapes from each event's timestamp (UTC), JSON lines by default.
    let dated = [
        json!({ "value": "a", "timestamp": 1_700_000_000_000i64 }), // 2023-11-14 22:13:20
        json!({ "value": "b", "timestamp": 1_700_000_100_000i64 }), // same hour
        json!({ "value": "c", "timestamp": 1_709_251_199_000i64 }), // 2024-02-29 23:59:59
    ];
    let (r, files) = roll(
        &["path=/out/%Y/%m-%d/%H-%{topic}-%{partition}.jsonl"],
        &dated,
        "10",
    );
    assert!(r.ok, "{}", r.stderr);
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(
        names,
        ["2023/11-14/22-test-1.jsonl", "2024/02-29/23-test-1.jsonl"]
    );
    let first = &files["2023/11-14/22-test-1.jsonl"];
    assert_eq!(first.len(), 2);
    let line: Value = serde_json::from_str(&first[1]).expect("json line");
    assert_eq!(line["value"], "b");
    assert_eq!(line["partition"], 1);

    let (bad, _) = roll(&["path=/out/x.log"], &dated, "10");
    assert!(
        !bad.ok && bad.stderr.contains("must contain `%{partition}`"),
        "{}",
        bad.stderr
    );
    let (bad, _) = roll(
        &["path=/out/x-%{partition}", "roll_events=many"],
        &dated,
        "10",
    );
    assert!(
        bad.stderr
            .contains("`roll_events` must be a non-negative integer"),
        "{}",
        bad.stderr
    );
}

#[test]
fn file_sinks_refuse_a_directory_that_is_not_granted() {
    let c = repo().join("guests/target/c/file_sink.wasm");
    let js = repo().join("guests/target/js/file_sink.wasm");
    for component in [guest("file_sink"), c, js] {
        let r = flumen_test(
            &component,
            &["--config", "path=/nope/x-%{partition}.jsonl"],
            &[ev("a")],
        );
        assert!(!r.ok, "{}", component.display());
        assert!(
            r.stderr
                .contains("directory `/nope` of `path` is not visible to this component"),
            "{}: {}",
            component.display(),
            r.stderr
        );
    }
}

/// Events with every part a record can have or lack: keys in and out of
/// UTF-8, a tombstone, an empty value, repeated and empty headers, a header
/// value that is not UTF-8, timestamps given and not.
fn every_kind_of_event() -> Vec<Value> {
    vec![
        json!({ "offset": 4, "timestamp": 1_700_000_000_000_i64, "key": "k1", "value": "plain",
                "headers": [{ "name": "level", "value": "debug" }, { "name": "level", "value": "" }] }),
        json!({ "offset": 5, "key_base64": "/wA=", "value_base64": "AP8=",
                "headers": [{ "name": "bin", "value_base64": "gA==" }] }),
        json!({ "offset": 6, "timestamp": -1, "key": "gone" }),
        json!({ "offset": 7, "value": "", "headers": [{ "name": "level", "value": "info" }] }),
        json!({ "offset": 9, "key": "", "value": "level=debug in the value" }),
    ]
}

#[test]
fn every_language_s_helper_reads_every_part_of_every_event_alike() {
    // The same JSON-lines file sink in Rust (flumen-guest-common), C
    // (flumen_guest.h), Python (flumen_guest.py) and JavaScript
    // (flumen-guest.js): each reads the batch's columns through its
    // language's helper, and the same events must come out as the same
    // lines, byte for byte.
    let events = every_kind_of_event();
    let mut outputs = Vec::new();
    for component in [
        guest("file_sink"),
        repo().join("guests/target/c/file_sink.wasm"),
        repo().join("guests/target/python/file_sink.wasm"),
        repo().join("guests/target/js/file_sink.wasm"),
    ] {
        let work = tempfile::tempdir().expect("tempdir");
        let grant = format!("{}=/out", work.path().display());
        let r = flumen_test(
            &component,
            &[
                "--config",
                "path=/out/o-%{partition}.jsonl",
                "--dir",
                &grant,
            ],
            &events,
        );
        assert!(r.ok, "{}: {}", component.display(), r.stderr);
        assert_eq!(r.verdicts(), ["delivered"; 5]);
        let text = std::fs::read_to_string(work.path().join("o-0.jsonl")).expect("sink output");
        outputs.push((component, text));
    }
    for (component, text) in &outputs[1..] {
        assert_eq!(
            text,
            &outputs[0].1,
            "{} differs from Rust",
            component.display()
        );
    }
    let lines: Vec<Value> = outputs[0]
        .1
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 5, "{}", outputs[0].1);
    assert_eq!(lines[0]["timestamp"], 1_700_000_000_000_i64);
    assert_eq!(
        (&lines[0]["key"], &lines[0]["value"]),
        (&json!("k1"), &json!("plain"))
    );
    assert_eq!(
        lines[0]["headers"],
        json!([{ "name": "level", "value": "debug" }, { "name": "level", "value": "" }])
    );
    assert_eq!(
        (&lines[1]["key_base64"], &lines[1]["value_base64"]),
        (&json!("/wA="), &json!("AP8="))
    );
    assert_eq!(lines[1]["headers"][0]["value_base64"], "gA==");
    assert_eq!(lines[1]["timestamp"], Value::Null);
    assert_eq!(
        (&lines[2]["value"], &lines[2]["timestamp"]),
        (&Value::Null, &json!(-1))
    );
    assert_eq!(
        (&lines[3]["value"], &lines[3]["key"]),
        (&json!(""), &Value::Null)
    );
    assert_eq!(
        (&lines[4]["key"], &lines[4]["offset"]),
        (&json!(""), &json!(9))
    );
}

#[test]
fn the_filter_matches_values_keys_and_headers() {
    let events = every_kind_of_event();
    let filter = |args: &[&str]| {
        let r = flumen_test(&guest("filter"), args, &events);
        assert!(r.ok, "{}", r.stderr);
        r.verdicts()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        filter(&[
            "--config",
            "pattern=debug",
            "--config",
            "field=header:level"
        ]),
        ["drop", "keep", "keep", "keep", "keep"]
    );
    assert_eq!(
        filter(&["--config", "pattern=^(k1|gone)$", "--config", "field=key"]),
        ["drop", "keep", "drop", "keep", "keep"]
    );
    // The tombstone has no value to match, and an empty value matches `^$`.
    assert_eq!(
        filter(&["--config", "pattern=^$|debug", "--config", "mode=keep"]),
        ["drop", "drop", "drop", "keep", "keep"]
    );
}

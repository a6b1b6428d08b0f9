//! The admin endpoint's `/metrics`, `/ready` and `/health` on a running
//! pipeline (mock cluster, the filter and a file sink): the counters match
//! what was produced, dropped, delivered and committed, the lag falls to
//! zero, and `/ready` says whether the consumer has joined its group.

use crate::support::*;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const EVENTS: usize = 2000;
const PARTITIONS: i32 = 2;

/// `GET path` on the admin endpoint: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path)
}

fn wait_for(port: u16, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = get(port, "/metrics");
        if status == 200 && ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn metrics_count_what_the_pipeline_did() {
    let broker = Broker::mock();
    let work = Workdir::new();
    let topic = "metrics-events";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, topic, PARTITIONS, EVENTS, |_| false);
    let debug = produced.events.values().filter(|d| **d).count();
    let kept = EVENTS - debug;

    let admin = free_port();
    let config = work.config(
        &bootstrap,
        topic,
        "metrics-group",
        format!(
            "{}{}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            drop_debug(),
            file_sink("a", "file_sink", ", sync = false")
        ),
    );
    let mut flumen = Flumen::start(
        &[
            "run",
            "--config",
            &config.display().to_string(),
            "--progress",
            "1",
        ],
        &work.path("flumen.log"),
    );
    wait_committed(
        &mut flumen,
        &bootstrap,
        "metrics-group",
        topic,
        PARTITIONS,
        Duration::from_secs(60),
        |c| c == &produced.end,
    );

    let (status, body) = get(admin, "/ready");
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(admin, "/health").0, 200);

    // The lag needs librdkafka's statistics (every 5 s) and the committed
    // offsets the broker acknowledged.
    let text = wait_for(
        admin,
        "a lag of zero on every partition",
        Duration::from_secs(30),
        |t| {
            (0..PARTITIONS).all(|p| {
                let p = p.to_string();
                metric(t, "flumen_consumer_lag", &[("partition", &p)]) == Some(0.0)
            })
        },
    );
    let pipeline = ("pipeline", "e2e");
    let n = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![pipeline];
        all.extend_from_slice(labels);
        metric(&text, name, &all).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert_eq!(n("flumen_events_consumed_total", &[]), EVENTS as f64);
    // Components that never produce to Kafka add no series for it.
    assert!(
        !text.contains("flumen_kafka_produced_records_total{"),
        "{text}"
    );
    assert_eq!(n("flumen_events_dropped_total", &[]), debug as f64);
    assert_eq!(n("flumen_events_finalized_total", &[]), EVENTS as f64);
    assert_eq!(
        n("flumen_events_delivered_total", &[("sink", "a")]),
        kept as f64
    );
    assert_eq!(
        n(
            "flumen_guest_verdicts_total",
            &[("component", "drop-debug"), ("verdict", "drop")]
        ),
        debug as f64
    );
    assert_eq!(
        n(
            "flumen_guest_verdicts_total",
            &[("component", "drop-debug"), ("verdict", "keep")]
        ),
        kept as f64
    );
    assert_eq!(
        n(
            "flumen_guest_events_in_total",
            &[("component", "drop-debug")]
        ),
        EVENTS as f64
    );
    assert_eq!(
        n(
            "flumen_guest_events_out_total",
            &[("component", "drop-debug")]
        ),
        kept as f64
    );
    assert_eq!(
        n(
            "flumen_guest_verdicts_total",
            &[("component", "a"), ("verdict", "delivered")]
        ),
        kept as f64
    );
    assert!(n("flumen_guest_bytes_in_total", &[("component", "a")]) > kept as f64);
    let calls = n(
        "flumen_guest_calls_total",
        &[("component", "a"), ("outcome", "ok")],
    );
    assert!(calls >= 1.0);
    assert_eq!(
        n(
            "flumen_guest_calls_total",
            &[("component", "a"), ("outcome", "trap")]
        ),
        0.0
    );
    assert_eq!(
        n(
            "flumen_guest_call_duration_seconds_count",
            &[("component", "a")]
        ),
        calls
    );
    for (p, end) in &produced.end {
        let p = p.to_string();
        let labels = [("topic", topic), ("partition", p.as_str())];
        assert_eq!(n("flumen_committed_offset", &labels), *end as f64);
        assert_eq!(n("flumen_high_watermark", &labels), *end as f64);
    }
    assert_eq!(
        metric(&text, "flumen_reloads_total", &[("result", "applied")]),
        Some(0.0)
    );

    // `flumen top` reads the same endpoint.
    let top = std::process::Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args([
            "top",
            "--admin",
            &format!("127.0.0.1:{admin}"),
            "--interval",
            "0.3",
            "--once",
        ])
        .output()
        .expect("run flumen top");
    let frame = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{frame}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    assert!(frame.lines().any(|l| l.starts_with("e2e ")), "{frame}");
    assert!(
        frame.contains("drop-debug (e2e)") && frame.contains("a (e2e)"),
        "{frame}"
    );
    for (p, end) in &produced.end {
        let row = frame
            .lines()
            .find(|l| l.contains(topic) && l.split_whitespace().nth(2) == Some(&p.to_string()))
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{frame}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols[3..],
            [end.to_string(), end.to_string(), "0".to_owned()],
            "{row}"
        );
    }
    let log = flumen.log_text();
    assert!(
        log.lines().any(|l| l.contains("progress")
            && l.contains(&format!("consumed={EVENTS}"))
            && l.contains("lag=0")),
        "no progress line with every event consumed and no lag:\n{}",
        tail(&log, 20)
    );
    assert!(flumen.terminate().success());
    let gone = std::process::Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["top", "--admin", &format!("127.0.0.1:{admin}"), "--once"])
        .output()
        .expect("run flumen top");
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot read http://127.0.0.1:"));
}

#[test]
fn ready_waits_for_the_group() {
    // No broker at this address: the pipeline starts but never joins.
    let work = Workdir::new();
    let admin = free_port();
    let config = work.config(
        "127.0.0.1:1",
        "nowhere",
        "g",
        format!(
            "{}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            file_sink("a", "file_sink", "")
        ),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(
            flumen.alive() && Instant::now() < deadline,
            "{}",
            flumen.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(admin, "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"pipelines_not_consuming\":[\"e2e\"]"),
        "{body}"
    );
    assert_eq!(get(admin, "/health").0, 200);
    let (status, text) = get(admin, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &text,
            "flumen_events_consumed_total",
            &[("pipeline", "e2e")]
        ),
        Some(0.0)
    );
    assert!(
        text.trim_end().ends_with("# EOF"),
        "not OpenMetrics:\n{text}"
    );
    assert_eq!(get(admin, "/metric").0, 404);
    assert!(flumen.terminate().success());
}

/// A reload that compiles a large component (the Python file sink, 18 MB,
/// changed on disk so that the compile cache cannot serve it) takes many
/// seconds; meanwhile `/health`, `/ready` and `/metrics` keep answering at
/// once, one more `POST /reload` waits its turn, and a third is told to
/// come back (429) instead of piling up.
#[test]
fn the_admin_endpoint_answers_during_a_slow_reload() {
    let broker = Broker::mock();
    broker.create_topic("t", 1);
    produce(&broker.bootstrap(), "t", 1, 100, |_| false);
    let work = Workdir::new();
    let admin = free_port();
    let component = work.path("py_sink.wasm");
    std::fs::copy(
        repo().join("guests/target/python/file_sink.wasm"),
        &component,
    )
    .expect("copy the Python file sink (guests/build.sh python)");
    let config = work.config(
        &broker.bootstrap(),
        "t",
        "slow-reload",
        format!(
            "{}limits = {{ memory_mb = 256, call_timeout_ms = 30000 }}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n[reload]\nwatch = false\n",
            file_sink_at("py", &component, "")
        ),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while get_or_refused(admin, "/ready").0 != 200 {
        assert!(
            flumen.alive() && Instant::now() < deadline,
            "{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A custom section at the end: the same guest, a file no earlier run
    // wrote, so that the compile cache cannot serve it.
    let mut bytes = std::fs::read(&component).expect("read component");
    let nonce = format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    );
    let name_len = u8::try_from(nonce.len()).expect("short name");
    bytes.extend_from_slice(&[0, name_len + 1, name_len]);
    bytes.extend_from_slice(nonce.as_bytes());
    std::fs::write(&component, bytes).expect("write component");

    let started = Instant::now();
    let first = std::thread::spawn(move || http(admin, "POST", "/reload"));
    std::thread::sleep(Duration::from_secs(1));
    let second = std::thread::spawn(move || http(admin, "POST", "/reload"));
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = http(admin, "POST", "/reload");
    assert_eq!(status, 429, "{body}");
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while !first.is_finished() {
        for path in ["/health", "/ready", "/metrics"] {
            let asked = Instant::now();
            let (status, body) = get(admin, path);
            slowest = slowest.max(asked.elapsed());
            probes += 1;
            assert_eq!(status, 200, "{path} during a reload: {body}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let reload_took = started.elapsed();
    let (status, body) = first.join().expect("first reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"swapped\""), "{body}");
    let (status, body) = second.join().expect("second reload");
    assert_eq!(status, 200, "{body}");
    println!(
        "slow reload: {reload_took:.1?}; {probes} probes of /health, /ready and /metrics \
         meanwhile, the slowest answered in {slowest:.1?}"
    );
    assert!(
        reload_took > Duration::from_secs(3),
        "the reload was not slow ({reload_took:.1?}); the test shows nothing"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest probe {slowest:?}"
    );
    assert!(flumen.terminate().success());
}

/// [`get`], or status 0 while nothing listens yet.
fn get_or_refused(port: u16, path: &str) -> (u16, String) {
    if TcpStream::connect(("127.0.0.1", port)).is_err() {
        return (0, String::new());
    }
    get(port, path)
}

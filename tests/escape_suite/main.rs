//! The escape suite: a hostile guest (guests/fixtures/escape) tries, one way per
//! row, to reach what it was not granted — host files, the network, the
//! environment — or to exhaust memory, CPU or stack. Every attempt must be
//! denied inside the guest or stopped by the host, with nothing changed on
//! the host; a few control rows show that what *is* granted works, so the
//! suite cannot pass by denying everything.
//!
//! The guest runs in flumen's own runtime (the library the binary uses), so
//! the suite sees each verdict and trap directly. It prints a table
//! (attempt, outcome) and fails if any row is not as expected.
//!
//! Run: `cargo test --test escape_suite`.

#[path = "../support/mod.rs"]
mod support;

mod flooding;

use flumen::config::Config;
use flumen::contract::{Event, SinkVerdict, Source};
use flumen::runtime::{GuestTag, Runtime, SinkComponent, SinkGuest, Slot};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a row must come to.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// The guest saw an error.
    Denied,
    /// The host stopped the call (a trap) with a message containing this.
    Stopped(&'static str),
    /// A control: the granted access works.
    Allowed,
    /// The call ended by its deadline, stopped by the host or with an
    /// error the guest saw first (which one wins is a matter of
    /// milliseconds).
    Ended,
}

struct Row {
    attempt: String,
    expect: Expect,
    outcome: String,
    ok: bool,
}

/// Log lines written by flumen's tracing during the suite.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        self.text_since(0)
    }

    /// What was written from byte `start` on.
    fn text_since(&self, start: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[start..]).into_owned()
    }

    /// Bytes written so far.
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn event() -> Event {
    Event {
        offset: 0,
        timestamp: None,
        key: None,
        value: Some(b"x".to_vec()),
        headers: Vec::new(),
    }
}

/// Loads the escape guest with `extra` TOML (config, grants, limits) and
/// calls it once.
fn run_attempt(runtime: &Runtime, dir: &Path, attempt: &str, target: &str, extra: &str) -> String {
    let toml = format!(
        r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        [[pipeline]]
        name = "escape"
        topics = ["t"]
        group_id = "g"
        [[pipeline.sink]]
        name = "escape"
        component = "{wasm}"
        {extra}
        [pipeline.sink.config]
        attempt = "{attempt}"
        target = "{target}"
        "#,
        wasm = support::guest("escape").display(),
    );
    let config = match Config::parse(&toml, dir) {
        Ok(c) => c,
        Err(e) => return format!("config refused: {e}"),
    };
    let cfg = &config.pipelines[0].sinks[0];
    let loaded: SinkComponent = match runtime.load(cfg) {
        Ok(l) => l,
        Err(e) => return format!("load failed: {e}"),
    };
    let mut guest = SinkGuest::new(
        Slot::new(loaded),
        GuestTag {
            component: "escape".into(),
            pipeline: "escape".into(),
            partition: None,
        },
    );
    match guest.deliver(
        &Source {
            topic: "t".into(),
            partition: 0,
        },
        &flumen::contract::Batch::from_events(&[event()]).expect("one event"),
    ) {
        Ok(v) => match v.into_iter().next() {
            Some(SinkVerdict::Reject(why)) => why,
            other => format!("unexpected verdict {other:?}"),
        },
        Err(e) => format!("stopped: {e}"),
    }
}

fn classify(outcome: &str, expect: Expect) -> bool {
    match expect {
        Expect::Denied => outcome.starts_with("denied: "),
        Expect::Allowed => outcome.starts_with("ESCAPED: "),
        Expect::Stopped(what) => outcome.starts_with("stopped: ") && outcome.contains(what),
        Expect::Ended => outcome.starts_with("stopped: ") || outcome.starts_with("denied: "),
    }
}

/// A one-line, table-safe rendering of an outcome: for a trap, its cause
/// (the last line of the error chain) rather than the backtrace.
fn cell(outcome: &str) -> String {
    let line = if outcome.starts_with("stopped: ") {
        let cause = outcome
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        // Drop the frame (`3: 0x6aa8 - <unknown>!<wasm function 140>: `).
        let cause = cause.rsplit_once(">: ").map_or(cause, |(_, c)| c);
        let cause = cause.strip_prefix("stopped: ").unwrap_or(cause);
        format!("stopped: {}", cause.trim())
    } else if let Some(got) = outcome.strip_prefix("ESCAPED: ") {
        format!("allowed: {got}")
    } else {
        outcome.lines().next().unwrap_or("").to_owned()
    };
    let short: String = line.chars().take(160).collect();
    short.replace('|', "\\|")
}

fn main() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let data = root.join("data");
    let ro = root.join("ro");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    let secret = root.join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::write(data.join("ok.txt"), "granted").unwrap();
    std::os::unix::fs::symlink(&secret, data.join("link")).unwrap();
    std::os::unix::fs::symlink(root, data.join("up")).unwrap();
    std::env::set_var("FLUMEN_ESCAPE_SECRET", "s3cret");

    // A TCP listener and an HTTP server on loopback, counting what reaches
    // them: a denied attempt must not get there at all.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    tcp.set_nonblocking(true).unwrap();
    let http = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let http_port = http.server_addr().to_ip().unwrap().port();
    let http_hits = Arc::new(AtomicUsize::new(0));
    let hits = http_hits.clone();
    std::thread::spawn(move || {
        for r in http.incoming_requests() {
            hits.fetch_add(1, Ordering::SeqCst);
            let _ = r.respond(tiny_http::Response::from_string("ok"));
        }
    });

    // A listener nothing accepts from: the kernel completes connections to
    // it, and no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let silent_url = format!("http://127.0.0.1:{silent_port}/");
    let allow_silent = format!(
        r#"http_allow = ["127.0.0.1:{silent_port}"]
        limits = {{ call_timeout_ms = 300 }}"#
    );

    let plain = Runtime::new(false).expect("runtime");
    let fueled = Runtime::new(true).expect("runtime with fuel");
    let grant_data = r#"dirs = [{ host = "data", guest = "/data" }]"#;
    let grant_ro = r#"dirs = [{ host = "ro", guest = "/ro", read_only = true }]"#;
    let secret_abs = secret.display().to_string();
    let url = format!("http://127.0.0.1:{http_port}/");
    let tcp_target = tcp_addr.to_string();
    let allow_other = r#"http_allow = ["example.test"]"#.to_string();
    let allow_port = format!(r#"http_allow = ["127.0.0.1:{}"]"#, http_port + 1);
    let allow_self = format!(r#"http_allow = ["127.0.0.1:{http_port}"]"#);

    #[rustfmt::skip]
    let cases: Vec<(&str, &Runtime, &str, &str, String, Expect)> = vec![
        ("read /etc/passwd (no grants)", &plain, "read", "/etc/passwd", String::new(), Expect::Denied),
        ("read the host path of a file outside the grant", &plain, "read", &secret_abs, grant_data.into(), Expect::Denied),
        ("read ../secret.txt from a granted dir", &plain, "read", "/data/../secret.txt", grant_data.into(), Expect::Denied),
        ("read through a symlink planted in a granted dir", &plain, "read", "/data/link", grant_data.into(), Expect::Denied),
        ("read through a symlink to the grant's parent", &plain, "read", "/data/up/secret.txt", grant_data.into(), Expect::Denied),
        ("list / (no grant)", &plain, "list", "/", grant_data.into(), Expect::Denied),
        ("write into a read-only grant", &plain, "write", "/ro/new.txt", grant_ro.into(), Expect::Denied),
        ("write outside any grant", &plain, "write", "/new.txt", grant_ro.into(), Expect::Denied),
        ("HTTP to a host not on the allow-list", &plain, "http", &url, allow_other.clone(), Expect::Denied),
        ("HTTP to an allowed host on another port", &plain, "http", &url, allow_port, Expect::Denied),
        ("HTTP with no allow-list", &plain, "http", &url, String::new(), Expect::Denied),
        ("raw TCP connect to a loopback listener", &plain, "tcp", &tcp_target, allow_self.clone(), Expect::Denied),
        ("UDP datagram to loopback", &plain, "udp", &tcp_target, String::new(), Expect::Denied),
        ("DNS lookup", &plain, "dns", "localhost", String::new(), Expect::Denied),
        ("read a host environment variable", &plain, "env", "FLUMEN_ESCAPE_SECRET", String::new(), Expect::Denied),
        ("read a variable granted under another name", &plain, "env", "FLUMEN_ESCAPE_SECRET", r#"env = { OTHER = "1" }"#.into(), Expect::Denied),
        ("allocate without bound (memory_mb = 32)", &plain, "memory", "", "limits = { memory_mb = 32 }".into(), Expect::Stopped("memory")),
        ("loop forever (call_timeout_ms = 200)", &plain, "cpu", "", "limits = { call_timeout_ms = 200 }".into(), Expect::Stopped("interrupt")),
        ("wait on an allowed host that never answers (call_timeout_ms = 300)", &plain, "http", &silent_url, allow_silent, Expect::Ended),
        ("loop forever (fuel = 50,000,000)", &fueled, "cpu", "", "limits = { fuel = 50000000 }".into(), Expect::Stopped("fuel")),
        ("recurse without bound (the shadow stack runs out of memory)", &plain, "stack", "", String::new(), Expect::Stopped("out of bounds")),
        ("control: read a file inside the grant", &plain, "read", "/data/ok.txt", grant_data.into(), Expect::Allowed),
        ("control: write into a read-write grant", &plain, "write", "/data/new.txt", grant_data.into(), Expect::Allowed),
        ("control: HTTP to an allowed host", &plain, "http", &url, allow_self, Expect::Allowed),
        ("control: read a granted variable", &plain, "env", "GRANTED", r#"env = { GRANTED = "yes" }"#.into(), Expect::Allowed),
        ("control: a host variable passed by name", &plain, "env", "FLUMEN_ESCAPE_SECRET", r#"env_from_host = ["FLUMEN_ESCAPE_SECRET"]"#.into(), Expect::Allowed),
    ];

    let mut rows = Vec::new();
    for (what, runtime, attempt, target, extra, expect) in cases {
        let hits_before = http_hits.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        let mut outcome = run_attempt(runtime, root, attempt, target, &extra);
        let mut ok = classify(&outcome, expect);
        // No call outlives its deadline by much, even one blocked in a
        // host call (a request whose answer never comes).
        let took = started.elapsed();
        if took > Duration::from_secs(3) {
            ok = false;
            outcome = format!("{outcome} (after {took:?}: past its deadline)");
        }
        // A denied request must not have reached the server at all.
        if expect == Expect::Denied && http_hits.load(Ordering::SeqCst) != hits_before {
            ok = false;
        }
        rows.push(Row {
            attempt: what.into(),
            expect,
            outcome,
            ok,
        });
    }

    // Nothing of the host changed, and nothing reached the raw listener.
    let mut host = vec![
        (
            "host secret unchanged",
            std::fs::read_to_string(&secret).ok().as_deref() == Some("host secret"),
        ),
        (
            "no file created in the read-only grant",
            !ro.join("new.txt").exists(),
        ),
        (
            "no file created outside the grants",
            !Path::new("/new.txt").exists(),
        ),
        (
            "no connection reached the TCP listener",
            tcp.accept().is_err(),
        ),
    ];
    // The host keeps working: the same runtime runs a guest afterwards.
    let after = run_attempt(&plain, root, "noop", "", "");
    host.push((
        "the runtime still runs guests afterwards",
        after == "denied: did nothing",
    ));
    // Guest stdout/stderr reach the host's log, tagged with the component,
    // and not the host's own stdout.
    let printed = run_attempt(&plain, root, "print", "hello-from-the-guest", "");
    std::thread::sleep(Duration::from_millis(100));
    let log = captured.text();
    let tagged = |stream: &str| {
        log.lines().any(|l| {
            l.contains(&format!("escape guest on {stream}: hello-from-the-guest"))
                && l.contains("component=escape")
                && l.contains(&format!("stream=\"{stream}\""))
        })
    };
    host.push((
        "guest stdout and stderr logged, tagged with the component",
        printed.starts_with("denied: printed") && tagged("stdout") && tagged("stderr"),
    ));
    host.push((
        "denied HTTP requests logged by the host",
        log.contains("guest HTTP request DENIED"),
    ));

    let mut flood = flooding::run(&captured, root);
    flood.push(flooding::reload_storm(&captured, root));

    println!();
    println!("| attempt | expected | outcome | pass |");
    println!("|---|---|---|---|");
    for r in &rows {
        let expected = match r.expect {
            Expect::Denied => "denied in the guest".to_string(),
            Expect::Stopped(w) => format!("stopped by the host ({w})"),
            Expect::Allowed => "allowed (granted)".to_string(),
            Expect::Ended => "ended by the call's deadline".to_string(),
        };
        println!(
            "| {} | {} | {} | {} |",
            r.attempt,
            expected,
            cell(&r.outcome),
            if r.ok { "yes" } else { "**NO**" }
        );
    }
    for (what, ok) in &host {
        println!(
            "| {what} | — | {} | {} |",
            if *ok { "holds" } else { "broken" },
            if *ok { "yes" } else { "**NO**" }
        );
    }
    flooding::print(&flood);
    println!();
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.attempt.as_str())
        .chain(host.iter().filter(|(_, ok)| !ok).map(|(w, _)| *w))
        .chain(flood.iter().filter(|r| !r.ok).map(|r| r.attack))
        .collect();
    if !failed.is_empty() {
        eprintln!("escape suite FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    eprintln!(
        "escape suite: {} attempts, all as expected",
        rows.len() + host.len() + flood.len()
    );
}

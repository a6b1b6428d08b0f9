//! The HTTP sink guest against a real HTTP server on loopback: with its host
//! granted (`http_allow`) every event arrives, once per delivery, as JSON
//! lines; without the grant no request leaves the sandbox and nothing is
//! committed.

use crate::support::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PARTITIONS: i32 = 4;
const EVENTS: usize = 3_000;

/// A loopback HTTP server that records the JSON lines POSTed to it and
/// answers 200.
struct Collector {
    port: u16,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    fn start() -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let port = server.server_addr().to_ip().expect("ip").port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (l, r) = (lines.clone(), requests.clone());
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                *r.lock().unwrap() += 1;
                let ok = req.method() == &tiny_http::Method::Post && req.url() == "/ingest";
                if ok {
                    let mut l = l.lock().unwrap();
                    for line in body.lines() {
                        l.push(serde_json::from_str(line).expect("a JSON line"));
                    }
                }
                let code = if ok { 200 } else { 404 };
                let _ = req.respond(tiny_http::Response::empty(code));
            }
        });
        Self {
            port,
            lines,
            requests,
        }
    }
}

fn http_sink(port: u16, allow: &str) -> String {
    format!(
        r#"
[[pipeline.sink]]
name = "http"
component = "{}"
config = {{ url = "http://127.0.0.1:{port}/ingest" }}
{allow}
"#,
        guest("http_sink").display()
    )
}

#[test]
fn posts_every_event_when_its_host_is_granted() {
    let broker = Broker::mock();
    let topic = "e2e-http";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, topic, PARTITIONS, EVENTS, |_| false);
    let server = Collector::start();
    let work = Workdir::new();
    let allow = format!(r#"http_allow = ["127.0.0.1:{}"]"#, server.port);
    let config = work.config(
        &bootstrap,
        topic,
        "http-group",
        http_sink(server.port, &allow),
    );
    run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        "http-group",
        topic,
        &produced.end,
        Duration::from_secs(60),
    );
    let lines = server.lines.lock().unwrap();
    let got: BTreeSet<(i32, i64)> = lines
        .iter()
        .map(|v| {
            (
                v["partition"].as_i64().unwrap() as i32,
                v["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(got, want, "every event POSTed");
    assert_eq!(lines.len(), EVENTS, "no event POSTed twice");
    // Batches, not one request per event.
    let requests = *server.requests.lock().unwrap();
    assert!(
        requests < EVENTS / 5,
        "{requests} requests for {EVENTS} events"
    );
}

#[test]
fn sends_nothing_and_commits_nothing_without_the_grant() {
    let broker = Broker::mock();
    let topic = "e2e-http-denied";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, topic, PARTITIONS, 200, |_| false);
    let server = Collector::start();
    let work = Workdir::new();
    // Granted a different port: the allow-list is checked per request.
    let allow = format!(r#"http_allow = ["127.0.0.1:{}"]"#, server.port + 1);
    let config = work.config(
        &bootstrap,
        topic,
        "http-denied",
        http_sink(server.port, &allow),
    );
    let log = work.path("flumen.log");
    let mut flumen = Flumen::run(&config, &log);
    // Long enough for every partition to try and retry several times.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !flumen.log_text().contains("partition BLOCKED") {
        assert!(
            std::time::Instant::now() < deadline,
            "never blocked:\n{}",
            flumen.log_text()
        );
        assert!(flumen.alive(), "flumen exited:\n{}", flumen.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = flumen.log_text();
    let status = flumen.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(*server.requests.lock().unwrap(), 0, "a request got through");
    assert!(
        text.contains("guest HTTP request DENIED"),
        "host did not log it:\n{text}"
    );
    assert!(
        text.contains("HTTP-request-denied"),
        "guest error not reported:\n{text}"
    );
    let committed = committed(&bootstrap, "http-denied", topic, PARTITIONS);
    assert!(
        committed.values().all(|&o| o <= 0),
        "committed past undelivered events: {committed:?}"
    );
}

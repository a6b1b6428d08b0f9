//! Slow destinations (issue 20): the HTTP sink against a loopback server
//! that answers each request after a delay and refuses some with 503. With
//! several calls in flight per partition the server sees more requests at
//! once than there are partitions; in `key` order no event reaches it before
//! an earlier one with its key; with sink-side batching the host gathers
//! the pipeline's small batches into few requests. Every event arrives and
//! the commits reach the end.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PARTITIONS: i32 = 4;
const EVENTS: usize = 4_000;

/// `(partition, offset, key, path)` of a line the server accepted.
type Line = (i32, i64, Option<String>, String);

/// A loopback HTTP server with many threads: each request waits `delay`,
/// every `fail_every`-th is answered 503 (and not recorded), the rest 200.
struct SlowServer {
    port: u16,
    /// `(partition, offset, key)` of every line accepted, in the order the
    /// requests were answered.
    lines: Arc<Mutex<Vec<Line>>>,
    requests: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl SlowServer {
    fn start(delay: Duration, fail_every: usize) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        for _ in 0..64 {
            let (server, lines, requests) = (server.clone(), lines.clone(), requests.clone());
            let (most, now) = (most_at_once.clone(), now.clone());
            std::thread::spawn(move || {
                while let Ok(mut req) = server.recv() {
                    let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                    let here = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(here, Ordering::SeqCst);
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let path = req.url().to_owned();
                    std::thread::sleep(delay);
                    let code = if fail_every > 0 && n % fail_every == 0 {
                        503
                    } else {
                        let mut l = lines.lock().unwrap();
                        for line in body.lines() {
                            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
                            l.push((
                                v["partition"].as_i64().unwrap() as i32,
                                v["offset"].as_i64().unwrap(),
                                v["key"].as_str().map(str::to_owned),
                                path.clone(),
                            ));
                        }
                        200
                    };
                    now.fetch_sub(1, Ordering::SeqCst);
                    let _ = req.respond(tiny_http::Response::empty(code));
                }
            });
        }
        Self {
            port,
            lines,
            requests,
            most_at_once,
        }
    }
}

/// Runs a pipeline of the HTTP sink with `delivery` settings over `EVENTS`
/// events in batches of `batch`, to the end; returns the server and what
/// was produced.
fn run(group: &str, server: &SlowServer, batch: usize, delivery: &str) -> Produced {
    let broker = Broker::mock();
    let topic = format!("e2e-{group}");
    broker.create_topic(&topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let produced = produce(&bootstrap, &topic, PARTITIONS, EVENTS, |_| false);
    let work = Workdir::new();
    let sink = format!(
        r#"
[[pipeline.sink]]
name = "http"
component = "{}"
config = {{ url = "http://127.0.0.1:{}/ingest" }}
http_allow = ["127.0.0.1:{}"]
retry = {{ attempts = 1000, initial_backoff_ms = 5, max_backoff_ms = 50 }}
{delivery}
"#,
        guest("http_sink").display(),
        server.port,
        server.port
    );
    let config = work.config(&bootstrap, &topic, group, sink);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace("max_events = 500", &format!("max_events = {batch}"));
    std::fs::write(&config, text).expect("config");
    run_until_committed(
        &config,
        &work.path("flumen.log"),
        &bootstrap,
        group,
        &topic,
        &produced.end,
        Duration::from_secs(120),
    );
    produced
}

fn distinct(server: &SlowServer) -> BTreeSet<(i32, i64)> {
    let lines = server.lines.lock().unwrap();
    lines.iter().map(|(p, o, _, _)| (*p, *o)).collect()
}

#[test]
fn several_calls_in_flight_keep_each_keys_order() {
    let server = SlowServer::start(Duration::from_millis(20), 10);
    let produced = run(
        "slow-key",
        &server,
        25,
        "max_in_flight = 8\nordering = \"key\"",
    );
    let want: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(distinct(&server), want, "every event POSTed");
    let most = server.most_at_once.load(Ordering::SeqCst);
    assert!(
        most > PARTITIONS as usize,
        "at most {most} requests at once: no partition had two calls in flight"
    );
    // Per partition and key, the first time each event arrived: never
    // after a later event of its key.
    let lines = server.lines.lock().unwrap();
    let mut seen = BTreeSet::new();
    let mut furthest: BTreeMap<(i32, String), i64> = BTreeMap::new();
    let mut overtaken = Vec::new();
    for (p, o, key, _) in lines.iter() {
        let Some(key) = key else { continue };
        if !seen.insert((*p, *o)) {
            continue;
        }
        let f = furthest.entry((*p, key.clone())).or_insert(*o);
        if *o < *f {
            overtaken.push((*p, *o, key.clone()));
        }
        *f = (*f).max(*o);
    }
    assert!(overtaken.is_empty(), "overtaken: {overtaken:?}");
}

#[test]
fn sink_side_batching_gathers_small_batches_into_few_requests() {
    let server = SlowServer::start(Duration::from_millis(20), 0);
    let produced = run(
        "slow-gather",
        &server,
        10,
        "max_in_flight = 4\nordering = \"unordered\"\nbatch = { max_events = 250, max_wait_ms = 100 }",
    );
    let want: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(distinct(&server), want, "every event POSTed");
    assert_eq!(server.lines.lock().unwrap().len(), EVENTS, "none twice");
    // 1000 events per partition in calls of up to 250: a handful each,
    // where the pipeline's batches of 10 would have made 100.
    let requests = server.requests.load(Ordering::SeqCst);
    assert!(
        requests <= 4 * PARTITIONS as usize * 2,
        "{requests} requests for {EVENTS} events"
    );
}

#[test]
fn a_reload_reaches_every_instance_and_loses_nothing() {
    let server = SlowServer::start(Duration::from_millis(100), 0);
    let broker = Broker::mock();
    let topic = "e2e-slow-reload";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let events = 8_000;
    let produced = produce(&bootstrap, topic, PARTITIONS, events, |_| false);
    let work = Workdir::new();
    let sink = |path: &str| {
        format!(
            r#"
[[pipeline.sink]]
name = "http"
component = "{}"
config = {{ url = "http://127.0.0.1:{port}{path}" }}
http_allow = ["127.0.0.1:{port}"]
max_in_flight = 4
ordering = "unordered"
"#,
            guest("http_sink").display(),
            port = server.port
        )
    };
    let write = |path: &str| {
        let config = work.config(&bootstrap, topic, "slow-reload", sink(path));
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, text.replace("max_events = 500", "max_events = 10"))
            .expect("config");
        config
    };
    let config = write("/v1");
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.requests.load(Ordering::SeqCst) < 20 {
        assert!(std::time::Instant::now() < deadline, "no requests");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The sink's config changes: a new version, which every instance of
    // every partition takes up between its calls.
    write("/v2");
    wait_committed(
        &mut flumen,
        &bootstrap,
        "slow-reload",
        topic,
        PARTITIONS,
        Duration::from_secs(120),
        |c| c == &produced.end,
    );
    let log = flumen.log_text();
    assert!(flumen.terminate().success());
    let want: BTreeSet<(i32, i64)> = produced.events.keys().copied().collect();
    assert_eq!(distinct(&server), want, "every event POSTed");
    let lines = server.lines.lock().unwrap();
    let by_path = |p: &str| lines.iter().filter(|l| l.3 == p).count();
    assert!(
        by_path("/v1") > 0 && by_path("/v2") > 0,
        "both versions served"
    );
    assert_eq!(by_path("/v1") + by_path("/v2"), lines.len());
    // Once a partition's instance took up the new version it never went
    // back, so the last requests of every partition went to /v2.
    for p in 0..PARTITIONS {
        let last = lines.iter().rev().find(|l| l.0 == p).expect("lines");
        assert_eq!(last.3, "/v2", "partition {p} ended on the old version");
    }
    assert!(
        log.contains("component switched to a new version"),
        "no switch logged:\n{log}"
    );
}

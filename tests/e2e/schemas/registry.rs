//! The registry client: its grant, an outage mid-run, TLS with a private CA
//! and basic auth, the cache (one request per schema), and `check
//! --connect` and `flumen test` reaching it.

use super::*;
use base64::Engine as _;
use rdkafka::Message;

#[test]
fn a_component_without_the_grant_is_refused() {
    let s = Setup::new(&["sr-ungranted"]);
    s.produce(Typed::new("sr-ungranted", "avro", 4));
    let flumen = s.start(&s.config(&["sr-ungranted"], false), &[]);
    let letters = s.dead_letters(4);
    let log = flumen.log_text();
    flumen.terminate();
    assert_eq!(letters.len(), 4, "log:\n{}", tail(&log, 30));
    let reason = header(&letters[0], "flumen.error");
    assert!(
        reason.contains("not granted the schema registry")
            && reason.contains("schema_registry = true"),
        "{reason}"
    );
    let requests = s.registry.requests();
    assert!(
        requests.iter().all(|r| !r.contains("/schemas/")),
        "an ungranted component reached the registry"
    );
}

#[test]
fn a_registry_outage_mid_run_holds_events_back_and_gives_none_up() {
    let mut s = Setup::new(&["sr-outage", "sr-outage-later", "sr-outage-scratch"]);
    s.produce(Typed::new("sr-outage", "avro", 100));
    let first = s.expected("sr-outage", "avro", 100);
    let mut flumen = s.start(&s.config(&["sr-outage", "sr-outage-later"], true), &[]);
    s.wait(&mut flumen, "sr-outage", &ends(first.keys()));

    // Mid-run: events of a schema flumen has not fetched yet (v2, written
    // aside, so that flumen cannot see them before) reach it while the
    // registry is down.
    s.produce(Typed {
        version: 2,
        ..Typed::new("sr-outage-scratch", "avro", 100)
    });
    let later = s.expected("sr-outage-scratch", "avro", 100);
    s.registry.kill();
    let copies = read_topic(
        &s.bootstrap,
        "sr-outage-scratch",
        PARTITIONS,
        100,
        Duration::from_secs(10),
    );
    let records: Vec<Record> = copies
        .iter()
        .map(|m| Record {
            partition: m.partition(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: Vec::new(),
        })
        .collect();
    let copied = produce_records(&s.bootstrap, "sr-outage-later", &records);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !flumen
        .log_text()
        .contains("waiting for the schema registry")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never tried the registry:\n{}",
            tail(&flumen.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Then well past the interceptor's two attempts and their backoff.
    std::thread::sleep(Duration::from_secs(4));
    let held = committed(&s.bootstrap, GROUP, "sr-outage-later", PARTITIONS);
    assert!(
        held.values().all(|&o| o <= 0),
        "committed past undecoded events: {held:?}"
    );
    assert!(
        s.decoded().keys().all(|a| a.0 == "sr-outage"),
        "delivered undecoded events"
    );

    s.registry.restart();
    s.wait(
        &mut flumen,
        "sr-outage-later",
        &end_offsets(copied.iter().copied()),
    );
    flumen.terminate();
    let got = s.decoded();
    for (at, value) in &first {
        assert_eq!(&got[at].0, value, "{at:?}");
    }
    // The copies keep their partitions and order, so their offsets.
    let later_got = got.keys().filter(|a| a.0 == "sr-outage-later").count();
    assert_eq!(
        later_got, 100,
        "every event delivered once the registry was back"
    );
    for (at, value) in &later {
        assert_eq!(
            &got[&("sr-outage-later".to_owned(), at.1, at.2)].0,
            value,
            "{at:?}"
        );
    }
    assert!(s.dead_letters(0).is_empty(), "an outage gave events up");
}

#[test]
fn a_registry_behind_a_private_ca_and_basic_auth() {
    let work = Workdir::new();
    let pki_dir = work.path("pki");
    std::fs::create_dir_all(&pki_dir).expect("pki dir");
    let pki = TestPki::new(&pki_dir);
    let registry = TestRegistry::start_secure(&work.path(""), &pki, "flumen:s3cret");
    let s = Setup::with_registry(&["sr-secure"], work, registry);
    s.produce(Typed::new("sr-secure", "avro", 20));
    let want = s.expected("sr-secure", "avro", 20);
    let path = s.config(&["sr-secure"], true);
    let text = std::fs::read_to_string(&path).expect("config");
    // The password from the environment, as a deployment would give it.
    let secure = |ca: &str, password: &str| {
        let section = format!(
            "timeout_ms = 2000\nusername = \"flumen\"\npassword = \"{password}\"\nca_file = \"{}\"",
            pki.file(ca)
        );
        text.replace("timeout_ms = 2000", &section)
    };
    std::fs::write(&path, secure("ca.pem", "${REGISTRY_PASSWORD}")).expect("config");
    let config = path.display().to_string();
    let env = [("REGISTRY_PASSWORD", "s3cret")];
    let (ok, out) = flumen_output(&["check", "--config", &config, "--connect"], &env);
    assert!(
        ok && out.contains("subject `sr-secure-value`: version 1"),
        "{out}"
    );
    let mut flumen = s.start(&path, &env);
    s.wait(&mut flumen, "sr-secure", &ends(want.keys()));
    flumen.terminate();
    assert_same(&want, &s.decoded());

    // A wrong password, and a CA that did not sign the registry's
    // certificate: each named.
    let check = ["check", "--config", &config, "--connect", "--timeout", "3"];
    let (ok, out) = flumen_output(&check, &[("REGISTRY_PASSWORD", "wrong")]);
    assert!(
        !ok && out.contains("HTTP 401") && out.contains("Unauthorized"),
        "{out}"
    );
    std::fs::write(&path, secure("wrong-ca.pem", "s3cret")).expect("config");
    let (ok, out) = flumen_output(&check, &[]);
    assert!(
        !ok && out.contains("TLS handshake failed") && out.contains("ca_file"),
        "{out}"
    );
}

#[test]
fn check_and_test_reach_the_registry() {
    let mut s = Setup::new(&["sr-check"]);
    for version in [1, 2] {
        s.produce(Typed {
            version,
            ..Typed::new("sr-check", "avro", 2)
        });
    }
    let want = s.expected("sr-check", "avro", 4);
    let config = s.config(&["sr-check"], true).display().to_string();

    // check --connect: what the topic's subjects hold.
    let (ok, out) = flumen_output(&["check", "--config", &config, "--connect"], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("subject `sr-check-value`: version 2"), "{out}");
    assert!(out.contains("no subject `sr-check-key`"), "{out}");

    // flumen test: captured framed events decoded offline.
    let events = read_topic(
        &s.bootstrap,
        "sr-check",
        PARTITIONS,
        4,
        Duration::from_secs(10),
    );
    let lines: String = events
        .iter()
        .map(|m| {
            let value =
                base64::engine::general_purpose::STANDARD.encode(m.payload().unwrap_or_default());
            format!(
                "{{\"value_base64\":\"{value}\",\"partition\":{},\"offset\":{}}}\n",
                m.partition(),
                m.offset()
            )
        })
        .collect();
    let captured = s.work.path("captured.jsonl");
    std::fs::write(&captured, lines).expect("events");
    let (decode, captured, url) = (
        guest("schema_decode").display().to_string(),
        captured.display().to_string(),
        s.registry.url(),
    );
    let args = [
        "test",
        "--component",
        &decode,
        "--events",
        &captured,
        "--topic",
        "sr-check",
        "--schema-registry",
        &url,
    ];
    let (ok, out, err) = flumen_in(&s.work.path(""), &args, &[]);
    assert!(ok, "{err}");
    let mut decoded = 0;
    for line in out.lines() {
        let line: Value = serde_json::from_str(line).expect("a verdict line");
        assert_eq!(line["verdict"], "replace", "{line}");
        let at = (
            "sr-check".to_owned(),
            int(&line["event"]["partition"]) as i32,
            int(&line["offset"]),
        );
        let value: Value =
            serde_json::from_str(line["event"]["value"].as_str().expect("text")).expect("JSON");
        assert_eq!(value, want[&at], "{line}");
        decoded += 1;
    }
    assert_eq!(decoded, 4, "{out}");

    // A registry that does not answer fails check, naming it.
    s.registry.kill();
    let (ok, out) = flumen_output(
        &["check", "--config", &config, "--connect", "--timeout", "2"],
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("schema registry")
            && out.contains("sr-check-value")
            && out.contains("no registry answered"),
        "{out}"
    );
}

#[test]
fn the_registry_is_asked_once_per_schema_over_100_000_events() {
    const EVENTS: usize = 100_000;
    let s = Setup::new(&[]);
    s.broker.create_topic("sr-many", 4);
    // Two schemas (v1 by id, v2 by GUID header), each met by every
    // partition's instance.
    for (framing, first, version) in [("id", 0, 1), ("header", EVENTS / 2, 2)] {
        s.produce_on(
            Typed {
                framing,
                first,
                version,
                ..Typed::new("sr-many", "avro", EVENTS / 2)
            },
            4,
        );
    }
    s.registry.clear_requests();
    let mut flumen = s.start(&s.config(&["sr-many"], true), &[]);
    let timeout = Duration::from_secs(240);
    wait_committed(
        &mut flumen,
        &s.bootstrap,
        GROUP,
        "sr-many",
        4,
        timeout,
        |c| c.values().sum::<i64>() == EVENTS as i64,
    );
    flumen.terminate();
    let requests = s.registry.requests();
    // A schema, and the subject it is registered under, each once.
    let schemas = requests
        .iter()
        .filter(|r| r.contains("/schemas/") && !r.contains("/versions"))
        .count();
    assert_eq!(schemas, 2, "one request per schema: {requests:?}");
    let mut distinct = requests.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        requests.len(),
        "a request repeated: {requests:?}"
    );
    assert_eq!(
        read_sink_json(&s.out(), "typed").len(),
        EVENTS,
        "every event decoded once"
    );
    assert!(s.dead_letters(0).is_empty());
}

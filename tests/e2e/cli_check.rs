//! `flumen check` on good and broken inputs: a broken input exits non-zero
//! with a message naming the problem, and never panics.

use crate::support::*;
use std::path::Path;

fn check(config_text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flumen.toml");
    std::fs::write(&path, config_text).expect("write");
    check_path(&path)
}

fn check_path(path: &Path) -> (bool, String) {
    check_path_env(path, &[])
}

fn check_path_env(path: &Path, env: &[(&str, &Path)]) -> (bool, String) {
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(k, v)| (*k, v.to_str().expect("UTF-8 path")))
        .collect();
    check_with_env(path, &env)
}

fn check_with_env(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    flumen_output(&["check", "--config", &path.display().to_string()], env)
}

fn config_with(components: &str) -> String {
    format!(
        r#"
[kafka]
bootstrap_servers = "127.0.0.1:1"
[[pipeline]]
name = "p"
topics = ["t"]
group_id = "g"
{components}
"#
    )
}

fn sink(name: &str, component: &Path, config: &str) -> String {
    format!(
        "[[pipeline.sink]]\nname = \"{name}\"\ncomponent = \"{}\"\nconfig = {{ {config} }}\n",
        component.display()
    )
}

fn assert_fails(config_text: &str, needles: &[&str]) {
    let (ok, text) = check(config_text);
    assert!(!ok, "check succeeded on a broken config:\n{text}");
    for n in needles {
        assert!(text.contains(n), "message lacks `{n}`:\n{text}");
    }
}

#[test]
fn good_config_passes_without_a_broker() {
    // The broker address is unreachable: check must not consume.
    let (ok, text) = check(&config_with(&format!(
        "{}{}",
        drop_debug(),
        sink("null", &guest("null_sink"), "")
    )));
    assert!(ok, "{text}");
    assert!(
        text.contains("config OK") && text.contains("`drop-debug`"),
        "{text}"
    );
}

#[test]
fn shipped_configs_pass() {
    // As on a fresh clone: their output directories do not exist yet, and
    // the grants create them.
    for out in ["target/demo-out", "target/example-out", "target/edge-spool"] {
        let _ = std::fs::remove_dir_all(repo().join(out));
    }
    for name in ["demo.toml", "example.toml", "edge.toml"] {
        let (ok, text) = check_path(&repo().join("config").join(name));
        assert!(ok, "config/{name}: {text}");
    }
}

#[test]
fn check_shows_limits_and_grants() {
    let (ok, text) = check_path(&repo().join("config/edge.toml"));
    assert!(ok, "{text}");
    for want in [
        "memory 32 MiB, call timeout 1000 ms, fuel 2000000000",
        "grants  none (no files, network or environment)",
        "grants  http 127.0.0.1:8080",
        "/spool (rw); env SITE",
        "recycle after 100000 calls",
        "budgets log 10 lines and 32768 bytes a second, output 4194304 bytes a call, \
         produce 10000 records a send",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn check_shows_each_sinks_calls_and_refuses_a_window_in_partition_order() {
    let windowed = format!(
        "{}max_in_flight = 16\nordering = \"key\"\nadaptive_concurrency = true\n\
         batch = {{ max_events = 5000, max_wait_ms = 200 }}\nrate_limit = {{ events_per_s = 900 }}\n",
        sink("api", &guest("null_sink"), "")
    );
    let (ok, text) = check(&config_with(&format!(
        "{windowed}{}",
        sink("plain", &guest("null_sink"), "")
    )));
    assert!(ok, "{text}");
    for want in [
        "calls   adaptive, 1 to 16 in flight per partition, ordering key, gathered to 5000 \
         events or 8388608 bytes or 200 ms, at most 900 events/s",
        "calls   one at a time per partition, ordering partition, the pipeline's batches",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert_fails(
        &config_with(&format!(
            "{}max_in_flight = 4\n",
            sink("api", &guest("null_sink"), "")
        )),
        &["sink `api`", "max_in_flight", "ordering = \"key\""],
    );
}

#[test]
fn check_names_the_world_each_component_implements() {
    let components = format!(
        "[[pipeline.interceptor]]\nname = \"filter\"\ncomponent = \"{}\"\n\
         config = {{ pattern = \"x\" }}\n{}",
        guest("filter").display(),
        sink("fast", &guest("null_sink"), "")
    );
    let (ok, text) = check(&config_with(&components));
    assert!(ok, "{text}");
    // In configuration order: the interceptor, then the sink.
    let interceptor = text.find("world   interceptor (flumen:pipeline@0.4)");
    let sink = text.find("world   sink (flumen:pipeline@0.4)");
    assert!(interceptor.is_some() && interceptor < sink, "{text}");
}

#[test]
fn check_refuses_a_component_built_against_contract_0_2() {
    let components = format!(
        "{}{}",
        sink("fast", &guest("null_sink"), ""),
        sink("old", &guest("compat_sink"), "")
    );
    let (ok, text) = check(&config_with(&components));
    assert!(!ok, "{text}");
    assert!(
        text.contains("component `old`")
            && text.contains("built against contract flumen:pipeline@0.2.0")
            && text.contains("docs/guests.md"),
        "{text}"
    );
}

#[test]
fn bad_toml_is_reported_with_its_line() {
    assert_fails(
        "[kafka\nbootstrap_servers = 1",
        &["invalid config file", "line 1"],
    );
}

#[test]
fn unknown_key_is_named() {
    let text = config_with(&sink("null", &guest("null_sink"), ""))
        .replace("group_id = \"g\"", "group_id = \"g\"\nbatch_size = 10");
    assert_fails(&text, &["unknown field `batch_size`"]);
}

#[test]
fn missing_component_is_named() {
    assert_fails(
        &config_with(&sink("gone", Path::new("/nonexistent/sink.wasm"), "")),
        &["`gone`", "/nonexistent/sink.wasm", "cannot load"],
    );
}

#[test]
fn file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("fake.wasm");
    std::fs::write(&fake, b"this is not wasm").expect("write");
    assert_fails(
        &config_with(&sink("fake", &fake, "")),
        &["`fake`", "cannot load", "not a WebAssembly file"],
    );
    // A core module (the 8-byte preamble of an empty one) is told apart
    // from a component, with how to make one.
    std::fs::write(&fake, b"\0asm\x01\0\0\0").expect("write");
    let (ok, text) = check(&config_with(&sink("core", &fake, "")));
    assert!(!ok, "{text}");
    assert!(
        text.contains("a core WebAssembly module, not a component")
            && text.contains("wasm-tools component new"),
        "{text}"
    );
    assert!(!text.contains("0x"), "no byte dump: {text}");
}

#[test]
fn a_json_or_yaml_config_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("flumen.json");
    std::fs::write(&json, r#"{"kafka": {"bootstrap_servers": "k:9092"}}"#).expect("write");
    let (ok, text) = check_path(&json);
    assert!(
        !ok && text.contains("this looks like JSON, but flumen's config is TOML"),
        "{text}"
    );
    let yaml = dir.path().join("flumen.yaml");
    std::fs::write(&yaml, "kafka:\n  bootstrap_servers: k:9092\n").expect("write");
    let (ok, text) = check_path(&yaml);
    assert!(!ok && text.contains("this looks like YAML"), "{text}");
}

#[test]
fn misspelt_keys_and_librdkafka_options_get_a_suggestion() {
    let base = config_with(&sink("null", &guest("null_sink"), ""));
    assert_fails(
        &base.replace(
            "group_id = \"g\"",
            "group_id = \"g\"\nmax_queued_event = 10",
        ),
        &[
            "unknown field `max_queued_event`",
            "did you mean `max_queued_events`?",
        ],
    );
    assert_fails(
        &base.replace(
            "bootstrap_servers = \"127.0.0.1:1\"",
            "bootstrap_servers = \"127.0.0.1:1\"\noptions = { \"sesion.timeout.ms\" = 6000 }",
        ),
        &[
            "`kafka.options.\"sesion.timeout.ms\"`",
            "No such configuration property",
            "did you mean `session.timeout.ms`?",
        ],
    );
    assert_fails(
        &base.replace(
            "group_id = \"g\"",
            "group_id = \"g\"\nmax_queued_events = -5",
        ),
        &["a whole number"],
    );
}

/// `${VAR}`, `${VAR:-default}` and `${file:…}` are filled in; an unset
/// variable names its key; a credential never appears in the output, even
/// in librdkafka's complaint about it.
#[test]
fn secrets_come_from_the_environment_and_files_and_are_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("kafka-password");
    std::fs::write(&secret_file, "file-secret-123\n").expect("write");
    let text = config_with(&sink("null", &guest("null_sink"), "")).replace(
        "bootstrap_servers = \"127.0.0.1:1\"",
        &format!(
            "bootstrap_servers = \"${{TEST_BROKERS:-127.0.0.1:1}}\"\noptions = {{ \
             \"security.protocol\" = \"sasl_plaintext\", \"sasl.mechanisms\" = \"PLAIN\", \
             \"sasl.username\" = \"${{TEST_USER}}\", \"sasl.password\" = \"${{file:{}}}\" }}",
            secret_file.display()
        ),
    );
    let path = dir.path().join("flumen.toml");
    std::fs::write(&path, &text).expect("write");
    let run = |env: &[(&str, &str)]| check_with_env(&path, env);
    let (ok, out) = run(&[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("`kafka.options.\"sasl.username\"`") && out.contains("TEST_USER is not set"),
        "{out}"
    );
    let (ok, out) = run(&[("TEST_USER", "alice")]);
    assert!(ok, "{out}");
    assert!(out.contains("sasl.username=alice"), "{out}");
    assert!(out.contains("sasl.password=[redacted]"), "{out}");
    assert!(!out.contains("file-secret-123"), "{out}");
    // librdkafka's message about a bad secret value does not repeat it.
    let bad = text
        .replace(
            "\"sasl.mechanisms\" = \"PLAIN\"",
            "\"sasl.mechanisms\" = \"PLAIN\", \"ssl.key.password\" = \"${TEST_USER}\", \
         \"ssl.key.location\" = \"/nonexistent/key.pem\", \"security.protocol\" = \"ssl\"",
        )
        .replace("\"security.protocol\" = \"sasl_plaintext\", ", "");
    std::fs::write(&path, bad).expect("write");
    let (ok, out) = run(&[("TEST_USER", "hunter2-secret")]);
    assert!(!ok, "{out}");
    assert!(!out.contains("hunter2-secret"), "{out}");
}

#[test]
fn component_of_the_wrong_world_is_refused() {
    // The filter is an interceptor; configured as a sink it must be refused.
    assert_fails(
        &config_with(&sink("wrong", &guest("filter"), "")),
        &["`wrong`", "is not a flumen sink", "flumen:pipeline/sink"],
    );
}

#[test]
fn config_refused_by_the_guest_is_reported() {
    assert_fails(
        &config_with(&sink("null", &guest("null_sink"), "colour = \"blue\"")),
        &["`null` refused its config", "colour"],
    );
    assert_fails(
        &config_with(&format!(
            "[[pipeline.interceptor]]\nname = \"f\"\ncomponent = \"{}\"\nconfig = {{ pattern = \"(\" }}\n{}",
            guest("filter").display(),
            sink("null", &guest("null_sink"), "")
        )),
        &["`f` refused its config", "not a valid regex"],
    );
}

#[test]
fn managed_kafka_option_and_empty_sinks_are_refused() {
    let text = config_with(&sink("null", &guest("null_sink"), "")).replace(
        "bootstrap_servers = \"127.0.0.1:1\"",
        "bootstrap_servers = \"127.0.0.1:1\"\noptions = { \"enable.auto.commit\" = \"true\" }",
    );
    assert_fails(&text, &["enable.auto.commit", "managed by flumen"]);
    assert_fails(&config_with(""), &["missing field `sink`"]);
}

#[test]
fn file_sink_refuses_a_path_shared_by_partitions_and_an_ungranted_dir() {
    assert_fails(
        &config_with(&sink(
            "file",
            &guest("file_sink"),
            "path = \"/out/all.jsonl\"",
        )),
        &["`file` refused its config", "%{partition}"],
    );
    assert_fails(
        &config_with(&sink(
            "file",
            &guest("file_sink"),
            "path = \"/out/e-%{partition}.jsonl\"",
        )),
        &["`file` refused its config", "not visible", "dirs"],
    );
}

/// `flumen run` with a dead-letter topic the broker does not have stops at
/// start-up with a message naming the topic, before consuming anything.
#[test]
fn run_refuses_a_missing_dead_letter_topic() {
    let broker = Broker::mock();
    broker.create_topic("t", 1);
    let work = Workdir::new();
    let components = format!(
        "[pipeline.dead_letter]\ntopic = \"no-such-dlq\"\n{}on_failure = \"dead-letter\"\n",
        file_sink("s", "file_sink", "")
    );
    let config = work.config(&broker.bootstrap(), "t", "g", components);
    let text = run_refused(&config, &work, "its dead-letter topic");
    assert!(
        text.contains("dead-letter topic `no-such-dlq` does not exist"),
        "{text}"
    );
}

/// Runs `flumen run` on `config`, which must make it exit on its own
/// within 30 s, without a panic; returns its log.
fn run_refused(config: &Path, work: &Workdir, missing: &str) -> String {
    let mut flumen = Flumen::run(config, &work.path("flumen.log"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while flumen.alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = flumen.log_text();
    assert!(!flumen.alive(), "flumen runs without {missing}:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

#[test]
fn run_refuses_an_admin_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let work = Workdir::new();
    let text = config_with(&sink("null", &guest("null_sink"), "")).replace(
        "[[pipeline]]",
        &format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n[[pipeline]]"),
    );
    let config = work.path("flumen.toml");
    std::fs::write(&config, text).expect("write config");
    let log = run_refused(&config, &work, "its admin endpoint");
    assert!(
        log.contains(&format!("starting the admin endpoint on 127.0.0.1:{port}")),
        "{log}"
    );
}

#[test]
fn bad_http_allow_and_env_are_named() {
    assert_fails(
        &config_with(&format!(
            "{}http_allow = [\"http://api.example.com\"]\n",
            sink("h", &guest("http_sink"), "url = \"http://x/\"")
        )),
        &["http_allow[0]", "is a URL, not a host"],
    );
    assert_fails(
        &config_with(&format!(
            "{}env = {{ \"A=B\" = \"1\" }}\n",
            sink("n", &guest("null_sink"), "")
        )),
        &["sink `n`: `env`", "not a valid environment variable name"],
    );
}

/// `check` compiles each component once into the compile cache; the next
/// `check` (or start, or reload) maps it from there. A damaged entry is
/// compiled over, and a directory other users can write to is not used.
#[test]
fn check_warms_the_compile_cache() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("flumen.toml");
    let components = format!("{}{}", drop_debug(), sink("null", &guest("null_sink"), ""));
    std::fs::write(&config, config_with(&components)).expect("write");
    let cache = dir.path().join("cache");
    let env = [("FLUMEN_CACHE_DIR", cache.as_path())];
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };

    let (ok, cold) = check_path_env(&config, &env);
    assert!(ok, "{cold}");
    assert_eq!(cold.matches("code    compiled in").count(), 2, "{cold}");
    assert_eq!(
        entries().len(),
        2,
        "one entry per component: {:?}",
        entries()
    );
    let mode = std::fs::metadata(&cache)
        .expect("cache")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the cache is created private");

    let (ok, warm) = check_path_env(&config, &env);
    assert!(ok, "{warm}");
    assert_eq!(warm.matches("from the compile cache").count(), 2, "{warm}");

    // A truncated entry (a crash mid-write of an older version, a full
    // disk) is not trusted: it is compiled again and replaced.
    for e in entries() {
        std::fs::write(&e, b"not machine code").expect("damage entry");
    }
    let (ok, damaged) = check_path_env(&config, &env);
    assert!(ok, "{damaged}");
    assert_eq!(
        damaged.matches("code    compiled in").count(),
        2,
        "{damaged}"
    );
    assert!(
        damaged.contains("compile cache entry unusable"),
        "{damaged}"
    );
    let (ok, repaired) = check_path_env(&config, &env);
    assert!(ok, "{repaired}");
    assert_eq!(
        repaired.matches("from the compile cache").count(),
        2,
        "{repaired}"
    );

    // Anyone who can write the cache could run code inside flumen.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (ok, open) = check_path_env(&config, &env);
    assert!(ok, "{open}");
    assert!(
        open.contains("writable by other users") && open.contains("compile cache off"),
        "{open}"
    );
    assert_eq!(open.matches("code    compiled in").count(), 2, "{open}");
}

/// `[cache] enabled = false` compiles every time and writes nothing.
#[test]
fn compile_cache_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let text = format!(
        "{}\n[cache]\nenabled = false\ndir = \"{}\"\n",
        config_with(&sink("null", &guest("null_sink"), "")),
        cache.display()
    );
    let (ok, out) = check(&text);
    assert!(ok && out.contains("compile cache off"), "{out}");
    assert!(!cache.exists(), "nothing written");
}

/// Every configuration example of docs/connecting.md passes `check` (with
/// its files and variables provided): librdkafka accepts each option, the
/// certificate files load, and the placeholders resolve.
#[test]
fn the_connection_examples_in_the_docs_pass_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new(dir.path());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("write secret");
    let doc = std::fs::read_to_string(repo().join("docs/connecting.md")).expect("read doc");
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 4, "found {} examples", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let mut text = block.to_string();
        for (from, to) in [
            ("/etc/flumen/aiven/ca.pem", pki.file("ca.pem")),
            ("/etc/pki/kafka-ca.pem", pki.file("ca.pem")),
            ("/etc/flumen/aiven/service.cert", pki.file("client.pem")),
            ("/etc/flumen/aiven/service.key", pki.file("client.key")),
        ] {
            text = text.replace(from, &to);
        }
        for path in [
            "/run/secrets/confluent-api-secret",
            "/run/secrets/kafka-password",
        ] {
            text = text.replace(path, &secret.display().to_string());
        }
        let config = format!(
            "{text}\n[[pipeline]]\nname = \"p\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n{}",
            sink("null", &guest("null_sink"), "")
        );
        let path = dir.path().join(format!("example-{i}.toml"));
        std::fs::write(&path, config).expect("write example");
        let (ok, text) = check_with_env(
            &path,
            &[
                ("KAFKA_BROKERS", "127.0.0.1:1"),
                ("MSK_BROKERS", "127.0.0.1:1"),
                ("CONFLUENT_API_KEY", "key"),
                ("MSK_USER", "user"),
                ("MSK_PASSWORD", "pw-from-env"),
            ],
        );
        assert!(ok, "example {i} of docs/connecting.md:\n{text}");
        assert!(
            !text.contains("s3cret") && !text.contains("pw-from-env"),
            "{text}"
        );
    }
}

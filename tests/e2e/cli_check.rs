//! `flumen check` on good and broken inputs: a broken input exits non-zero
//! with a message naming the problem, and never panics.

use crate::support::*;
use std::path::Path;
use std::process::Command;

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
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["check", "--config", &path.display().to_string()])
        .envs(env.iter().copied())
        .output()
        .expect("run flumen check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "flumen check panicked:\n{text}");
    (out.status.success(), text)
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
    // Their granted output directories must exist: check opens every grant.
    for out in ["target/demo-out", "target/example-out", "target/edge-spool"] {
        std::fs::create_dir_all(repo().join(out)).expect("create output dir");
    }
    for name in ["demo.toml", "example.toml", "edge.toml"] {
        let (ok, text) = check_path(&repo().join("config").join(name));
        assert!(ok, "config/{name}: {text}");
    }
}

#[test]
fn check_shows_limits_and_grants() {
    std::fs::create_dir_all(repo().join("target/edge-spool")).expect("create output dir");
    let (ok, text) = check_path(&repo().join("config/edge.toml"));
    assert!(ok, "{text}");
    for want in [
        "memory 32 MiB, call timeout 1000 ms, fuel 2000000000",
        "grants  none (no files, network or environment)",
        "grants  http 127.0.0.1:8080",
        "/spool (rw); env SITE",
        "recycle after 100000 calls",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn check_names_the_world_each_component_implements() {
    let components = format!(
        "{}{}",
        sink("fast", &guest("null_sink"), ""),
        sink("old", &guest("compat_sink"), "")
    );
    let (ok, text) = check(&config_with(&components));
    assert!(ok, "{text}");
    for want in [
        "world   columnar-sink (batches as columns)",
        "world   sink (batches as records)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // In configuration order: the columnar null sink, then the 0.2.0 sink.
    assert!(
        text.find("columnar-sink") < text.find("world   sink"),
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
        &["`fake`", "cannot load"],
    );
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

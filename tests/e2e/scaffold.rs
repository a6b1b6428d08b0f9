//! `flumen new`: every language and kind scaffolds a project whose
//! `build.sh` builds as it stands and whose component does what its README
//! says, checked with `flumen test`; and the README's newcomer walk-through
//! (a new Python sink, run in a pipeline on the embedded broker by
//! `flumen demo`) accounts for every event.
//!
//! The builds use the toolchains `scripts/install-guest-toolchain.sh`
//! installed for the repository's own guests, named through the variables
//! each `build.sh` documents.

use crate::support::{flumen_in, repo};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn flumen(args: &[&str], cwd: &Path) -> (bool, String, String) {
    flumen_in(cwd, args, &[])
}

/// Creates and builds `name` in `work`.
fn new_and_build(lang: &str, kind: &str, name: &str, work: &Path) -> std::path::PathBuf {
    let (ok, _, err) = flumen(&["new", "--lang", lang, "--kind", kind, name], work);
    assert!(ok, "flumen new: {err}");
    let dir = work.join(name);
    let root = repo();
    let out = Command::new(dir.join("build.sh"))
        // Reuses the guests' std build (Debian route) and dependencies.
        .env("CARGO_TARGET_DIR", root.join("guests/target"))
        .env(
            "COMPONENTIZE_PY",
            root.join("target/guest-venv/bin/componentize-py"),
        )
        .env(
            "COMPONENTIZE_JS",
            root.join("guests/examples/js/node_modules/.bin/componentize-js"),
        )
        .env(
            "FLUMEN_C_TOOL",
            root.join("guests/target/tool/release/flumen-c-tool"),
        )
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{name}/build.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join(format!("{name}.wasm")).exists());
    dir
}

fn verdicts(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["verdict"].as_str().unwrap_or("?").to_owned()
        })
        .collect()
}

/// Builds a `kind` scaffold named `name` and runs `flumen test` on its
/// sample events with each of `runs`' config arguments, expecting its
/// verdicts; then checks an unknown config key is refused.
fn check_verdicts(lang: &str, kind: &str, name: &str, runs: &[(&[&str], [&str; 3])]) {
    let work = tempfile::tempdir().expect("tempdir");
    new_and_build(lang, kind, name, work.path());
    let wasm = format!("{name}/{name}.wasm");
    let events = format!("{name}/events.jsonl");
    let test = |config: &[&str]| {
        let mut args = vec!["test", "--component", &wasm, "--events", &events];
        args.extend_from_slice(config);
        flumen(&args, work.path())
    };
    for (config, want) in runs {
        let (ok, out, err) = test(config);
        assert!(ok, "{err}");
        assert_eq!(verdicts(&out), want, "{lang} {config:?}: {out}");
    }
    let (ok, _, err) = test(&["--config", "nope=1"]);
    assert!(!ok && err.contains("nope"), "{lang}: {err}");
}

fn check_interceptor(lang: &str) {
    check_verdicts(
        lang,
        "interceptor",
        &format!("{lang}_filter"),
        &[
            (&[], ["keep", "drop", "keep"]),
            (
                &["--config", "drop_containing=hello"],
                ["drop", "keep", "keep"],
            ),
        ],
    );
}

/// The typed interceptor: reads the decoded value's fields (the sample
/// events are what `schema_decode` makes of a typed event).
fn check_typed(lang: &str) {
    check_verdicts(
        lang,
        "typed-interceptor",
        &format!("{lang}_typed"),
        &[
            (&[], ["keep", "drop", "keep"]),
            (&["--config", "equals=paid"], ["drop", "keep", "keep"]),
            // `id` is a number, not the string "1": nothing matches.
            (
                &["--config", "field=id", "--config", "equals=1"],
                ["keep", "keep", "keep"],
            ),
        ],
    );
}

fn check_file_sink(lang: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let name = format!("{lang}_out");
    new_and_build(lang, "sink", &name, work.path());
    std::fs::create_dir(work.path().join("out")).expect("out");
    let (ok, out, err) = flumen(
        &[
            "test",
            "--component",
            &format!("{name}/{name}.wasm"),
            "--events",
            &format!("{name}/events.jsonl"),
            "--dir",
            "out=/out",
            "--partition",
            "2",
        ],
        work.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(verdicts(&out), ["delivered"; 3], "{lang}: {out}");
    let written = std::fs::read_to_string(work.path().join(format!("out/{name}-2.txt")))
        .expect("the sink's file");
    assert_eq!(
        written,
        format!("0\thello from {name}\n1\tthis one says DROP\n2\tthe last one\n"),
        "{lang}"
    );
}

#[test]
fn rust_scaffolds_build_and_run() {
    check_interceptor("rust");
    check_typed("rust");
    check_file_sink("rust");
}

#[test]
fn c_scaffolds_build_and_run() {
    check_interceptor("c");
    check_typed("c");
    check_file_sink("c");
}

#[test]
fn python_scaffolds_build_and_run() {
    check_interceptor("python");
    check_typed("python");
    check_file_sink("python");
}

#[test]
fn js_scaffolds_build_and_run() {
    check_interceptor("js");
    check_typed("js");
    let work = tempfile::tempdir().expect("tempdir");
    new_and_build("js", "sink", "js_log", work.path());
    let (ok, out, err) = flumen(
        &[
            "test",
            "--component",
            "js_log/js_log.wasm",
            "--events",
            "js_log/events.jsonl",
        ],
        work.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(verdicts(&out), ["delivered"; 3]);
    assert!(err.contains("1\tthis one says DROP"), "{err}");
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_directory() {
    let work = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = flumen(
        &["new", "--lang", "rust", "--kind", "sink", "My Sink"],
        work.path(),
    );
    assert!(!ok && err.contains("cannot be a guest name"), "{err}");
    std::fs::create_dir(work.path().join("taken")).expect("dir");
    let (ok, _, err) = flumen(
        &["new", "--lang", "c", "--kind", "sink", "taken"],
        work.path(),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
}

/// The README's "Your own sink in Python" walk-through, step by step.
#[test]
fn readme_walkthrough_runs_a_new_python_sink_in_a_pipeline() {
    let work = tempfile::tempdir().expect("tempdir");
    new_and_build("python", "sink", "my_sink", work.path());
    let demo = std::fs::read_to_string(repo().join("config/demo.toml")).expect("demo config");
    // As the README says: the demo pipeline with its file sink replaced by
    // the new one (the sink table from the project's README).
    let readme = std::fs::read_to_string(work.path().join("my_sink/README.md")).expect("README");
    let table = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("the pipeline table in the project's README");
    let head = demo.split("[[pipeline.sink]]").next().expect("demo head");
    let filter = repo().join("guests/target/wasm32-wasip2/release/filter.wasm");
    let config = head.replace(
        "../guests/target/wasm32-wasip2/release/filter.wasm",
        &filter.display().to_string(),
    ) + table;
    std::fs::write(work.path().join("my.toml"), config).expect("config");
    let (ok, out, err) = flumen(
        &[
            "demo", "--config", "my.toml", "--out", "out", "--events", "2000",
        ],
        work.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("delivered  1500 (sink `my_sink`)"), "{out}");
    assert!(out.contains("every event accounted for"), "{out}");
    let lines: usize = (0..4)
        .map(|p| {
            std::fs::read_to_string(work.path().join(format!("out/my_sink-{p}.txt")))
                .map_or(0, |t| t.lines().count())
        })
        .sum();
    assert_eq!(lines, 1500);
}

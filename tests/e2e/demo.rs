//! `flumen demo` accounts for every event on its embedded broker.

use crate::support::repo;
use std::process::Command;

#[test]
fn demo_accounts_for_every_event() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .current_dir(repo())
        .args([
            "demo",
            "--events",
            "4000",
            "--out",
            &out.path().display().to_string(),
        ])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("every event accounted for"), "{stdout}");
    assert!(
        stdout.contains("produced   4000") && stdout.contains("dropped    1000"),
        "{stdout}"
    );
    let lines = crate::support::read_sink(out.path(), "events");
    assert_eq!(lines.len(), 3000);
    crate::support::assert_in_order(&lines, "events");
}

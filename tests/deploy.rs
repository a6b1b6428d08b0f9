//! The systemd unit in deploy/ is one systemd accepts: checked with
//! `systemd-analyze verify` against the flumen binary this build made.

use std::path::Path;
use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(repo.join("deploy/flumen.service")).expect("read unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/flumen --log-format json run --config"));
    // The unit names the installed path; verify it against this build's
    // binary, which systemd-analyze checks is executable.
    let unit = unit.replace("/usr/local/bin/flumen", env!("CARGO_BIN_EXE_flumen"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flumen.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify prints nothing for a clean unit; any line is a finding.
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("flumen.service"))
        .collect();
    assert!(
        out.status.success() && findings.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

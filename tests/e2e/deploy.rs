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

/// No container engine runs on the project's machines, so the recipe is
/// checked for what can go wrong without one: every file its build stage
/// runs and its final stage copies exists (after guests/build.sh), and the
/// binary needs no shared library that `debian:bookworm-slim` lacks.
#[test]
fn the_container_recipe_uses_what_the_repository_builds() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let recipe = std::fs::read_to_string(repo.join("deploy/Containerfile")).expect("read recipe");
    for script in ["scripts/install-guest-toolchain.sh", "guests/build.sh"] {
        assert!(recipe.contains(script), "recipe no longer runs {script}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(repo.join(script))
                .expect(script)
                .permissions(),
        );
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
    let toolchain = std::fs::read_to_string(repo.join("scripts/install-guest-toolchain.sh"))
        .expect("read toolchain script");
    assert!(
        toolchain.contains("rust"),
        "install-guest-toolchain.sh takes no `rust` argument"
    );
    for line in recipe
        .lines()
        .filter(|l| l.starts_with("COPY --from=build"))
    {
        let from = line
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.strip_prefix("/src/"))
            .expect("COPY --from=build /src/<path> <dest>");
        if from == "target/release/flumen" {
            continue; // this test runs a debug build; the next check covers the binary
        }
        match from.strip_suffix("*.wasm") {
            Some(dir) => {
                let wasm = std::fs::read_dir(repo.join(dir))
                    .expect(dir)
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
                    .count();
                assert!(wasm >= 10, "{dir} holds {wasm} components");
            }
            None => assert!(repo.join(from).exists(), "recipe copies missing {from}"),
        }
    }
    // The libraries flumen itself names: glibc's, libgcc_s and zlib are in
    // bookworm-slim; OpenSSL and libcurl come with the packages the recipe
    // installs (which bring what they need themselves).
    let installs = recipe
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("the recipe installs flumen's libraries");
    for package in ["libssl3", "libcurl4", "ca-certificates"] {
        assert!(
            installs.contains(package),
            "the recipe does not install {package}"
        );
    }
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_flumen")])
        .output()
        .expect("readelf");
    let allowed = [
        "libz.so.1",
        "libgcc_s.so.1",
        "libm.so.6",
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libssl.so.3",
        "libcrypto.so.3",
        "libcurl.so.4",
    ];
    let needed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect();
    assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
    for name in &needed {
        assert!(
            allowed.contains(&name.as_str()),
            "flumen links {name}, which debian:bookworm-slim and the recipe's packages lack"
        );
    }
}

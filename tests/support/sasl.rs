//! A broker that requires SASL/SCRAM: tansu with sqlite storage, the tansu
//! build that stores SCRAM credentials (the memory build used elsewhere
//! keeps none, and tansu's SASL has no PLAIN). Users are created while it
//! runs without authentication; it then restarts with `--authentication`
//! on the same database.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The users [`ScramBroker`] knows: (mechanism for tansu, user, password).
pub const SCRAM_USERS: [(&str, &str, &str); 2] = [
    ("scram256", "alice", "alice-secret"),
    ("scram512", "bob", "bob-secret"),
];

/// tansu requiring SASL/SCRAM on a loopback port.
pub struct ScramBroker {
    child: Child,
    /// `127.0.0.1:port`.
    pub bootstrap: String,
}

/// The tansu build with sqlite storage (`scripts/fetch-tansu.sh --sqlite`),
/// if it is there.
pub fn tansu_sqlite() -> Option<PathBuf> {
    let p = std::env::var_os("FLUMEN_TANSU_SQLITE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/flumen/tansu-sqlite/bin/tansu"))
        })?;
    p.exists().then_some(p)
}

impl ScramBroker {
    /// Starts it in `dir` with [`SCRAM_USERS`]; the test's own clients
    /// ([`client`]) log in as alice with SCRAM-SHA-256. `None` without the
    /// sqlite build of tansu.
    pub fn start(dir: &Path) -> Option<Self> {
        let bin = tansu_sqlite()?;
        let bootstrap = format!("127.0.0.1:{}", free_port());
        let mut setup = start_tansu_sqlite(&bin, dir, &bootstrap, false);
        for (mechanism, user, password) in SCRAM_USERS {
            let out = Command::new(&bin)
                .args(["user", "create", "--broker", &format!("tcp://{bootstrap}")])
                .args(["--mechanism", mechanism, user, password])
                .output()
                .expect("run tansu user create");
            assert!(
                out.status.success(),
                "tansu user create {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = setup.kill();
        let _ = setup.wait();
        let child = start_tansu_sqlite(&bin, dir, &bootstrap, true);
        register_security(
            &bootstrap,
            &[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanisms", "SCRAM-SHA-256"),
                ("sasl.username", SCRAM_USERS[0].1),
                ("sasl.password", SCRAM_USERS[0].2),
            ],
        );
        Some(Self { child, bootstrap })
    }
}

/// Starts the sqlite build of tansu `bin` on `bootstrap` with its database
/// and log in `dir`, requiring SASL with `authentication`; returns once it
/// listens.
pub fn start_tansu_sqlite(bin: &Path, dir: &Path, bootstrap: &str, authentication: bool) -> Child {
    let url = format!("tcp://{bootstrap}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .expect("tansu log");
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    if authentication {
        cmd.arg("--authentication");
    }
    let child = cmd.spawn().expect("start tansu");
    wait_listening(bootstrap);
    child
}

impl Drop for ScramBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

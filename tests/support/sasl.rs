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

/// tansu requiring SASL/SCRAM on a loopback port, perhaps behind TLS.
pub struct ScramBroker {
    child: Child,
    stunnel: Option<Child>,
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
    /// Starts it in `dir` with [`SCRAM_USERS`], behind a TLS listener
    /// with the certificates of `tls` if given (SASL_SSL); the test's own
    /// clients ([`client`]) log in as alice with SCRAM-SHA-256. `None`
    /// without the sqlite build of tansu.
    pub fn start(dir: &Path, tls: Option<&TestPki>) -> Option<Self> {
        let bin = tansu_sqlite()?;
        let plain = format!("127.0.0.1:{}", free_port());
        let mut setup = start_tansu_sqlite(&bin, dir, &plain, &plain, false);
        for (mechanism, user, password) in SCRAM_USERS {
            let out = Command::new(&bin)
                .args(["user", "create", "--broker", &format!("tcp://{plain}")])
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
        let bootstrap = match tls {
            Some(_) => format!("127.0.0.1:{}", free_port()),
            None => plain.clone(),
        };
        let child = start_tansu_sqlite(&bin, dir, &plain, &bootstrap, true);
        let stunnel = tls.map(|pki| start_stunnel(pki, &bootstrap, &plain, false));
        let mut options = vec![
            ("sasl.mechanisms", "SCRAM-SHA-256".to_owned()),
            ("sasl.username", SCRAM_USERS[0].1.to_owned()),
            ("sasl.password", SCRAM_USERS[0].2.to_owned()),
        ];
        match tls {
            Some(pki) => {
                options.push(("security.protocol", "sasl_ssl".to_owned()));
                options.push(("ssl.ca.location", pki.file("ca.pem")));
            }
            None => options.push(("security.protocol", "sasl_plaintext".to_owned())),
        }
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        register_security(&bootstrap, &options);
        Some(Self {
            child,
            stunnel,
            bootstrap,
        })
    }
}

/// Starts the sqlite build of tansu `bin` listening on `listen` and
/// advertising `advertised`, with its database and log in `dir`, requiring
/// SASL with `authentication`; returns once it listens.
pub fn start_tansu_sqlite(
    bin: &Path,
    dir: &Path,
    listen: &str,
    advertised: &str,
    authentication: bool,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .expect("tansu log");
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .args(["broker", "--listener-url", &format!("tcp://{listen}")])
        .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    if authentication {
        cmd.arg("--authentication");
    }
    let child = cmd.spawn().expect("start tansu");
    wait_listening(listen);
    child
}

impl Drop for ScramBroker {
    fn drop(&mut self) {
        forget_security(&self.bootstrap);
        for child in self.stunnel.iter_mut().chain([&mut self.child]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

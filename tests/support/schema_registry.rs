//! The Schema Registry tests' other side: the test registry
//! (`tests/schemas/registry.py`, the REST API's subset that Confluent's
//! client and flumen call) and Confluent's own serializers and
//! deserializers (`tests/schemas/confluent.py`), run with the Python of
//! `target/test-venv`, which `scripts/test.sh` installs from
//! `tests/schemas/requirements.txt`.

use super::{free_port, repo, spawn_service, wait_listening, TestPki};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The test venv's Python; panics, saying how to make it, if it is missing:
/// a test that cannot run fails.
pub fn test_python() -> PathBuf {
    let p = repo().join("target/test-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh (or `python3 -m venv target/test-venv && \
         target/test-venv/bin/pip install -r tests/schemas/requirements.txt`)",
        p.display()
    );
    p
}

/// A running test registry. Its schemas are kept in a file, so that a
/// restart (after [`TestRegistry::kill`]) finds them again.
pub struct TestRegistry {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Extra arguments: TLS and authentication.
    secure: Vec<String>,
    /// What `confluent.py` needs to reach it then.
    client: Vec<String>,
}

impl TestRegistry {
    /// Starts a registry keeping its files in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, Vec::new(), Vec::new())
    }

    /// Starts a registry serving HTTPS with `pki`'s server certificate and
    /// requiring HTTP basic authentication as `user:password`.
    pub fn start_secure(dir: &Path, pki: &TestPki, user_password: &str) -> Self {
        let secure = [
            "--tls-cert",
            &pki.file("server.pem"),
            "--tls-key",
            &pki.file("server.key"),
            "--basic",
            user_password,
        ];
        let client = [
            "--registry-ca",
            &pki.file("ca.pem"),
            "--registry-auth",
            user_password,
        ];
        let owned = |args: &[&str]| args.iter().map(|s| s.to_string()).collect();
        Self::start_with(dir, owned(&secure), owned(&client))
    }

    fn start_with(dir: &Path, secure: Vec<String>, client: Vec<String>) -> Self {
        let mut r = Self {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            secure,
            client,
        };
        r.restart();
        r
    }

    /// Starts it again on the same port, with the schemas it had.
    pub fn restart(&mut self) {
        let script = repo().join("tests/schemas/registry.py");
        let mut command = vec![
            test_python().display().to_string(),
            script.display().to_string(),
            "--port".into(),
            self.port.to_string(),
            "--log".into(),
            "requests.log".into(),
            "--store".into(),
            "schemas.json".into(),
        ];
        command.extend(self.secure.iter().cloned());
        self.child = Some(spawn_service(&command, &self.dir, "registry.log"));
        wait_listening(&format!("127.0.0.1:{}", self.port));
    }

    /// Kills it: requests are refused until [`TestRegistry::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The arguments `confluent.py` needs to reach it (its CA and
    /// credentials, if it has them).
    pub fn client_args(&self) -> Vec<&str> {
        self.client.iter().map(String::as_str).collect()
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        let scheme = if self.secure.is_empty() {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Every request it answered so far, as `GET /schemas/ids/1 200`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets the requests answered so far (the producer's, say).
    pub fn clear_requests(&self) {
        let _ = std::fs::remove_file(self.dir.join("requests.log"));
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `tests/schemas/confluent.py` with `args`; panics with its output if
/// it fails. Returns what it printed.
pub fn confluent(args: &[&str]) -> String {
    let out = Command::new(test_python())
        .arg(repo().join("tests/schemas/confluent.py"))
        .args(args)
        .output()
        .expect("run confluent.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "confluent.py {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

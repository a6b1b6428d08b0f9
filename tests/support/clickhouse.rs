//! A ClickHouse server (Debian's `clickhouse-server`) for the clickhouse
//! sink's tests, as a process of the test's own on a loopback HTTP port,
//! with one user whose password the sink gets through its environment.

use super::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user the sink inserts as.
pub const CH_USER: &str = "flumen";
/// Its password.
pub const CH_PASSWORD: &str = "ch-test-password";

/// A running clickhouse-server.
pub struct ClickHouse {
    child: Child,
    /// The binary, to start it again.
    bin: &'static str,
    /// The network namespace it runs in, if not the test's.
    host: Option<NetHost>,
    /// `127.0.0.1:PORT`, the HTTP interface.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl ClickHouse {
    /// Starts it (scripts/fetch-services.sh installs it) and waits until it
    /// answers queries.
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// Starts it inside `host`'s network namespace, on its address (call
    /// from a namespace that reaches it).
    pub fn start_in(host: &NetHost) -> Self {
        Self::start_on(Some(host))
    }

    fn start_on(host: Option<&NetHost>) -> Self {
        let listen = host.map_or("127.0.0.1", |h| h.ip.as_str()).to_owned();
        let bin = ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("clickhouse-server missing: run scripts/fetch-services.sh");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let root = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{port}</http_port>
  <listen_host>{listen}</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
"#
            ),
        )
        .expect("config");
        std::fs::write(
            dir.path().join("users.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <{CH_USER}>
      <password>{CH_PASSWORD}</password>
      <networks><ip>127.0.0.1</ip><ip>10.99.0.0/16</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </{CH_USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#
            ),
        )
        .expect("users");
        let host = host.cloned();
        let child = spawn(bin, dir.path(), host.as_ref());
        let mut server = Self {
            child,
            bin,
            host,
            addr: format!("{listen}:{port}"),
            dir,
        };
        server.wait_ready();
        server
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and data, waiting until it answers.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.bin, self.dir.path(), self.host.as_ref());
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let server = self;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("clickhouse-server exited ({status}): {}", server.log());
            }
            if std::net::TcpStream::connect(&server.addr).is_ok()
                && server.try_query("SELECT 1").is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server not ready: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_query(&self, sql: &str) -> Result<String, String> {
        let auth = format!("{CH_USER}:{CH_PASSWORD}");
        use base64::Engine as _;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(auth)
        );
        let (status, body) = try_http_request(
            &self.addr,
            "POST",
            "/",
            &[("Authorization", &basic)],
            sql.as_bytes(),
        )
        .map_err(|e| format!("connection: {e}"))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    }

    /// Runs `sql` (a SELECT, or DDL with `IF NOT EXISTS`) and returns its
    /// text answer. A broken connection is tried again (seen once with
    /// several servers starting beside each other), so `sql` must be safe
    /// to run twice.
    pub fn query(&self, sql: &str) -> String {
        let mut tries = 0;
        loop {
            match self.try_query(sql) {
                Ok(text) => return text,
                Err(e) if e.starts_with("connection:") && tries < 10 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => panic!("ClickHouse query `{sql}`: {e}"),
            }
        }
    }
}

/// Starts clickhouse-server with `dir`'s config.
fn spawn(bin: &str, dir: &std::path::Path, host: Option<&NetHost>) -> Child {
    let config = format!("--config-file={}/config.xml", dir.display());
    let mut command = vec![bin.to_owned(), config];
    if let Some(host) = host {
        let netns = ["ip", "netns", "exec", &host.ns].map(String::from);
        command.splice(0..0, netns);
    }
    spawn_service(&command, dir, "server.log")
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[[pipeline.sink]]` table of a clickhouse sink inserting into
/// `table`, with `extra` guest config entries and `host` lines.
pub fn clickhouse_sink(ch: &ClickHouse, table: &str, extra: &str, host: &str) -> String {
    format!(
        r#"
[[pipeline.sink]]
name = "clickhouse"
component = "{}"
config = {{ url = "http://{addr}", table = "{table}"{extra} }}
http_allow = ["{addr}"]
env = {{ CLICKHOUSE_USER = "{CH_USER}", CLICKHOUSE_PASSWORD = "{CH_PASSWORD}" }}
{host}
"#,
        guest("clickhouse_sink").display(),
        addr = ch.addr,
    )
}

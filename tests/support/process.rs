//! The real `flumen` binary in a child process: started, waited on for
//! commits, stopped, and its log read.

use super::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `flumen run` child process.
pub struct Flumen {
    child: Child,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Flumen {
    /// Runs `flumen <args>`, logging to `log`.
    pub fn start(args: &[&str], log: &Path) -> Self {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_flumen")), args, log)
    }

    /// Runs `flumen <args>` with `env` added, logging to `log`.
    pub fn start_with_env(args: &[&str], log: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flumen"));
        command.envs(env.iter().copied());
        Self::spawn(command, args, log)
    }

    /// `flumen run --config <config>` inside `host`'s network namespace.
    pub fn run_in(host: &NetHost, config: &Path, log: &Path) -> Self {
        let args = ["run", "--config", &config.display().to_string()];
        Self::spawn(host.command(env!("CARGO_BIN_EXE_flumen")), &args, log)
    }

    /// Runs `command` (flumen, perhaps behind `ip netns exec`, which execs
    /// it: the child is flumen itself) with `args`, logging to `log`.
    fn spawn(mut command: Command, args: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let child = command
            .args(args)
            // Consumer debug lines show pauses and commits.
            .env("RUST_LOG", "info,flumen::kafka=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start flumen");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// `flumen run --config <config>`.
    pub fn run(config: &Path, log: &Path) -> Self {
        Self::start(&["run", "--config", &config.display().to_string()], log)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends `signal` (`STOP`, `CONT`, …) without waiting for anything:
    /// SIGSTOP freezes every thread at once, as a long GC-like stall, a VM
    /// pause or a saturated host would.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// SIGKILL: no drain, no commit, no goodbye to the group.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "flumen did not exit after SIGTERM; log tail:\n{}",
                tail(&self.log_text(), 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Flumen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond(committed offsets)` holds; panics with the log after
/// `timeout`.
pub fn wait_committed(
    flumen: &mut Flumen,
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
    cond: impl Fn(&BTreeMap<i32, i64>) -> bool,
) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = committed(bootstrap, group, topic, partitions);
        if cond(&c) {
            return c;
        }
        assert!(
            flumen.alive(),
            "flumen exited early; log:\n{}",
            flumen.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "timed out; committed {c:?}; log tail:\n{}",
            tail(&flumen.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `flumen run --config <config>` (logging to `log`) until `group` has
/// committed `end` on `topic`, stops it with SIGTERM, asserts a clean exit
/// and returns its log.
pub fn run_until_committed(
    config: &Path,
    log: &Path,
    bootstrap: &str,
    group: &str,
    topic: &str,
    end: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> String {
    let mut flumen = Flumen::run(config, log);
    let partitions = end.keys().max().map_or(0, |p| p + 1);
    wait_committed(
        &mut flumen,
        bootstrap,
        group,
        topic,
        partitions,
        timeout,
        |c| c == end,
    );
    let text = flumen.log_text();
    let status = flumen.terminate();
    assert!(status.success(), "flumen exit status {status}");
    text
}

/// Starts a service the tests run (`command[0]` with the rest as
/// arguments) in `dir`, its output appended to `dir/log` so that a restart
/// keeps the first run's lines.
pub fn spawn_service(command: &[String], dir: &Path, log: &str) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(log))
        .expect("service log");
    Command::new(&command[0])
        .args(&command[1..])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", command[0]))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `flumen <args>` with `env` added: (success, stdout and stderr
/// together). A panic in flumen fails the test.
pub fn flumen_output(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run flumen");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "flumen panicked:\n{text}");
    (out.status.success(), text)
}

/// Runs `flumen <args>` in `dir`, with its compile cache in `dir/cache` and
/// `env` added: (success, stdout, stderr). A panic in flumen fails the test.
pub fn flumen_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .current_dir(dir)
        .env("FLUMEN_CACHE_DIR", dir.join("cache"))
        .envs(env.iter().copied())
        .output()
        .expect("run flumen");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "flumen panicked:\n{stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

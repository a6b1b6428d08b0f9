//! A broker whose data survives its own death: the tansu binary the other
//! tests use, storing topics, records and committed offsets in a bucket of
//! a SeaweedFS (`--storage-engine s3://…`) instead of in memory. SIGKILL
//! it and start it again on the same port, and a consumer finds its
//! committed offsets and every acknowledged record where they were. (Its
//! S3 storage keeps no SCRAM credentials: see [`super::sasl`].)

use super::*;
use std::process::{Child, Command, Stdio};

/// tansu on a loopback port, storing in its own SeaweedFS.
pub struct DurableBroker {
    child: Option<Child>,
    store: SeaweedFs,
    dir: tempfile::TempDir,
    /// `127.0.0.1:port`, the same across restarts.
    pub bootstrap: String,
}

/// The bucket tansu stores in.
const BUCKET: &str = "tansu";

impl DurableBroker {
    /// Starts a SeaweedFS and tansu storing in it, waiting until tansu
    /// listens.
    pub fn start() -> Self {
        let store = SeaweedFs::start();
        store.create_bucket(BUCKET);
        let mut broker = Self {
            child: None,
            store,
            dir: tempfile::tempdir().expect("tempdir"),
            bootstrap: format!("127.0.0.1:{}", free_port()),
        };
        broker.start_again();
        broker
    }

    /// Kills tansu (SIGKILL: nothing is flushed or said goodbye to).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts tansu (again) on the same port and storage, waiting until it
    /// listens.
    pub fn start_again(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("tansu log");
        let storage = format!("s3://{BUCKET}/");
        let mut tansu = Command::new(tansu_bin());
        tansu.current_dir(self.dir.path());
        let child = tansu_broker(&mut tansu, &self.bootstrap, &self.bootstrap, &storage)
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT", &self.store.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        wait_listening(&self.bootstrap);
    }

    /// tansu's log, every run of it.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

//! A SeaweedFS server (`weed server -s3`) for the s3 sink's tests: a real
//! S3 API on a loopback port that checks SigV4 signatures against an
//! identity file. The tests create buckets and read objects back through
//! its filer's plain HTTP API, independently of the sink's own S3 client.

use super::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the identity file grants.
pub const S3_ACCESS_KEY: &str = "AKIAFLUMENTEST";
/// Its secret.
pub const S3_SECRET_KEY: &str = "flumen-test-secret-key";

/// A running SeaweedFS (master, volume, filer and S3 gateway).
pub struct SeaweedFs {
    child: Child,
    /// `weed` and its arguments, to start it again.
    command: Vec<String>,
    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub endpoint: String,
    /// `127.0.0.1:PORT` of the filer.
    filer: String,
    _dir: tempfile::TempDir,
}

impl SeaweedFs {
    /// Starts it (scripts/fetch-services.sh installs `weed`) on loopback,
    /// waiting until its S3 gateway answers.
    pub fn start() -> Self {
        Self::start_at("127.0.0.1")
    }

    /// Starts it listening on `ip` (a network namespace's address: call
    /// from a thread inside that namespace).
    pub fn start_at(ip: &str) -> Self {
        Self::start_with(ip, true)
    }

    /// Starts it on `ip` with no identities: it checks no signature, so a
    /// proxy may change a signed request (see
    /// [`super::SlowLink::strip_if_none_match`]). For measurements only.
    pub fn start_open_at(ip: &str) -> Self {
        Self::start_with(ip, false)
    }

    fn start_with(ip: &str, signed: bool) -> Self {
        let bin = repo().join(".tools/weed/weed");
        assert!(
            bin.exists(),
            "{} missing: run scripts/fetch-services.sh",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = dir.path().join("identities.json");
        std::fs::write(
            &ids,
            format!(
                r#"{{"identities":[{{"name":"flumen","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("identities");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let [s3, master, volume, filer] = [(); 4].map(|()| free_port());
        let arg = |k: &str, v: u16| format!("-{k}={v}");
        let mut command: Vec<String> = vec![bin.display().to_string(), "server".into()];
        command.extend([format!("-ip={ip}"), format!("-ip.bind={ip}"), "-s3".into()]);
        command.push(format!("-dir={}", data.display()));
        if signed {
            command.push(format!("-s3.config={}", ids.display()));
        }
        command.extend([
            arg("s3.port", s3),
            arg("master.port", master),
            arg("volume.port", volume),
            arg("filer.port", filer),
            // gRPC ports default to port + 10000: pick them too, so that
            // two servers (parallel tests) do not collide.
            arg("master.port.grpc", free_port()),
            arg("volume.port.grpc", free_port()),
            arg("filer.port.grpc", free_port()),
            arg("s3.port.grpc", free_port()),
        ]);
        // Its Iceberg and Lance catalogs would take fixed ports.
        command.extend(
            [
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-volume.max=0",
                "-master.volumeSizeLimitMB=256",
            ]
            .map(String::from),
        );
        let child = spawn_service(&command, dir.path(), "weed.log");
        let mut store = Self {
            child,
            command,
            endpoint: format!("http://{ip}:{s3}"),
            filer: format!("{ip}:{filer}"),
            _dir: dir,
        };
        store.wait_ready();
        store
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let s3 = self.endpoint.trim_start_matches("http://").to_owned();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("weed exited ({status}) at start: {}", self.log());
            }
            let filer_up = std::net::TcpStream::connect(&self.filer).is_ok();
            if filer_up && std::net::TcpStream::connect(&s3).is_ok() {
                // The filer must also reach a volume server to store files.
                let ready = try_http_request(&self.filer, "PUT", "/flumen-probe/ready", &[], b"ok");
                if matches!(ready, Ok((201, _))) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "weed not ready in 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same ports and data, waiting until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_service(&self.command, self._dir.path(), "weed.log");
        self.wait_ready();
    }

    /// weed's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Creates `bucket` (a folder under the filer's `/buckets`).
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = http_request(
            &self.filer,
            "POST",
            &format!("/buckets/{bucket}/"),
            &[],
            b"",
        );
        assert!(
            status == 201 || status == 200,
            "create bucket {bucket}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Every object in `bucket`: (key, bytes), by key.
    pub fn objects(&self, bucket: &str) -> Vec<(String, Vec<u8>)> {
        let root = format!("/buckets/{bucket}");
        let mut keys = Vec::new();
        self.walk(&root, &mut keys);
        keys.sort();
        keys.into_iter()
            .map(|path| {
                let (status, body) = http_request(&self.filer, "GET", &path, &[], b"");
                assert_eq!(status, 200, "GET {path}");
                (path[root.len() + 1..].to_owned(), body)
            })
            .collect()
    }

    /// Collects the files under `dir` (a filer path), recursively.
    fn walk(&self, dir: &str, out: &mut Vec<String>) {
        let mut last = String::new();
        loop {
            let path = format!("{dir}/?limit=1000&lastFileName={last}");
            let (status, body) = http_request(
                &self.filer,
                "GET",
                &path,
                &[("Accept", "application/json")],
                b"",
            );
            assert_eq!(status, 200, "list {dir}");
            let listing: serde_json::Value = serde_json::from_slice(&body).expect("a listing");
            for e in listing["Entries"].as_array().into_iter().flatten() {
                let full = e["FullPath"].as_str().expect("FullPath").to_owned();
                // Go's os.ModeDir.
                if e["Mode"].as_u64().unwrap_or(0) & (1 << 31) != 0 {
                    // A multipart upload in progress lives in `.uploads`.
                    if !full.ends_with("/.uploads") {
                        self.walk(&full, out);
                    }
                } else {
                    out.push(full);
                }
            }
            if !listing["ShouldDisplayLoadMore"].as_bool().unwrap_or(false) {
                return;
            }
            last = listing["LastFileName"].as_str().unwrap_or("").to_owned();
        }
    }

    /// Stops the server.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[[pipeline.sink]]` table of an s3 sink writing to `bucket` of
/// `store`, with `extra` guest config entries (`, key = "…"`) and `host`
/// lines (delivery settings) after the table's own.
pub fn s3_sink(store: &SeaweedFs, bucket: &str, extra: &str, host: &str) -> String {
    let authority = store.endpoint.trim_start_matches("http://");
    format!(
        r#"
[[pipeline.sink]]
name = "s3"
component = "{}"
config = {{ endpoint = "{}", bucket = "{bucket}"{extra} }}
http_allow = ["{authority}"]
env = {{ AWS_ACCESS_KEY_ID = "{S3_ACCESS_KEY}", AWS_SECRET_ACCESS_KEY = "{S3_SECRET_KEY}" }}
{host}
"#,
        guest("s3_sink").display(),
        store.endpoint,
    )
}

/// Where this module's binary is, for messages.
pub fn weed_bin() -> PathBuf {
    repo().join(".tools/weed/weed")
}

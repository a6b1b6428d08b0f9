//! A test's scratch directory and the pipeline configs written into it.

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

/// A scratch directory for one test run, holding `out/` (the directory the
/// sinks are granted as `/out`), the config and the log.
pub struct Workdir {
    dir: tempfile::TempDir,
    /// The sinks' output directory.
    pub out: PathBuf,
}

impl Workdir {
    /// Creates the directory and its `out/`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out dir");
        Self { dir, out }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `flumen.toml` for one pipeline (commits every 200 ms) and
    /// returns its path.
    pub fn config(&self, bootstrap: &str, topic: &str, group: &str, components: String) -> PathBuf {
        let path = self.path("flumen.toml");
        PipelineToml {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            group: group.into(),
            out: self.out.clone(),
            components,
            commit_interval_ms: 200,
        }
        .write(&path);
        path
    }
}

/// Writes a pipeline config for the tests.
pub struct PipelineToml {
    /// Broker.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Group id.
    pub group: String,
    /// Output directory granted as `/out`.
    pub out: PathBuf,
    /// `[[pipeline.interceptor]]` and `[[pipeline.sink]]` tables.
    pub components: String,
    /// Periodic commit interval.
    pub commit_interval_ms: u64,
}

impl PipelineToml {
    /// Renders and writes the config to `path`.
    pub fn write(&self, path: &Path) {
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 3000, "heartbeat.interval.ms" = 500, "max.poll.interval.ms" = 10000 }}

[[pipeline]]
name = "e2e"
topics = ["{topic}"]
group_id = "{group}"
batch = {{ max_events = 500, max_wait_ms = 20 }}
commit = {{ interval_ms = {commit_interval_ms} }}
retry = {{ initial_backoff_ms = 20, max_backoff_ms = 200 }}
drain_timeout_ms = 5000
# Small, so that partitions pause and resume often under the tests' load.
max_queued_events = 1000
{components}
"#,
            bootstrap = self.bootstrap,
            topic = self.topic,
            group = self.group,
            components = self
                .components
                .replace("$OUT", &self.out.display().to_string()),
            commit_interval_ms = self.commit_interval_ms,
        );
        std::fs::write(path, text).expect("write config");
    }
}

/// A sink table writing JSON lines to `/out/<name>-<partition>.jsonl` with
/// the given guest.
pub fn file_sink(name: &str, guest_name: &str, extra: &str) -> String {
    file_sink_at(name, &guest(guest_name), extra)
}

/// [`file_sink`] with the component given by its path (a guest in another
/// language).
pub fn file_sink_at(name: &str, component: &Path, extra: &str) -> String {
    format!(
        r#"
[[pipeline.sink]]
name = "{name}"
component = "{}"
config = {{ path = "/out/{name}-%{{partition}}.jsonl"{extra} }}
dirs = [{{ host = "$OUT", guest = "/out" }}]
"#,
        component.display()
    )
}

/// The filter interceptor dropping `level=debug` events.
pub fn drop_debug() -> String {
    format!(
        r#"
[[pipeline.interceptor]]
name = "drop-debug"
component = "{}"
config = {{ pattern = "^debug$", field = "header:level" }}
"#,
        guest("filter").display()
    )
}

//! The brokers a test runs against: librdkafka's in-process mock cluster
//! and a tansu broker process.

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

/// A Kafka-protocol broker for a test.
pub enum Broker {
    /// librdkafka's in-process mock cluster.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A tansu broker process on a loopback port.
    Tansu { child: Child, bootstrap: String },
    /// A broker the test manages itself, at this address.
    External(String),
}

impl Broker {
    /// Starts the in-process mock cluster.
    pub fn mock() -> Self {
        Broker::Mock(MockCluster::new(1).expect("mock cluster"))
    }

    /// Starts tansu (memory storage) from scripts/fetch-tansu.sh's download.
    pub fn tansu() -> Self {
        let bin = tansu_bin();
        let port = free_port();
        let bootstrap = format!("127.0.0.1:{port}");
        let child = tansu_broker(
            &mut Command::new(bin),
            &bootstrap,
            &bootstrap,
            "memory://tansu/",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
        wait_listening(&bootstrap);
        Broker::Tansu { child, bootstrap }
    }

    /// The mock cluster, for fault injection; panics on tansu.
    pub fn mock_cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        match self {
            Broker::Mock(m) => m,
            _ => panic!("fault injection needs the mock cluster"),
        }
    }

    /// `host:port` to bootstrap from.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap_servers(),
            Broker::Tansu { bootstrap, .. } | Broker::External(bootstrap) => bootstrap.clone(),
        }
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Broker::Mock(m) => m.create_topic(topic, partitions, 1).expect("create topic"),
            Broker::Tansu { bootstrap, .. } | Broker::External(bootstrap) => {
                let admin: AdminClient<DefaultClientContext> =
                    client(bootstrap).create().expect("admin client");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
                let r = rt
                    .block_on(admin.create_topics(&topics, &AdminOptions::new()))
                    .expect("create_topics");
                for t in r {
                    t.expect("topic created");
                }
            }
        }
    }
}

/// The tansu binary: `$FLUMEN_TANSU`, else the one scripts/fetch-tansu.sh
/// puts in `.tools/`.
pub fn tansu_bin() -> PathBuf {
    let bin = std::env::var_os("FLUMEN_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/tansu/tansu"));
    assert!(
        bin.exists(),
        "{} missing: run scripts/fetch-tansu.sh",
        bin.display()
    );
    bin
}

/// Adds `broker` and its listener, advertised address (both `host:port`)
/// and storage engine (`memory://tansu/`, `s3://bucket/`) to `cmd`: the
/// tansu binary, or `ip netns exec NS` before it.
pub fn tansu_broker<'a>(
    cmd: &'a mut Command,
    listen: &str,
    advertised: &str,
    storage: &str,
) -> &'a mut Command {
    let (listen, advertised) = (format!("tcp://{listen}"), format!("tcp://{advertised}"));
    cmd.args(["broker", "--listener-url", &listen])
        .args(["--advertised-listener-url", &advertised])
        .args(["--storage-engine", storage])
}

/// Waits until something accepts connections at `addr` (a process the test
/// started); panics after 20 s.
pub fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Tansu { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

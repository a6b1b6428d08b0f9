//! Reading what the file sinks wrote.

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

/// Every line sink `name` wrote (its files `<name>-<partition>.jsonl` in
/// `dir`), parsed, each file in order. Every line must be complete JSON.
pub fn read_sink_json(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    read_lines(dir, name, false)
}

/// Like [`read_sink_json`] for output still being written: a last line
/// without its newline is being appended right now and is skipped.
pub fn read_sink_live(dir: &Path, name: &str) -> Vec<(i32, i64)> {
    positions(&read_lines(dir, name, true))
}

/// `(partition, offset)` of every line sink `name` wrote, each file in order.
pub fn read_sink(dir: &Path, name: &str) -> Vec<(i32, i64)> {
    positions(&read_sink_json(dir, name))
}

fn positions(lines: &[serde_json::Value]) -> Vec<(i32, i64)> {
    lines
        .iter()
        .map(|v| {
            (
                v["partition"].as_i64().expect("partition") as i32,
                v["offset"].as_i64().expect("offset"),
            )
        })
        .collect()
}

fn read_lines(dir: &Path, name: &str, live: bool) -> Vec<serde_json::Value> {
    let files = flumen::cli::demo::output_files(dir, name).expect("read output dir");
    let mut lines = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read sink output");
        let mut parts: Vec<&str> = text.split('\n').collect();
        let unterminated = parts.pop().unwrap_or_default();
        assert!(
            live || unterminated.is_empty(),
            "{}: last line has no newline: {unterminated}",
            path.display()
        );
        for l in parts {
            lines.push(
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: line is not JSON ({e}): {l}", path.display())),
            );
        }
    }
    lines
}

/// Asserts per-partition offset order in a sink's output (a redelivery after
/// a restart may restart the order once, at a lower offset).
pub fn assert_in_order(lines: &[(i32, i64)], sink: &str) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in lines {
        if let Some(&prev) = last.get(&p) {
            assert!(o > prev, "{sink}: partition {p} offset {o} after {prev}");
        }
        last.insert(p, o);
    }
}

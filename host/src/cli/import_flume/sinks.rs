//! Flume sinks as the guest library's sinks.

use super::properties::{kind_of, Agent};
use super::write::{strings, GuestTable};
use toml_edit::{Array, InlineTable, Value};

/// One sink's table, or `None` (listed in `unmapped`). `servers` is the
/// cluster of the config's `[kafka]`, the one a Kafka sink writes to.
pub fn sink_table(
    a: &Agent<'_>,
    sink: &str,
    k: &str,
    servers: &str,
    unmapped: &mut Vec<String>,
) -> Option<GuestTable> {
    let get = |key: &str| a.get(&format!("{k}.{key}"));
    let raw_type = get("type").unwrap_or("unset");
    let table =
        |component: &str, config: Vec<(&str, String)>, extra: Vec<(&'static str, Value)>| {
            let mut t = GuestTable::new("sink", sink, component);
            t.config = config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            t.extra = extra;
            t
        };
    match kind_of(raw_type) {
        "null" => Some(table("null_sink", Vec::new(), Vec::new())),
        "logger" => Some(table(
            "logger_sink",
            vec![("max_bytes", get("maxBytesToLog").unwrap_or("16").to_owned())],
            Vec::new(),
        )),
        "file_roll" => {
            let dir = get("sink.directory").unwrap_or("CHANGE-ME");
            let serializer = get("sink.serializer").unwrap_or("TEXT");
            if !serializer.eq_ignore_ascii_case("text") {
                unmapped.push(format!(
                    "sink `{sink}`: serializer {serializer}: written as the raw value per line \
                     (Flume's TEXT)"
                ));
            }
            let prefix = get("sink.pathManager.prefix").unwrap_or(sink);
            let extension = get("sink.pathManager.extension").unwrap_or("log");
            Some(table(
                "file_roll_sink",
                vec![
                    (
                        "path",
                        format!("/out/{prefix}-%{{partition}}-%{{seq}}.{extension}"),
                    ),
                    ("format", "value".to_owned()),
                    (
                        "roll_interval_s",
                        get("sink.rollInterval").unwrap_or("30").to_owned(),
                    ),
                ],
                vec![("dirs", dirs(dir, "/out"))],
            ))
        }
        "http" => {
            let url = get("endpoint").unwrap_or("http://CHANGE-ME/");
            let host = url
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
                .unwrap_or("");
            let mut config = vec![("url", url.to_owned())];
            if let Some(t) = get("requestTimeout") {
                config.push(("timeout_ms", t.to_owned()));
            }
            Some(table(
                "http_sink",
                config,
                vec![("http_allow", strings([host]))],
            ))
        }
        "hdfs" => Some(super::hdfs_sink::s3_sink(
            sink,
            |key| get(key).map(str::to_owned),
            unmapped,
        )),
        "kafka_sink" => {
            // Flume's default topic, so that a config relying on it still
            // names the same one.
            let topic = get("kafka.topic").unwrap_or("default-flume-topic");
            if let Some(other) = get("kafka.bootstrap.servers").filter(|s| *s != servers) {
                unmapped.push(format!(
                    "sink `{sink}`: brokers {other}: flumen's Kafka sink writes to the [kafka] \
                     cluster ({servers})"
                ));
            }
            for key in [
                "allowTopicOverride",
                "topicHeader",
                "useFlumeEventFormat",
                "partitionIdHeader",
                "defaultPartitionId",
            ] {
                if let Some(v) = get(key) {
                    unmapped.push(format!(
                        "sink `{sink}`: {key} = {v}: not supported (the record keeps its key, \
                         headers and value; the producer picks the partition by key)"
                    ));
                }
            }
            Some(table(
                "kafka_sink",
                vec![("topic", topic.to_owned())],
                vec![("kafka_produce", strings([topic]))],
            ))
        }
        _ => {
            unmapped.push(format!(
                "sink `{sink}` (type {raw_type}): no counterpart in the guest library; write one \
                 with `flumen new --kind sink`"
            ));
            // Never a sink that discards: a component path that does not
            // exist, named for what to replace, so that `check` and `run`
            // refuse the config until it is.
            let mut t = table(
                &format!("REPLACE-ME-{}-sink", kind_of(raw_type)),
                Vec::new(),
                Vec::new(),
            );
            t.note = Some(format!(
                "Replace this component: Flume's {raw_type} sink has no counterpart in \
                 flumen's guest library, and until it is replaced `check` and `run` refuse \
                 this config."
            ));
            Some(t)
        }
    }
}

/// A `dirs` grant of `host` as `guest`.
fn dirs(host: &str, guest: &str) -> Value {
    let mut grant = InlineTable::new();
    grant.insert("host", host.into());
    grant.insert("guest", guest.into());
    Value::Array(Array::from_iter([Value::InlineTable(grant)]))
}

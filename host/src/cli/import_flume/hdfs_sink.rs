//! Flume's HDFS sink as flumen's `s3` sink, for `flumen import-flume`:
//! object storage is where the HDFS sink's data goes today. What carries
//! over faithfully: the path and its escapes (as the object key), the file
//! prefix and suffix, rolling by count, size and interval (as the sink's
//! `batch`), gzip, and event or local time. What does not is listed.

use super::write::{integers, strings, GuestTable};

/// The escapes the `s3` sink's key takes, from Flume's: the date and time
/// ones, and the `topic` and `partition` headers Flume's Kafka source sets.
const KEPT: [&str; 8] = [
    "%Y",
    "%m",
    "%d",
    "%H",
    "%M",
    "%S",
    "%{topic}",
    "%{partition}",
];

/// The s3 sink's table for HDFS sink `sink`, whose properties `get` reads
/// (`hdfs.path`, …): its `config` pairs and its other lines. What does not
/// carry over is pushed to `unmapped`.
pub fn s3_sink(
    sink: &str,
    get: impl Fn(&str) -> Option<String>,
    unmapped: &mut Vec<String>,
) -> GuestTable {
    let mut gap = |what: String| unmapped.push(format!("sink `{sink}` (HDFS → s3): {what}"));
    let path = get("hdfs.path").unwrap_or_else(|| "flume/events".to_owned());
    // hdfs://namenode:8020/flume/events/%Y → flume/events/%Y
    let folder = path
        .split_once("://")
        .map_or(path.as_str(), |(_, rest)| {
            rest.split_once('/').map_or("", |(_, p)| p)
        })
        .trim_matches('/')
        .to_owned();
    for esc in escapes(&folder) {
        if !KEPT.contains(&esc.as_str()) {
            gap(format!(
                "path escape {esc} has no counterpart in object keys (they take %{{topic}}, \
                 %{{partition}}, %{{start_offset}}, %{{end_offset}} and %Y %m %d %H %M %S); it \
                 is left in the key as text: edit `key`"
            ));
        }
    }
    let prefix = get("hdfs.filePrefix").unwrap_or_else(|| "FlumeData".to_owned());
    let suffix = get("hdfs.fileSuffix").unwrap_or_default();
    let file_type = get("hdfs.fileType").unwrap_or_else(|| "SequenceFile".to_owned());
    let codec = get("hdfs.codeC").map(|c| c.to_ascii_lowercase());
    let compression = match (file_type.as_str(), codec.as_deref()) {
        ("CompressedStream", Some("gzip" | "gzipcodec")) => "gzip",
        ("CompressedStream", Some(other)) => {
            gap(format!(
                "codec {other}: objects are gzip-compressed instead (or zstd)"
            ));
            "gzip"
        }
        ("DataStream", _) => "none",
        (other, _) => {
            gap(format!(
                "fileType {other}: objects hold JSON lines (the event with its metadata), not \
                 Hadoop SequenceFiles"
            ));
            "none"
        }
    };
    let mut folder_part = folder.clone();
    if !folder_part.is_empty() {
        folder_part.push('/');
    }
    // Flume numbers files with a counter; object keys need the topic,
    // partition and start offset to be unique (and exactly once).
    let key = format!("{folder_part}{prefix}.%{{topic}}-%{{partition}}-%{{start_offset}}{suffix}");
    let mut config = vec![
        ("endpoint", "https://CHANGE-ME".to_owned()),
        ("bucket", "CHANGE-ME".to_owned()),
        ("key", key),
        ("compression", compression.to_owned()),
    ];
    if get("hdfs.useLocalTimeStamp").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        config.push(("time", "now".to_owned()));
    }
    if let Some(t) = get("hdfs.callTimeout") {
        config.push(("timeout_ms", t));
    }
    // Flume's defaults: 30 s, 1024 bytes, 10 events; 0 turns one off.
    let number = |key: &str, default: u64| {
        get(key)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    let (interval_s, size, count) = (
        number("hdfs.rollInterval", 30),
        number("hdfs.rollSize", 1024),
        number("hdfs.rollCount", 10),
    );
    // flumen's batch bounds are all on; "never" becomes the largest value
    // it takes (an hour), or a bound that memory can hold.
    let max_wait_ms = if interval_s == 0 {
        3_600_000
    } else {
        (interval_s * 1000).min(3_600_000)
    };
    let max_bytes = if size == 0 { 64 << 20 } else { size };
    let max_events = if count == 0 { 1_000_000 } else { count };
    if interval_s == 0 || size == 0 || count == 0 {
        gap(
            "a roll setting of 0 (never) becomes flumen's largest bound: an hour, 64 MiB or \
             1,000,000 events"
                .into(),
        );
    }
    for key in [
        "hdfs.timeZone",
        "hdfs.round",
        "hdfs.roundValue",
        "hdfs.roundUnit",
        "hdfs.idleTimeout",
        "hdfs.writeFormat",
        "hdfs.kerberosPrincipal",
        "hdfs.kerberosKeytab",
        "hdfs.proxyUser",
        "hdfs.inUsePrefix",
        "hdfs.inUseSuffix",
        "hdfs.closeTries",
        "hdfs.retryInterval",
        "serializer",
    ] {
        if let Some(v) = get(key) {
            gap(format!(
                "{key} = {v}: not supported (UTC dates; an object appears whole when stored; \
                 credentials come from the environment)"
            ));
        }
    }
    gap(
        "set `endpoint`, `bucket` and `http_allow` to your store, and grant the credentials \
         (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            .into(),
    );
    // Bounded above, so they fit an i64.
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let extra = vec![
        ("http_allow", strings(["CHANGE-ME"])),
        (
            "env_from_host",
            strings(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        ),
        (
            "batch",
            integers(&[
                ("max_events", int(max_events)),
                ("max_bytes", int(max_bytes)),
                ("max_wait_ms", int(max_wait_ms)),
            ]),
        ),
    ];
    let mut table = GuestTable::new("sink", sink, "s3_sink");
    table.config = config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    table.extra = extra;
    table
}

/// The `%x` and `%{name}` escapes in `path`, in order.
fn escapes(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        rest = &rest[i + 1..];
        if let Some(name) = rest.strip_prefix('{') {
            let end = name.find('}').unwrap_or(name.len());
            out.push(format!("%{{{}}}", &name[..end]));
            rest = &name[end.min(name.len())..];
        } else if let Some(c) = rest.chars().next() {
            out.push(format!("%{c}"));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn maps_path_rolls_and_codec() {
        let props: HashMap<&str, &str> = [
            ("hdfs.path", "hdfs://nn:8020/flume/%{topic}/%Y-%m-%d/%y"),
            ("hdfs.filePrefix", "events"),
            ("hdfs.fileSuffix", ".jsonl.gz"),
            ("hdfs.fileType", "CompressedStream"),
            ("hdfs.codeC", "gzip"),
            ("hdfs.rollInterval", "600"),
            ("hdfs.rollSize", "134217728"),
            ("hdfs.rollCount", "0"),
            ("hdfs.timeZone", "Europe/Paris"),
        ]
        .into();
        let mut unmapped = Vec::new();
        let table = super::s3_sink("k", |k| props.get(k).map(|v| v.to_string()), &mut unmapped);
        let (config, extra) = (table.config, table.extra);
        let get = |k: &str| {
            config
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("key"),
            Some(
                "flume/%{topic}/%Y-%m-%d/%y/events.%{topic}-%{partition}-%{start_offset}.jsonl.gz"
            )
        );
        assert_eq!(get("compression"), Some("gzip"));
        let batch = extra
            .iter()
            .find(|(k, _)| *k == "batch")
            .map(|(_, v)| v.to_string());
        assert_eq!(
            batch.as_deref().map(str::trim),
            Some("{ max_events = 1000000, max_bytes = 134217728, max_wait_ms = 600000 }")
        );
        let gaps = unmapped.join("\n");
        assert!(gaps.contains("path escape %y"), "{gaps}");
        assert!(gaps.contains("hdfs.timeZone"), "{gaps}");
        assert!(!gaps.contains("%Y has"), "{gaps}");
    }
}

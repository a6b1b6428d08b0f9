//! Reading a bucket back: the events a test produces for the s3 sink, and
//! how many times each is in the bucket, whatever format and compression
//! the objects are in.

use super::*;
use std::collections::BTreeMap;
use std::io::Read;

/// Events of `size` bytes spread over `partitions`: a JSON value naming
/// its index, padded.
pub fn records(n: usize, partitions: i32, size: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let head = format!("{{\"i\":{i},\"pad\":\"");
            let pad = size.saturating_sub(head.len() + 2);
            let value = format!("{head}{}\"}}", "x".repeat(pad));
            Record {
                partition: (i % partitions as usize) as i32,
                key: Some(format!("k{}", i % 97).into_bytes()),
                value: Some(value.into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect()
}

/// An object's events as JSON values (`partition`, `offset`, `value`, …):
/// its JSON lines, decompressed by its key's extension, or its Parquet
/// rows.
pub fn object_lines(key: &str, body: &[u8]) -> Vec<serde_json::Value> {
    if key.ends_with(".parquet") {
        return parquet_rows(key, body);
    }
    let mut text = Vec::new();
    if key.ends_with(".gz") {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut text)
            .unwrap_or_else(|e| panic!("{key}: not gzip: {e}"));
    } else if key.ends_with(".zst") {
        text = zstd::decode_all(body).unwrap_or_else(|e| panic!("{key}: not zstd: {e}"));
    } else {
        text = body.to_vec();
    }
    String::from_utf8(text)
        .expect("UTF-8 lines")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{key}: {e}: {l}")))
        .collect()
}

/// A Parquet object's rows, with the columns the JSON lines have.
fn parquet_rows(key: &str, body: &[u8]) -> Vec<serde_json::Value> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let reader = SerializedFileReader::new(bytes::Bytes::from(body.to_vec()))
        .unwrap_or_else(|e| panic!("{key}: not Parquet: {e}"));
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|row| {
            let row = row.expect("a row");
            let mut out = serde_json::Map::new();
            for (name, field) in row.get_column_iter() {
                let v = match field {
                    Field::Int(i) => serde_json::json!(i),
                    Field::Long(l) => serde_json::json!(l),
                    Field::TimestampMillis(t) => serde_json::json!(t),
                    Field::Str(s) => serde_json::json!(s),
                    Field::Bytes(b) => serde_json::json!(String::from_utf8_lossy(b.data())),
                    Field::Null => serde_json::Value::Null,
                    other => panic!("{key}: column {name} holds {other:?}"),
                };
                out.insert(name.clone(), v);
            }
            serde_json::Value::Object(out)
        })
        .collect()
}

/// How many times each `(partition, offset)` is in the bucket, checking on
/// the way that every object holds one partition's events in offset order
/// and is named by its first offset.
pub fn bucket_counts(store: &SeaweedFs, bucket: &str) -> BTreeMap<(i32, i64), usize> {
    let mut counts = BTreeMap::new();
    // `.flumen/` holds the exactly_once start-up check's scratch objects,
    // which a kill between its write and its removal leaves behind.
    for (key, body) in store.objects(bucket) {
        if key.starts_with(".flumen/") {
            continue;
        }
        let lines = object_lines(&key, &body);
        assert!(!lines.is_empty(), "{key} is empty");
        let at = |l: &serde_json::Value| {
            (
                l["partition"].as_i64().expect("partition") as i32,
                l["offset"].as_i64().expect("offset"),
            )
        };
        let first = at(&lines[0]);
        assert!(
            key.contains(&format!("{:020}", first.1)),
            "{key} is not named by its first offset {}",
            first.1
        );
        for w in lines.windows(2) {
            let (a, b) = (at(&w[0]), at(&w[1]));
            assert!(a.0 == b.0 && a.1 < b.1, "{key}: {a:?} then {b:?}");
        }
        for l in &lines {
            *counts.entry(at(l)).or_insert(0) += 1;
        }
    }
    counts
}

/// Lost and duplicated events: what `acked` produced against `counts`.
pub fn lost_and_duplicated(
    acked: &[(i32, i64)],
    counts: &BTreeMap<(i32, i64), usize>,
) -> (usize, usize) {
    let lost = acked.iter().filter(|e| !counts.contains_key(e)).count();
    let dup = counts.values().map(|&n| n.saturating_sub(1)).sum();
    (lost, dup)
}

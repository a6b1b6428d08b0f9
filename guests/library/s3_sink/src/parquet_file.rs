//! An object's bytes as a Parquet file: one row per event, one row group
//! per object, with the columns `topic`, `partition`, `offset`,
//! `timestamp` (milliseconds, UTC; null without one), `key` and `value`
//! (bytes; null when absent) and `headers` (the event's headers as a JSON
//! array, as the JSON lines carry them).

use flumen_guest_common::columns::EventRef;
use flumen_guest_common::headers_json;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

/// The schema every object has.
pub const SCHEMA: &str = "message event {
    REQUIRED BYTE_ARRAY topic (UTF8);
    REQUIRED INT32 partition;
    REQUIRED INT64 offset;
    OPTIONAL INT64 timestamp (TIMESTAMP(MILLIS,true));
    OPTIONAL BYTE_ARRAY key;
    OPTIONAL BYTE_ARRAY value;
    REQUIRED BYTE_ARRAY headers (UTF8);
}";

/// The codec of a Parquet object, from the `compression` config value.
pub fn codec(name: &str) -> Result<Compression, String> {
    match name {
        "none" => Ok(Compression::UNCOMPRESSED),
        "snappy" => Ok(Compression::SNAPPY),
        "gzip" => Ok(Compression::GZIP(Default::default())),
        other => Err(format!(
            "compression = \"{other}\" is not available with format = \"parquet\" (its zstd \
             needs a C library that does not build for WebAssembly here); use snappy, gzip or \
             none"
        )),
    }
}

/// Writes `events` (of `topic`/`partition`) as one Parquet file.
pub fn write<'a>(
    topic: &str,
    partition: i32,
    events: impl Iterator<Item = EventRef<'a>>,
    codec: Compression,
) -> Result<Vec<u8>, String> {
    let err = |e: parquet::errors::ParquetError| format!("writing Parquet: {e}");
    let mut offsets = Vec::new();
    let mut timestamps = (Vec::new(), Vec::new());
    let mut keys = (Vec::new(), Vec::new());
    let mut values = (Vec::new(), Vec::new());
    let mut headers = Vec::new();
    for e in events {
        offsets.push(e.offset);
        optional(&mut timestamps, e.timestamp);
        optional(&mut keys, e.key.map(|k| ByteArray::from(k.to_vec())));
        optional(&mut values, e.value.map(|v| ByteArray::from(v.to_vec())));
        let h: Vec<(&str, &[u8])> = e.headers().collect();
        headers.push(ByteArray::from(headers_json(&h).into_bytes()));
    }
    let n = offsets.len();
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(err)?);
    let props = Arc::new(WriterProperties::builder().set_compression(codec).build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(err)?;
    let mut group = writer.next_row_group().map_err(err)?;
    let mut column = 0;
    while let Some(mut col) = group.next_column().map_err(err)? {
        let w = &mut col;
        match column {
            0 => {
                w.typed::<ByteArrayType>()
                    .write_batch(&vec![ByteArray::from(topic); n], None, None)
            }
            1 => w
                .typed::<Int32Type>()
                .write_batch(&vec![partition; n], None, None),
            2 => w.typed::<Int64Type>().write_batch(&offsets, None, None),
            3 => w
                .typed::<Int64Type>()
                .write_batch(&timestamps.0, Some(&timestamps.1), None),
            4 => w
                .typed::<ByteArrayType>()
                .write_batch(&keys.0, Some(&keys.1), None),
            5 => w
                .typed::<ByteArrayType>()
                .write_batch(&values.0, Some(&values.1), None),
            _ => w.typed::<ByteArrayType>().write_batch(&headers, None, None),
        }
        .map_err(err)?;
        col.close().map_err(err)?;
        column += 1;
    }
    group.close().map_err(err)?;
    writer.into_inner().map_err(err)
}

/// Appends an optional value: the value if present, and its definition
/// level (1 present, 0 null).
fn optional<T>(col: &mut (Vec<T>, Vec<i16>), v: Option<T>) {
    col.1.push(i16::from(v.is_some()));
    col.0.extend(v);
}

#[cfg(test)]
mod tests {
    use flumen_guest_common::columns::{Batch, ColumnsRef, HAS_KEY, HAS_TIMESTAMP, HAS_VALUE};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    #[test]
    fn writes_a_readable_file() {
        let batch = Batch::new(ColumnsRef {
            offsets: &[7, 8],
            timestamps: &[1_700_000_000_000, 0],
            presence: &[HAS_KEY | HAS_VALUE | HAS_TIMESTAMP, HAS_VALUE],
            keys: b"k",
            key_ends: &[1, 1],
            values: b"hello\xff",
            value_ends: &[5, 6],
            header_ends: &[1, 1],
            header_names: b"h",
            header_name_ends: &[1],
            header_values: b"v",
            header_value_ends: &[1],
        })
        .expect("well formed");
        for codec in ["none", "snappy", "gzip"] {
            let bytes = super::write("t", 3, batch.iter(), super::codec(codec).expect("codec"))
                .expect("written");
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("readable");
            assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
            let rows: Vec<_> = reader
                .get_row_iter(None)
                .expect("rows")
                .map(|r| r.expect("row"))
                .collect();
            let fields: Vec<(String, Field)> = rows[0]
                .get_column_iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect();
            assert_eq!(fields[0].1, Field::Str("t".into()));
            assert_eq!(fields[1].1, Field::Int(3));
            assert_eq!(fields[2].1, Field::Long(7));
            assert_eq!(fields[4].1, Field::Bytes(b"k".to_vec().into()));
            assert_eq!(
                fields[6].1,
                Field::Str("[{\"name\":\"h\",\"value\":\"v\"}]".into())
            );
            let second: Vec<Field> = rows[1].get_column_iter().map(|(_, f)| f.clone()).collect();
            assert_eq!((&second[3], &second[4]), (&Field::Null, &Field::Null));
            assert_eq!(second[5], Field::Bytes(b"\xff".to_vec().into()));
        }
        assert!(super::codec("zstd")
            .unwrap_err()
            .contains("snappy, gzip or none"));
    }
}

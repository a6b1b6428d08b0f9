//! Writing events as a file of a layout's columns.

use super::layout::{Column, Kind, Layout};
use base64::Engine as _;
use flumen_guest_common::columns::EventRef;
use flumen_guest_common::headers_json;
use parquet::basic::Compression;
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use schema_codec::avro::text::{parse_date, parse_decimal, parse_time, parse_timestamp};
use serde_json::Value;
use std::sync::Arc;

impl Layout {
    /// Writes `events` (of `topic`/`partition`; each value the JSON form of
    /// a datum of this layout's schema) as one Parquet file. A value that
    /// does not fit is an error naming its offset and column.
    pub fn write<'a>(
        &self,
        topic: &str,
        partition: i32,
        events: impl Iterator<Item = EventRef<'a>>,
        codec: Compression,
    ) -> Result<Vec<u8>, String> {
        let err = |e: parquet::errors::ParquetError| format!("writing Parquet: {e}");
        let events: Vec<EventRef<'a>> = events.collect();
        let mut values = Vec::with_capacity(events.len());
        for e in &events {
            let json: Value = match e.value {
                Some(v) => serde_json::from_slice(v).map_err(|x| {
                    format!("offset {}: the value is not JSON ({x}); typed columns need events decoded by schema_decode", e.offset)
                })?,
                None => Value::Null,
            };
            values.push(json);
        }
        let props = Arc::new(WriterProperties::builder().set_compression(codec).build());
        let mut writer =
            SerializedFileWriter::new(Vec::new(), self.schema.clone(), props).map_err(err)?;
        let mut group = writer.next_row_group().map_err(err)?;
        let mut index = 0;
        while let Some(mut col) = group.next_column().map_err(err)? {
            self.write_nth(&mut col, index, topic, partition, &events, &values)
                .map_err(err_or_parquet)?;
            col.close().map_err(err)?;
            index += 1;
        }
        group.close().map_err(err)?;
        writer.into_inner().map_err(err)
    }
}

impl Layout {
    /// Writes column `index` of the file.
    fn write_nth(
        &self,
        w: &mut parquet::file::writer::SerializedColumnWriter<'_>,
        index: usize,
        topic: &str,
        partition: i32,
        events: &[EventRef<'_>],
        values: &[Value],
    ) -> Result<usize, WriteError> {
        let n = events.len();
        Ok(match index {
            0 => w.typed::<ByteArrayType>().write_batch(
                &vec![ByteArray::from(topic); n],
                None,
                None,
            )?,
            1 => w
                .typed::<Int32Type>()
                .write_batch(&vec![partition; n], None, None)?,
            2 => {
                let offsets: Vec<i64> = events.iter().map(|e| e.offset).collect();
                w.typed::<Int64Type>().write_batch(&offsets, None, None)?
            }
            3 => {
                let (v, d) = optional(events.iter().map(|e| Ok(e.timestamp)))?;
                w.typed::<Int64Type>().write_batch(&v, Some(&d), None)?
            }
            4 => {
                let keys = events
                    .iter()
                    .map(|e| Ok(e.key.map(|k| ByteArray::from(k.to_vec()))));
                let (v, d) = optional(keys)?;
                w.typed::<ByteArrayType>().write_batch(&v, Some(&d), None)?
            }
            5 => {
                let headers: Vec<ByteArray> = events
                    .iter()
                    .map(|e| {
                        let h: Vec<(&str, &[u8])> = e.headers().collect();
                        ByteArray::from(headers_json(&h).into_bytes())
                    })
                    .collect();
                w.typed::<ByteArrayType>()
                    .write_batch(&headers, None, None)?
            }
            i => {
                let c = &self.columns[i - 6];
                let cells = values.iter().zip(events).map(|(v, e)| {
                    let cell = c
                        .path
                        .iter()
                        .try_fold(v, |v, k| v.get(k))
                        .filter(|v| !v.is_null());
                    Ok((cell, e.offset))
                });
                write_column(w, c, cells)?
            }
        })
    }
}

/// A column write's error: a value that does not fit (already a message),
/// or Parquet's.
enum WriteError {
    Misfit(String),
    Parquet(parquet::errors::ParquetError),
}

impl From<parquet::errors::ParquetError> for WriteError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        WriteError::Parquet(e)
    }
}

fn err_or_parquet(e: WriteError) -> String {
    match e {
        WriteError::Misfit(m) => m,
        WriteError::Parquet(e) => format!("writing Parquet: {e}"),
    }
}

/// Optional values and their definition levels.
fn optional<T>(
    cells: impl Iterator<Item = Result<Option<T>, WriteError>>,
) -> Result<(Vec<T>, Vec<i16>), WriteError> {
    let (mut values, mut levels) = (Vec::new(), Vec::new());
    for cell in cells {
        let cell = cell?;
        levels.push(i16::from(cell.is_some()));
        values.extend(cell);
    }
    Ok((values, levels))
}

/// Writes one value column from its cells (a JSON value or none, and the
/// event's offset for messages).
fn write_column<'v>(
    w: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    c: &Column,
    cells: impl Iterator<Item = Result<(Option<&'v Value>, i64), WriteError>>,
) -> Result<usize, WriteError> {
    let misfit = |offset: i64, what: &str, v: &Value| {
        WriteError::Misfit(format!(
            "offset {offset}: column `{}`: expected {what}, found {v}",
            c.name
        ))
    };
    // Each arm converts every cell, then writes the column.
    macro_rules! column {
        ($t:ty, $convert:expr) => {{
            let (values, levels) = optional(cells.map(|cell| {
                let (cell, offset) = cell?;
                cell.map(|v| $convert(v, offset)).transpose()
            }))?;
            Ok(w.typed::<$t>().write_batch(&values, Some(&levels), None)?)
        }};
    }
    fn as_text<'v>(v: &'v Value, offset: i64, column: &str) -> Result<&'v str, WriteError> {
        v.as_str().ok_or_else(|| {
            WriteError::Misfit(format!(
                "offset {offset}: column `{column}`: expected a string, found {v}"
            ))
        })
    }
    match c.kind {
        Kind::Bool => column!(BoolType, |v: &Value, o| v.as_bool().ok_or_else(|| misfit(
            o,
            "a boolean",
            v
        ))),
        Kind::Int32 => column!(Int32Type, |v: &Value, o| v
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| misfit(o, "an int", v))),
        Kind::Int64 => column!(Int64Type, |v: &Value, o| v
            .as_i64()
            .ok_or_else(|| misfit(o, "a long", v))),
        Kind::Float => column!(FloatType, |v: &Value, o| float(v)
            .map(|f| f as f32)
            .ok_or_else(|| misfit(o, "a float", v))),
        Kind::Double => column!(DoubleType, |v: &Value, o| float(v)
            .ok_or_else(|| misfit(o, "a double", v))),
        Kind::Utf8 => column!(ByteArrayType, |v: &Value, o| as_text(v, o, &c.name)
            .map(|s| ByteArray::from(s.as_bytes().to_vec()))),
        Kind::Json => column!(ByteArrayType, |v: &Value, _| Ok::<_, WriteError>(
            ByteArray::from(v.to_string().into_bytes())
        )),
        Kind::Bytes => column!(ByteArrayType, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(ByteArray::from)
                .map_err(|_| misfit(o, "base64", v))
        }),
        Kind::Decimal { scale, .. } => column!(ByteArrayType, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            parse_decimal(s, scale as usize)
                .map(|d| ByteArray::from(d.to_signed_bytes_be()))
                .map_err(|e| misfit(o, &format!("a decimal ({e})"), v))
        }),
        Kind::Date => column!(Int32Type, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            parse_date(s)
                .ok()
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(|| misfit(o, "a date", v))
        }),
        Kind::Time(1_000_000) => column!(Int32Type, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            parse_time(s)
                .map(|n| (n / 1_000_000) as i32)
                .map_err(|_| misfit(o, "a time", v))
        }),
        Kind::Time(per) => column!(Int64Type, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            parse_time(s)
                .map(|n| n / per)
                .map_err(|_| misfit(o, "a time", v))
        }),
        Kind::Timestamp(per, utc) => column!(Int64Type, |v: &Value, o| {
            let s = as_text(v, o, &c.name)?;
            parse_timestamp(s, utc)
                .ok()
                .and_then(|n| i64::try_from(n.div_euclid(i128::from(per))).ok())
                .ok_or_else(|| misfit(o, "a timestamp", v))
        }),
    }
}

/// A float as the rendering writes it: a number, or the name of one JSON
/// cannot hold.
fn float(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) if s == "NaN" => Some(f64::NAN),
        Value::String(s) if s == "Infinity" => Some(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.as_f64(),
    }
}

//! Parquet objects whose value is typed columns, taken from the Avro
//! schema the value was written with (`value_columns = "schema"`; the
//! events decoded by `schema_decode`, which leaves the schema id in the
//! `flumen.value.schema_id` header).
//!
//! The layout, as `docs/sinks/s3.md` documents it:
//! - one column per leaf field of the value's record, nested records
//!   flattened into dotted names (`address.city`);
//! - every value column optional: null where the event's field is null
//!   (a `["null", …]` union), or missing;
//! - boolean, int, long, float, double as BOOLEAN, INT32, INT64, FLOAT,
//!   DOUBLE; string, enum and uuid as UTF8 strings; bytes and fixed as
//!   BYTE_ARRAY; decimal as DECIMAL(precision, scale) in a BYTE_ARRAY; date
//!   as DATE; time-millis/-micros as TIME; timestamp-millis/-micros/-nanos
//!   as TIMESTAMP (UTC; local-timestamp-* not UTC);
//! - an array, a map, a union of several types, and a duration: its JSON
//!   text, as a UTF8 string;
//! - the event's metadata in `_topic`, `_partition`, `_offset`,
//!   `_timestamp`, `_key` and `_headers` (underscored, so that no field of
//!   the value can take their names).

mod layout;
mod write;

pub use layout::Layout;

use crate::flumen::pipeline::schemas::{by_guid, by_id, Error, Format};
use crate::s3::S3Error;
use flumen_guest_common::columns::{Batch, EventRef};
use schema_codec::avro::AvroSchema;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

/// The header `schema_decode` leaves the value's schema id (or GUID) in.
const SCHEMA_ID: &str = "flumen.value.schema_id";

/// The layouts of the schemas met so far, by the reference in the
/// `flumen.value.schema_id` header.
#[derive(Default)]
pub struct Layouts {
    known: RefCell<HashMap<String, Rc<Layout>>>,
}

impl Layouts {
    /// The schema reference of `e`, if it has one.
    fn reference<'a>(e: &EventRef<'a>) -> Option<&'a [u8]> {
        e.headers().find(|(n, _)| *n == SCHEMA_ID).map(|(_, v)| v)
    }

    /// `range` of `batch` cut into runs of events with the same schema:
    /// an object holds one schema's columns.
    pub fn runs(batch: &Batch<'_>, range: Range<usize>) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut last = None;
        for i in range {
            let here = batch.get(i).and_then(|e| Self::reference(&e));
            match runs.last_mut() {
                Some(run) if last == Some(here) => run.end = i + 1,
                _ => runs.push(i..i + 1),
            }
            last = Some(here);
        }
        runs
    }

    /// The layout of `e`'s schema, fetched and parsed on first use.
    pub fn of(&self, e: &EventRef<'_>) -> Result<Rc<Layout>, S3Error> {
        let refused = |message: String| S3Error::Refused {
            code: "schema".into(),
            message,
        };
        let reference = Self::reference(e).ok_or_else(|| {
            refused(format!(
                "offset {}: no `{SCHEMA_ID}` header: value_columns = \"schema\" writes events \
                 decoded by schema_decode, which names their schema there",
                e.offset
            ))
        })?;
        let reference = String::from_utf8_lossy(reference).into_owned();
        if let Some(layout) = self.known.borrow().get(&reference) {
            return Ok(layout.clone());
        }
        let fetched = match reference.parse::<u32>() {
            Ok(id) => by_id(id),
            Err(_) => by_guid(&reference),
        };
        let schema = match fetched {
            Ok(s) => s,
            // A registry outage is the destination's: the events wait.
            Err(Error::Unavailable(m)) => {
                return Err(S3Error::Retry(format!(
                    "the schema registry is unavailable: {m}"
                )))
            }
            Err(Error::NotFound(m) | Error::NotGranted(m)) => return Err(refused(m)),
        };
        if schema.format != Format::Avro {
            return Err(refused(format!(
                "schema {reference} is not Avro: typed Parquet columns are taken from Avro schemas"
            )));
        }
        let refs: Vec<&str> = schema.references.iter().map(|r| r.text.as_str()).collect();
        let layout = AvroSchema::parse(&schema.text, &refs)
            .and_then(|s| Layout::of(&s))
            .map_err(|m| refused(format!("schema {reference}: {m}")))?;
        let layout = Rc::new(layout);
        self.known.borrow_mut().insert(reference, layout.clone());
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumen_guest_common::columns::{Batch, ColumnsRef, HAS_VALUE};
    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    #[test]
    fn writes_typed_columns_from_the_schema() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"id","type":"long"},
                {"name":"nick","type":["null","string"]},
                {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
                {"name":"address","type":{"type":"record","name":"A","fields":[{"name":"zip","type":"int"}]}},
                {"name":"tags","type":{"type":"array","items":"string"}}
            ]}"#,
            &[],
        )
        .unwrap();
        let layout = Layout::of(&schema).unwrap();
        let names: Vec<&str> = layout.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "nick", "at", "price", "address.zip", "tags"]);
        let values = concat!(
            r#"{"id":1,"nick":null,"at":"2024-05-01T12:00:00.250Z","price":"-12.30","address":{"zip":7},"tags":["a"]}"#,
            r#"{"id":2,"nick":"x","at":"1970-01-01T00:00:00.000Z","price":"0.05","address":{"zip":8},"tags":[]}"#
        );
        let first = values.find("}{").unwrap() + 1;
        let value_ends = [first as u32, values.len() as u32];
        let batch = Batch::new(ColumnsRef {
            offsets: &[10, 11],
            timestamps: &[0, 0],
            presence: &[HAS_VALUE, HAS_VALUE],
            keys: b"",
            key_ends: &[0, 0],
            values: values.as_bytes(),
            value_ends: &value_ends,
            header_ends: &[0, 0],
            header_names: b"",
            header_name_ends: &[],
            header_values: b"",
            header_value_ends: &[],
        })
        .unwrap();
        let bytes = layout
            .write("t", 0, batch.iter(), Compression::SNAPPY)
            .unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let row: Vec<(String, Field)> = reader
            .get_row_iter(None)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .get_column_iter()
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect();
        let get = |name: &str| {
            row.iter()
                .find(|(n, _)| n == name)
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        assert_eq!(get("_offset"), Field::Long(10));
        assert_eq!(get("id"), Field::Long(1));
        assert_eq!(get("nick"), Field::Null);
        assert_eq!(get("at"), Field::TimestampMillis(1_714_564_800_250));
        assert_eq!(get("address.zip"), Field::Int(7));
        assert_eq!(get("tags"), Field::Str("[\"a\"]".into()));
        assert!(
            matches!(get("price"), Field::Decimal(_)),
            "{:?}",
            get("price")
        );

        // A value that does not fit names its offset and column.
        let wrong = r#"{"id":"one","nick":null,"at":"2024-05-01T12:00:00.250Z","price":"1.00","address":{"zip":1},"tags":[]}"#;
        let wrong_ends = [wrong.len() as u32];
        let batch = Batch::new(ColumnsRef {
            offsets: &[12],
            timestamps: &[0],
            presence: &[HAS_VALUE],
            keys: b"",
            key_ends: &[0],
            values: wrong.as_bytes(),
            value_ends: &wrong_ends,
            header_ends: &[0],
            header_names: b"",
            header_name_ends: &[],
            header_values: b"",
            header_value_ends: &[],
        })
        .unwrap();
        let e = layout
            .write("t", 0, batch.iter(), Compression::SNAPPY)
            .unwrap_err();
        assert!(e.contains("offset 12: column `id`: expected a long"), "{e}");
    }
}

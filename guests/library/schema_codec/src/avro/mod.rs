//! Avro datums into JSON, by a documented rendering (`docs/schemas.md`).
//!
//! Avro's own JSON encoding wraps every union value in an object naming
//! its branch and writes bytes as ISO-8859-1 strings; neither is what a
//! sink or a guest in another language wants. The rendering here is the
//! one Confluent's deserializers give a program (a union is its value, a
//! logical type is the value it stands for), written as JSON:
//! - null, boolean, int, long and string as themselves; float and double as
//!   numbers, except NaN and the infinities, which JSON cannot hold, as the
//!   strings `"NaN"`, `"Infinity"` and `"-Infinity"`;
//! - bytes and fixed as standard base64 with padding;
//! - an enum as its symbol; a union as the value of its branch;
//! - a record as an object with its fields in schema order; a map as an
//!   object; an array as an array;
//! - decimal as a string holding the exact number (`"-12.30"`: as many
//!   fraction digits as the scale), because a JSON number loses digits;
//! - date as `"YYYY-MM-DD"`; time-millis and time-micros as
//!   `"HH:MM:SS.mmm"` and `"HH:MM:SS.uuuuuu"`;
//! - timestamp-millis/-micros/-nanos as RFC 3339 in UTC with 3, 6 or 9
//!   fraction digits (`"2024-05-01T12:00:00.250Z"`), and the local-timestamp
//!   kinds the same without the `Z`;
//! - uuid as its lowercase hyphenated text; duration as an object
//!   `{"months":…,"days":…,"millis":…}`.

mod decode;
mod encode;
pub mod text;

use apache_avro::schema::{Name, Namespace, Schema};
use std::collections::HashMap;

/// A writer schema, parsed with the schemas it references.
pub struct AvroSchema {
    schema: Schema,
    /// Every named type of it and its references, by full name, for
    /// `Schema::Ref`s.
    names: HashMap<Name, Schema>,
}

impl AvroSchema {
    /// Parses `text` with `references` (their texts, each after those it
    /// references itself).
    pub fn parse(text: &str, references: &[&str]) -> Result<Self, String> {
        let (schema, referenced) = if references.is_empty() {
            let schema =
                Schema::parse_str(text).map_err(|e| format!("invalid Avro schema: {e}"))?;
            (schema, Vec::new())
        } else {
            Schema::parse_str_with_list(text, references)
                .map_err(|e| format!("invalid Avro schema or references: {e}"))?
        };
        let mut names = HashMap::new();
        for s in referenced.iter().chain([&schema]) {
            collect_names(s, &None, &mut names);
        }
        Ok(Self { schema, names })
    }

    /// Decodes one datum and renders it as JSON text. The whole of `bytes`
    /// must be the datum: anything after it is an error, as a short one is.
    ///
    /// The datum is read straight into JSON along the writer's schema, with
    /// no tree of values in between: building apache-avro's `Value` and
    /// then a `serde_json::Value` held every field three times.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        decode::datum(&self.schema, &self.names, bytes)
    }

    /// The parsed writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// `schema` itself, or the named type it refers to (in namespace `ns`).
    pub fn resolve<'s>(&'s self, schema: &'s Schema, ns: &Namespace) -> Option<&'s Schema> {
        match schema {
            Schema::Ref { name } => named(&self.names, name, ns).ok().map(|(s, _)| s),
            other => Some(other),
        }
    }

    /// Encodes `json` (in the rendering `decode` gives) as a datum of this
    /// schema; an error names the value's path.
    pub fn encode(&self, json: &serde_json::Value) -> Result<Vec<u8>, String> {
        encode::datum(&self.schema, &self.names, json)
    }
}

/// The named type a `Schema::Ref` to `name` (in namespace `ns`) refers to,
/// and the namespace inside it; an error if the schema does not define it.
fn named<'s>(
    names: &'s HashMap<Name, Schema>,
    name: &Name,
    ns: &Namespace,
) -> Result<(&'s Schema, Namespace), String> {
    let full = name.fully_qualified_name(ns);
    match names.get(&full) {
        Some(schema) => Ok((schema, full.namespace)),
        None => Err(format!(
            "the schema refers to `{}`, which it does not define",
            full.fullname(None)
        )),
    }
}

/// Adds every named type of `s` (in namespace `ns`) to `out`, by full name.
fn collect_names(s: &Schema, ns: &Namespace, out: &mut HashMap<Name, Schema>) {
    match s {
        Schema::Record(r) => {
            let full = r.name.fully_qualified_name(ns);
            for f in &r.fields {
                collect_names(&f.schema, &full.namespace, out);
            }
            out.insert(full, s.clone());
        }
        Schema::Enum(e) => {
            out.insert(e.name.fully_qualified_name(ns), s.clone());
        }
        Schema::Fixed(f) => {
            out.insert(f.name.fully_qualified_name(ns), s.clone());
        }
        Schema::Decimal(d) => collect_names(&d.inner, ns, out),
        Schema::Array(a) => collect_names(&a.items, ns, out),
        Schema::Map(m) => collect_names(&m.types, ns, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, ns, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::text::decimal_text;
    use super::*;
    use serde_json::json;

    fn decode(schema: &AvroSchema, datum: &[u8]) -> Result<serde_json::Value, String> {
        schema
            .decode(datum)
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn zigzag(v: i64) -> Vec<u8> {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return out;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    #[test]
    fn renders_logical_types_as_documented() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"d","type":{"type":"int","logicalType":"date"}},
                {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"m","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
                {"name":"u","type":["null",{"type":"string","logicalType":"uuid"}]},
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
                {"name":"f","type":{"type":"fixed","name":"F","size":2}},
                {"name":"tm","type":{"type":"int","logicalType":"time-millis"}}
            ]}"#,
            &[],
        )
        .unwrap();
        let mut datum = zigzag(19_844); // 2024-05-01
        datum.extend(zigzag(1_714_564_800_250)); // 2024-05-01T12:00:00.250Z
        datum.extend(zigzag(2)); // decimal: 2 bytes, -1230 (0xfb32)
        datum.extend([0xfb, 0x32]);
        datum.extend(zigzag(1)); // union branch 1: uuid
        let uuid = "6b1f2a5e-8c1d-4f7a-9d6e-0a1b2c3d4e5f";
        datum.extend(zigzag(uuid.len() as i64));
        datum.extend(uuid.as_bytes());
        datum.extend(zigzag(1)); // enum B
        datum.extend([0xff, 0x00]); // fixed
        datum.extend(zigzag(3_723_004)); // 01:02:03.004
        let json = decode(&schema, &datum).unwrap();
        assert_eq!(
            json,
            json!({"d": "2024-05-01", "t": "2024-05-01T12:00:00.250Z", "m": "-12.30",
                   "u": uuid, "e": "B", "f": "/wA=", "tm": "01:02:03.004"})
        );
    }

    #[test]
    fn a_short_or_long_payload_is_an_error() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#,
            &[],
        )
        .unwrap();
        let mut datum = zigzag(5);
        datum.extend(b"hello");
        assert_eq!(decode(&schema, &datum).unwrap(), json!({"s": "hello"}));
        let e = schema.decode(&datum[..3]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        datum.push(0);
        let e = schema.decode(&datum).unwrap_err();
        assert!(e.contains("1 bytes after"), "{e}");
    }

    #[test]
    fn references_resolve_across_schemas() {
        let address = r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}"#;
        let order = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"Address"}]}"#;
        let schema = AvroSchema::parse(order, &[address]).unwrap();
        let mut datum = zigzag(4);
        datum.extend(b"Oslo");
        assert_eq!(
            decode(&schema, &datum).unwrap(),
            json!({"to": {"city": "Oslo"}})
        );
    }

    #[test]
    fn encoding_the_decoded_json_gives_the_same_bytes() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"d","type":{"type":"int","logicalType":"date"}},
                {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"m","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
                {"name":"u","type":["null",{"type":"string","logicalType":"uuid"}]},
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
                {"name":"f","type":{"type":"fixed","name":"F","size":2}},
                {"name":"a","type":{"type":"array","items":"double"}},
                {"name":"n","type":{"type":"map","values":"long"}}
            ]}"#,
            &[],
        )
        .unwrap();
        let value = json!({"d": "2024-05-01", "t": "2024-05-01T12:00:00.250Z", "m": "-12.30",
            "u": null, "e": "B", "f": "/wA=", "a": [1.5, -0.25], "n": {"a": 1, "b": -2}});
        let bytes = schema.encode(&value).unwrap();
        assert_eq!(decode(&schema, &bytes).unwrap(), value);
        assert_eq!(
            schema.encode(&decode(&schema, &bytes).unwrap()).unwrap(),
            bytes
        );
        let mut wrong = value.clone();
        wrong["e"] = json!("Z");
        let e = schema.encode(&wrong).unwrap_err();
        assert!(e.starts_with("$.e:") && e.contains("not a symbol"), "{e}");
        wrong = value.clone();
        wrong.as_object_mut().unwrap().remove("d");
        assert_eq!(
            schema.encode(&wrong).unwrap_err(),
            "$.d: missing, and the field has no default"
        );
    }

    #[test]
    fn decimals_keep_every_digit() {
        let big: num_bigint::BigInt = "-5".parse().unwrap();
        assert_eq!(decimal_text(&big, 3), "-0.005");
        assert_eq!(
            decimal_text(&"12345678901234567890123".parse().unwrap(), 2),
            "123456789012345678901.23"
        );
        assert_eq!(decimal_text(&"7".parse().unwrap(), 0), "7");
    }
}

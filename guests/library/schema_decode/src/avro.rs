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

use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value;
use base64::Engine as _;
use flumen_guest_common::dates::civil;
use serde_json::{json, Map, Number, Value as Json};
use std::collections::HashMap;

/// A writer schema, parsed with the schemas it references.
pub struct AvroSchema {
    schema: Schema,
    /// The schemas it references, for `Schema::Ref`s across them.
    referenced: Vec<Schema>,
}

impl AvroSchema {
    /// Parses `text` with `references` (their texts, each after those it
    /// references itself).
    pub fn parse(text: &str, references: &[&str]) -> Result<Self, String> {
        if references.is_empty() {
            let schema = Schema::parse_str(text).map_err(|e| format!("invalid Avro schema: {e}"))?;
            return Ok(Self {
                schema,
                referenced: Vec::new(),
            });
        }
        let (schema, referenced) = Schema::parse_str_with_list(text, references)
            .map_err(|e| format!("invalid Avro schema or references: {e}"))?;
        Ok(Self { schema, referenced })
    }

    /// Decodes one datum and renders it as JSON. The whole of `bytes` must
    /// be the datum: anything after it is an error, as a short one is.
    pub fn decode(&self, bytes: &[u8]) -> Result<Json, String> {
        // References first: the resolver checks each schema's references
        // against the names it has already seen.
        let mut all: Vec<&Schema> = self.referenced.iter().collect();
        all.push(&self.schema);
        let mut reader = Exact { rest: bytes, short: false };
        let value = apache_avro::from_avro_datum_schemata(&self.schema, all.clone(), &mut reader, None);
        // apache-avro reads a string or bytes value cut short as null
        // rather than failing, so the reader notices running out itself.
        if reader.short {
            return Err("the Avro payload is truncated: it ends inside the datum its schema describes".into());
        }
        let value = value.map_err(|e| format!("the Avro payload does not match its schema: {e}"))?;
        if !reader.rest.is_empty() {
            return Err(format!(
                "the Avro payload has {} bytes after the datum its schema describes (corrupt, or \
                 written with another schema)",
                reader.rest.len()
            ));
        }
        let names = names(&all);
        render(&value, &self.schema, &names)
    }
}

/// A reader over a payload that remembers being asked for more than it had.
struct Exact<'a> {
    rest: &'a [u8],
    short: bool,
}

impl std::io::Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rest.is_empty() && !buf.is_empty() {
            self.short = true;
        }
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// Every named type of `schemas`, by full name.
fn names<'s>(schemas: &[&'s Schema]) -> HashMap<Name, &'s Schema> {
    fn walk<'s>(s: &'s Schema, out: &mut HashMap<Name, &'s Schema>) {
        match s {
            Schema::Record(r) => {
                out.insert(r.name.clone(), s);
                for f in &r.fields {
                    walk(&f.schema, out);
                }
            }
            Schema::Enum(e) => {
                out.insert(e.name.clone(), s);
            }
            Schema::Fixed(f) => {
                out.insert(f.name.clone(), s);
            }
            Schema::Decimal(d) => walk(&d.inner, out),
            Schema::Array(a) => walk(&a.items, out),
            Schema::Map(m) => walk(&m.types, out),
            Schema::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    for s in schemas {
        walk(s, &mut out);
    }
    out
}

/// Renders `value`, written with `schema`, as JSON.
fn render(value: &Value, schema: &Schema, names: &HashMap<Name, &Schema>) -> Result<Json, String> {
    let schema = match schema {
        Schema::Ref { name } => *names
            .get(name)
            .ok_or_else(|| format!("the schema refers to `{}`, which it does not define", name.fullname(None)))?,
        s => s,
    };
    Ok(match (value, schema) {
        (Value::Union(i, inner), Schema::Union(u)) => {
            let branch = u
                .variants()
                .get(*i as usize)
                .ok_or_else(|| format!("union branch {i} is not in the schema"))?;
            render(inner, branch, names)?
        }
        (Value::Record(fields), Schema::Record(r)) => {
            let mut object = Map::with_capacity(fields.len());
            for ((name, v), field) in fields.iter().zip(&r.fields) {
                object.insert(name.clone(), render(v, &field.schema, names)?);
            }
            Json::Object(object)
        }
        (Value::Array(items), Schema::Array(a)) => Json::Array(
            items
                .iter()
                .map(|v| render(v, &a.items, names))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(entries), Schema::Map(m)) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            // Sorted, so that the same map renders the same text each time.
            keys.sort();
            let mut object = Map::with_capacity(entries.len());
            for k in keys {
                object.insert(k.clone(), render(&entries[k], &m.types, names)?);
            }
            Json::Object(object)
        }
        (Value::Decimal(d), Schema::Decimal(s)) => {
            Json::String(decimal_text(&num_bigint::BigInt::from(d.clone()), s.scale))
        }
        (Value::Decimal(_), _) => return Err("a decimal value without a decimal schema".into()),
        (other, _) => scalar(other)?,
    })
}

/// A value whose rendering needs nothing from its schema.
fn scalar(value: &Value) -> Result<Json, String> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Long(l) => json!(l),
        Value::Float(f) => float(f64::from(*f)),
        Value::Double(d) => float(*d),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) | Value::Fixed(_, b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Enum(_, symbol) => Json::String(symbol.clone()),
        Value::Uuid(u) => Json::String(u.hyphenated().to_string()),
        Value::Date(days) => Json::String(date(i64::from(*days))),
        Value::TimeMillis(ms) => Json::String(time_of_day(i64::from(*ms) * 1_000_000, 3)),
        Value::TimeMicros(us) => Json::String(time_of_day(us * 1_000, 6)),
        Value::TimestampMillis(v) => Json::String(timestamp(i128::from(*v) * 1_000_000, 3, true)),
        Value::TimestampMicros(v) => Json::String(timestamp(i128::from(*v) * 1_000, 6, true)),
        Value::TimestampNanos(v) => Json::String(timestamp(i128::from(*v), 9, true)),
        Value::LocalTimestampMillis(v) => Json::String(timestamp(i128::from(*v) * 1_000_000, 3, false)),
        Value::LocalTimestampMicros(v) => Json::String(timestamp(i128::from(*v) * 1_000, 6, false)),
        Value::LocalTimestampNanos(v) => Json::String(timestamp(i128::from(*v), 9, false)),
        Value::Duration(d) => json!({
            "months": u32::from(d.months()),
            "days": u32::from(d.days()),
            "millis": u32::from(d.millis()),
        }),
        Value::BigDecimal(b) => Json::String(b.to_string()),
        other => return Err(format!("an Avro value that does not fit its schema: {other:?}")),
    })
}

/// A float as a JSON number, or the name of a value JSON cannot hold.
fn float(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// `unscaled × 10^-scale`, exactly, with `scale` fraction digits.
fn decimal_text(unscaled: &num_bigint::BigInt, scale: usize) -> String {
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// Days since the epoch as `YYYY-MM-DD`.
fn date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Nanoseconds since midnight as `HH:MM:SS` and `digits` fraction digits.
fn time_of_day(nanos: i64, digits: u32) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) / 10_i64.pow(9 - digits);
    format!(
        "{:02}:{:02}:{:02}.{frac:0width$}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        width = digits as usize
    )
}

/// Nanoseconds since the epoch as RFC 3339 with `digits` fraction digits.
fn timestamp(nanos: i128, digits: u32, utc: bool) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as i64;
    let day = time_of_day(secs.rem_euclid(86_400) * 1_000_000_000 + frac, digits);
    format!("{}T{day}{}", date(secs.div_euclid(86_400)), if utc { "Z" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let json = schema.decode(&datum).unwrap();
        assert_eq!(
            json,
            json!({"d": "2024-05-01", "t": "2024-05-01T12:00:00.250Z", "m": "-12.30",
                   "u": uuid, "e": "B", "f": "/wA=", "tm": "01:02:03.004"})
        );
    }

    #[test]
    fn a_short_or_long_payload_is_an_error() {
        let schema = AvroSchema::parse(r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#, &[]).unwrap();
        let mut datum = zigzag(5);
        datum.extend(b"hello");
        assert_eq!(schema.decode(&datum).unwrap(), json!({"s": "hello"}));
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
        assert_eq!(schema.decode(&datum).unwrap(), json!({"to": {"city": "Oslo"}}));
    }

    #[test]
    fn decimals_keep_every_digit() {
        let big: num_bigint::BigInt = "-5".parse().unwrap();
        assert_eq!(decimal_text(&big, 3), "-0.005");
        assert_eq!(decimal_text(&"12345678901234567890123".parse().unwrap(), 2), "123456789012345678901.23");
        assert_eq!(decimal_text(&"7".parse().unwrap(), 0), "7");
    }
}

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

use apache_avro::schema::{Name, Namespace, Schema};
use base64::Engine as _;
use flumen_guest_common::dates::civil;
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
        let mut out = Vec::with_capacity(bytes.len() * 2);
        let mut r = Reader { rest: bytes };
        Walk { names: &self.names }.value(&mut r, &self.schema, &None, &mut out)?;
        if !r.rest.is_empty() {
            return Err(format!(
                "the Avro payload has {} bytes after the datum its schema describes (corrupt, or \
                 written with another schema)",
                r.rest.len()
            ));
        }
        Ok(out)
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

/// The unread rest of a datum.
struct Reader<'a> {
    rest: &'a [u8],
}

const TRUNCATED: &str =
    "the Avro payload is truncated: it ends inside the datum its schema describes";

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(TRUNCATED.into());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// A zigzag varint: Avro's int and long.
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err("the Avro payload holds a varint longer than 10 bytes (corrupt)".into())
    }

    fn int(&mut self) -> Result<i32, String> {
        let v = self.long()?;
        i32::try_from(v)
            .map_err(|_| format!("the Avro payload holds {v} where its schema says int (corrupt)"))
    }

    /// A length: a long that must not be negative.
    fn len(&mut self) -> Result<usize, String> {
        let v = self.long()?;
        usize::try_from(v)
            .map_err(|_| format!("the Avro payload holds a negative length {v} (corrupt)"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| "the Avro payload holds a string that is not UTF-8 (corrupt)".into())
    }

    /// The item count of the next block of an array or map (0: the end).
    /// A negative count is followed by the block's size in bytes.
    fn block(&mut self) -> Result<u64, String> {
        let n = self.long()?;
        if n < 0 {
            self.long()?;
        }
        Ok(n.unsigned_abs())
    }
}

/// Writes `s` as a JSON string.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Bytes as a base64 JSON string.
fn base64_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .as_bytes(),
    );
    out.push(b'"');
}

/// The walk of a datum along its schema.
struct Walk<'s> {
    names: &'s HashMap<Name, Schema>,
}

impl Walk<'_> {
    /// Reads one value written with `schema` (in namespace `ns`) and writes
    /// its JSON.
    fn value(
        &self,
        r: &mut Reader<'_>,
        schema: &Schema,
        ns: &Namespace,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match schema {
            Schema::Null => out.extend_from_slice(b"null"),
            Schema::Boolean => match r.take(1)?[0] {
                0 => out.extend_from_slice(b"false"),
                1 => out.extend_from_slice(b"true"),
                b => {
                    return Err(format!(
                        "the Avro payload holds {b} where its schema says boolean (corrupt)"
                    ))
                }
            },
            Schema::Int => out.extend_from_slice(r.int()?.to_string().as_bytes()),
            Schema::Long => out.extend_from_slice(r.long()?.to_string().as_bytes()),
            Schema::Float => {
                let b = r.take(4)?;
                float(out, f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            }
            Schema::Double => {
                let b: [u8; 8] = r.take(8)?.try_into().map_err(|_| TRUNCATED)?;
                float(out, f64::from_le_bytes(b));
            }
            Schema::Bytes => base64_str(out, r.bytes()?),
            Schema::String => json_str(out, r.string()?),
            Schema::Uuid => json_str(out, &r.string()?.to_ascii_lowercase()),
            Schema::Fixed(f) => base64_str(out, r.take(f.size)?),
            Schema::Enum(e) => {
                let i = r.int()?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| e.symbols.get(i))
                    .ok_or_else(|| {
                        format!(
                            "the Avro payload holds enum index {i}, and `{}` has {} symbols \
                             (corrupt)",
                            e.name.name,
                            e.symbols.len()
                        )
                    })?;
                json_str(out, symbol);
            }
            Schema::Union(u) => {
                let i = r.long()?;
                let branch = usize::try_from(i)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| {
                        format!(
                            "the Avro payload holds union branch {i} of {} (corrupt)",
                            u.variants().len()
                        )
                    })?;
                self.value(r, branch, ns, out)?;
            }
            Schema::Record(rec) => {
                let inner = rec.name.fully_qualified_name(ns).namespace;
                out.push(b'{');
                for (k, field) in rec.fields.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    json_str(out, &field.name);
                    out.push(b':');
                    self.value(r, &field.schema, &inner, out)?;
                }
                out.push(b'}');
            }
            Schema::Array(a) => {
                out.push(b'[');
                let mut first = true;
                loop {
                    let n = r.block()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        self.value(r, &a.items, ns, out)?;
                    }
                }
                out.push(b']');
            }
            Schema::Map(m) => {
                // Keys sorted, so that the same map renders the same text
                // whatever order it was written in.
                let mut entries: Vec<(&str, Vec<u8>)> = Vec::new();
                loop {
                    let n = r.block()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let key = r.string()?;
                        let mut value = Vec::new();
                        self.value(r, &m.types, ns, &mut value)?;
                        entries.push((key, value));
                    }
                }
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (k, (key, value)) in entries.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    json_str(out, key);
                    out.push(b':');
                    out.extend_from_slice(value);
                }
                out.push(b'}');
            }
            Schema::Decimal(d) => {
                let raw = match &*d.inner {
                    Schema::Fixed(f) => r.take(f.size)?,
                    _ => r.bytes()?,
                };
                let unscaled = num_bigint::BigInt::from_signed_bytes_be(raw);
                json_str(out, &decimal_text(&unscaled, d.scale));
            }
            Schema::Date => json_str(out, &date(i64::from(r.int()?))),
            Schema::TimeMillis => json_str(out, &time_of_day(i64::from(r.int()?) * 1_000_000, 3)),
            Schema::TimeMicros => json_str(out, &time_of_day(r.long()?.saturating_mul(1_000), 6)),
            Schema::TimestampMillis => {
                json_str(out, &timestamp(i128::from(r.long()?) * 1_000_000, 3, true))
            }
            Schema::TimestampMicros => {
                json_str(out, &timestamp(i128::from(r.long()?) * 1_000, 6, true))
            }
            Schema::TimestampNanos => json_str(out, &timestamp(i128::from(r.long()?), 9, true)),
            Schema::LocalTimestampMillis => {
                json_str(out, &timestamp(i128::from(r.long()?) * 1_000_000, 3, false))
            }
            Schema::LocalTimestampMicros => {
                json_str(out, &timestamp(i128::from(r.long()?) * 1_000, 6, false))
            }
            Schema::LocalTimestampNanos => {
                json_str(out, &timestamp(i128::from(r.long()?), 9, false))
            }
            Schema::Duration => {
                let b = r.take(12)?;
                let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                let text = format!(
                    "{{\"months\":{},\"days\":{},\"millis\":{}}}",
                    u(0),
                    u(4),
                    u(8)
                );
                out.extend_from_slice(text.as_bytes());
            }
            Schema::BigDecimal => {
                return Err("the Avro `big-decimal` logical type is not supported".into())
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(ns);
                let named = self.names.get(&full).ok_or_else(|| {
                    format!(
                        "the schema refers to `{}`, which it does not define",
                        full.fullname(None)
                    )
                })?;
                self.value(r, named, &full.namespace, out)?;
            }
        }
        Ok(())
    }
}

/// A float as a JSON number, or the name of a value JSON cannot hold.
fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else if f.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if f > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

/// `unscaled × 10^-scale`, exactly, with `scale` fraction digits.
fn decimal_text(unscaled: &num_bigint::BigInt, scale: usize) -> String {
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
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
    format!(
        "{}T{day}{}",
        date(secs.div_euclid(86_400)),
        if utc { "Z" } else { "" }
    )
}

#[cfg(test)]
mod tests {
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

//! Reading a datum straight into JSON along the writer's schema.

use super::text::{date, decimal_text, time_of_day, timestamp};
use apache_avro::schema::{Name, Namespace, Schema};
use base64::Engine as _;
use std::collections::HashMap;

/// Renders the datum `bytes`, written with `schema` (whose named types are
/// `names`), as JSON text; all of `bytes` must be the datum.
pub(super) fn datum(
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let mut r = Reader { rest: bytes };
    Walk { names }.value(&mut r, schema, &None, &mut out)?;
    if !r.rest.is_empty() {
        return Err(format!(
            "the Avro payload has {} bytes after the datum its schema describes (corrupt, or \
             written with another schema)",
            r.rest.len()
        ));
    }
    Ok(out)
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
                let (named, inner) = super::named(self.names, name, ns)?;
                self.value(r, named, &inner, out)?;
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

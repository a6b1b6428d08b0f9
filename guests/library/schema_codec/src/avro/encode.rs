//! Writing JSON (in the rendering docs/schemas.md documents) as an Avro
//! datum, by the schema: the inverse of `decode`, so that decoding then
//! encoding with the same schema gives the same bytes.
//!
//! A union takes its first branch that the value fits: `null` for null,
//! otherwise the branches in order. Where two branches render alike (a
//! string and base64 bytes, an int and a long), the first one in the
//! schema wins. An error names the value's path (`$.address.zip`).

use super::text::{parse_date, parse_decimal, parse_time, parse_timestamp};
use crate::framing::write_zigzag as long;
use apache_avro::schema::{Name, Namespace, Schema};
use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;

/// The Avro datum of `json` by `schema` (whose named types are `names`).
pub(super) fn datum(
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    json: &Value,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    Writer { names }.value(json, schema, &None, "$", &mut out)?;
    Ok(out)
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// What kind of JSON value `v` is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Writer<'s> {
    names: &'s HashMap<Name, Schema>,
}

impl Writer<'_> {
    fn value(
        &self,
        v: &Value,
        schema: &Schema,
        ns: &Namespace,
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let expected = |what: &str| format!("{path}: expected {what}, found {}", kind(v));
        let text = || v.as_str().ok_or_else(|| expected("a string"));
        match schema {
            Schema::Null => v.as_null().ok_or_else(|| expected("null"))?,
            Schema::Boolean => {
                out.push(u8::from(v.as_bool().ok_or_else(|| expected("a boolean"))?))
            }
            Schema::Int => {
                let i = v.as_i64().ok_or_else(|| expected("an integer"))?;
                let i = i32::try_from(i).map_err(|_| format!("{path}: {i} does not fit an int"))?;
                long(out, i64::from(i));
            }
            Schema::Long => long(out, v.as_i64().ok_or_else(|| expected("an integer"))?),
            Schema::Float => out.extend_from_slice(&(self.float(v, path)? as f32).to_le_bytes()),
            Schema::Double => out.extend_from_slice(&self.float(v, path)?.to_le_bytes()),
            Schema::Bytes => bytes(out, &self.base64(text()?, path)?),
            Schema::String | Schema::Uuid => bytes(out, text()?.as_bytes()),
            Schema::Fixed(f) => {
                let b = self.base64(text()?, path)?;
                if b.len() != f.size {
                    return Err(format!(
                        "{path}: {} bytes, and fixed `{}` holds {}",
                        b.len(),
                        f.name.name,
                        f.size
                    ));
                }
                out.extend_from_slice(&b);
            }
            Schema::Enum(e) => {
                let symbol = text()?;
                let i = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
                    format!(
                        "{path}: `{symbol}` is not a symbol of enum `{}` ({})",
                        e.name.name,
                        e.symbols.join(", ")
                    )
                })?;
                long(out, i as i64);
            }
            Schema::Union(u) => {
                let mut errors = Vec::new();
                for (i, branch) in u.variants().iter().enumerate() {
                    let mut attempt = Vec::new();
                    long(&mut attempt, i as i64);
                    match self.value(v, branch, ns, path, &mut attempt) {
                        Ok(()) => {
                            out.extend_from_slice(&attempt);
                            return Ok(());
                        }
                        Err(e) => errors.push(e),
                    }
                }
                return Err(format!(
                    "{path}: fits no branch of its union ({})",
                    errors.join("; ")
                ));
            }
            Schema::Record(rec) => {
                let object = v.as_object().ok_or_else(|| expected("an object"))?;
                let inner = rec.name.fully_qualified_name(ns).namespace;
                for field in &rec.fields {
                    let field_path = format!("{path}.{}", field.name);
                    match object.get(&field.name).or(field.default.as_ref()) {
                        Some(value) => {
                            self.value(value, &field.schema, &inner, &field_path, out)?
                        }
                        None => {
                            return Err(format!(
                                "{field_path}: missing, and the field has no default"
                            ))
                        }
                    }
                }
            }
            Schema::Array(a) => {
                let items = v.as_array().ok_or_else(|| expected("an array"))?;
                if !items.is_empty() {
                    long(out, items.len() as i64);
                    for (i, item) in items.iter().enumerate() {
                        self.value(item, &a.items, ns, &format!("{path}[{i}]"), out)?;
                    }
                }
                long(out, 0);
            }
            Schema::Map(m) => {
                let entries = v.as_object().ok_or_else(|| expected("an object"))?;
                if !entries.is_empty() {
                    long(out, entries.len() as i64);
                    for (key, item) in entries {
                        bytes(out, key.as_bytes());
                        self.value(item, &m.types, ns, &format!("{path}.{key}"), out)?;
                    }
                }
                long(out, 0);
            }
            Schema::Decimal(d) => {
                let unscaled =
                    parse_decimal(text()?, d.scale).map_err(|e| format!("{path}: {e}"))?;
                let raw = unscaled.to_signed_bytes_be();
                match &*d.inner {
                    Schema::Fixed(f) => {
                        if raw.len() > f.size {
                            return Err(format!(
                                "{path}: the decimal needs {} bytes, and its fixed holds {}",
                                raw.len(),
                                f.size
                            ));
                        }
                        let sign = if unscaled.sign() == num_bigint::Sign::Minus {
                            0xff
                        } else {
                            0
                        };
                        out.extend(std::iter::repeat_n(sign, f.size - raw.len()));
                        out.extend_from_slice(&raw);
                    }
                    _ => bytes(out, &raw),
                }
            }
            Schema::Date => {
                let days = parse_date(text()?).map_err(|e| format!("{path}: {e}"))?;
                let days =
                    i32::try_from(days).map_err(|_| format!("{path}: the date is out of range"))?;
                long(out, i64::from(days));
            }
            Schema::TimeMillis => {
                let nanos = parse_time(text()?).map_err(|e| format!("{path}: {e}"))?;
                long(out, nanos / 1_000_000);
            }
            Schema::TimeMicros => {
                let nanos = parse_time(text()?).map_err(|e| format!("{path}: {e}"))?;
                long(out, nanos / 1_000);
            }
            Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                let utc = matches!(
                    schema,
                    Schema::TimestampMillis | Schema::TimestampMicros | Schema::TimestampNanos
                );
                let per = match schema {
                    Schema::TimestampMillis | Schema::LocalTimestampMillis => 1_000_000,
                    Schema::TimestampMicros | Schema::LocalTimestampMicros => 1_000,
                    _ => 1,
                };
                let nanos = parse_timestamp(text()?, utc).map_err(|e| format!("{path}: {e}"))?;
                let v = i64::try_from(nanos.div_euclid(per))
                    .map_err(|_| format!("{path}: the timestamp is out of range"))?;
                long(out, v);
            }
            Schema::Duration => {
                let part = |name: &str| {
                    v.get(name)
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            format!("{path}.{name}: expected an unsigned 32-bit integer")
                        })
                };
                for name in ["months", "days", "millis"] {
                    out.extend_from_slice(&part(name)?.to_le_bytes());
                }
            }
            Schema::BigDecimal => {
                return Err(format!(
                    "{path}: the Avro `big-decimal` logical type is not supported"
                ))
            }
            Schema::Ref { name } => {
                let (named, inner) = super::named(self.names, name, ns)?;
                self.value(v, named, &inner, path, out)?;
            }
        }
        Ok(())
    }

    /// A float: a number, or the name of one JSON cannot hold.
    fn float(&self, v: &Value, path: &str) -> Result<f64, String> {
        match v {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| format!("{path}: {n} is not a float")),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(format!("{path}: expected a number, found {}", kind(other))),
        }
    }

    fn base64(&self, text: &str, path: &str) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("{path}: `{text}` is not base64: {e}"))
    }
}

//! The typed columns of an Avro record schema.

use apache_avro::schema::{Namespace, Schema};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{Type, TypePtr};
use schema_codec::avro::AvroSchema;
use std::sync::Arc;

/// How one leaf field is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Bool,
    Int32,
    Int64,
    Float,
    Double,
    Utf8,
    Bytes,
    Decimal {
        precision: i32,
        scale: i32,
    },
    Date,
    /// A time of day in this many nanoseconds per unit.
    Time(i64),
    /// A timestamp in this many nanoseconds per unit, UTC or local.
    Timestamp(i64, bool),
    /// Anything else, as its JSON text.
    Json,
}

/// One value column: its dotted name, where its value is in the event's
/// JSON, and how it is stored.
#[derive(Debug)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) path: Vec<String>,
    pub(super) kind: Kind,
}

/// The typed columns of one value schema.
#[derive(Debug)]
pub struct Layout {
    pub(super) columns: Vec<Column>,
    pub(super) schema: TypePtr,
}

impl Layout {
    /// The columns of values written with `schema`, whose top level must
    /// be a record.
    pub fn of(schema: &AvroSchema) -> Result<Self, String> {
        let top = schema
            .resolve(schema.schema(), &None)
            .ok_or("the schema refers to a type it does not define")?;
        let Schema::Record(record) = top else {
            return Err("typed columns need a record schema at the top".into());
        };
        let mut columns = Vec::new();
        let ns = record.name.fully_qualified_name(&None).namespace;
        for field in &record.fields {
            leaves(
                schema,
                &field.schema,
                &ns,
                vec![field.name.clone()],
                &mut columns,
            )?;
        }
        let mut fields: Vec<TypePtr> = Vec::new();
        let meta = |name: &str, physical, logical: Option<LogicalType>, repetition| {
            Type::primitive_type_builder(name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        };
        let err = |e: parquet::errors::ParquetError| format!("typed Parquet schema: {e}");
        fields.push(
            meta(
                "_topic",
                Physical::BYTE_ARRAY,
                Some(LogicalType::String),
                Repetition::REQUIRED,
            )
            .map_err(err)?,
        );
        fields.push(meta("_partition", Physical::INT32, None, Repetition::REQUIRED).map_err(err)?);
        fields.push(meta("_offset", Physical::INT64, None, Repetition::REQUIRED).map_err(err)?);
        fields.push(
            meta(
                "_timestamp",
                Physical::INT64,
                Some(LogicalType::Timestamp {
                    is_adjusted_to_u_t_c: true,
                    unit: TimeUnit::MILLIS,
                }),
                Repetition::OPTIONAL,
            )
            .map_err(err)?,
        );
        fields.push(meta("_key", Physical::BYTE_ARRAY, None, Repetition::OPTIONAL).map_err(err)?);
        fields.push(
            meta(
                "_headers",
                Physical::BYTE_ARRAY,
                Some(LogicalType::String),
                Repetition::REQUIRED,
            )
            .map_err(err)?,
        );
        for c in &columns {
            let (physical, logical) = match c.kind {
                Kind::Bool => (Physical::BOOLEAN, None),
                Kind::Int32 => (Physical::INT32, None),
                Kind::Int64 => (Physical::INT64, None),
                Kind::Float => (Physical::FLOAT, None),
                Kind::Double => (Physical::DOUBLE, None),
                Kind::Utf8 | Kind::Json => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                Kind::Bytes => (Physical::BYTE_ARRAY, None),
                Kind::Decimal { precision, scale } => (
                    Physical::BYTE_ARRAY,
                    Some(LogicalType::Decimal { scale, precision }),
                ),
                Kind::Date => (Physical::INT32, Some(LogicalType::Date)),
                Kind::Time(per) => {
                    let (physical, unit) = if per == 1_000_000 {
                        (Physical::INT32, TimeUnit::MILLIS)
                    } else {
                        (Physical::INT64, TimeUnit::MICROS)
                    };
                    (
                        physical,
                        Some(LogicalType::Time {
                            is_adjusted_to_u_t_c: true,
                            unit,
                        }),
                    )
                }
                Kind::Timestamp(per, utc) => {
                    let unit = match per {
                        1_000_000 => TimeUnit::MILLIS,
                        1_000 => TimeUnit::MICROS,
                        _ => TimeUnit::NANOS,
                    };
                    (
                        Physical::INT64,
                        Some(LogicalType::Timestamp {
                            is_adjusted_to_u_t_c: utc,
                            unit,
                        }),
                    )
                }
            };
            let mut t = Type::primitive_type_builder(&c.name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical);
            if let Kind::Decimal { precision, scale } = c.kind {
                t = t.with_precision(precision).with_scale(scale);
            }
            fields.push(Arc::new(t.build().map_err(err)?));
        }
        let schema = Type::group_type_builder("event")
            .with_fields(fields)
            .build()
            .map_err(err)?;
        Ok(Self {
            columns,
            schema: Arc::new(schema),
        })
    }
}

/// Adds the columns of a field at `path` written with `schema`.
fn leaves(
    avro: &AvroSchema,
    schema: &Schema,
    ns: &Namespace,
    path: Vec<String>,
    out: &mut Vec<Column>,
) -> Result<(), String> {
    let schema = avro.resolve(schema, ns).ok_or_else(|| {
        format!(
            "field `{}` refers to a type the schema does not define",
            path.join(".")
        )
    })?;
    let kind = match schema {
        Schema::Union(u) => {
            let others: Vec<&Schema> = u
                .variants()
                .iter()
                .filter(|s| **s != Schema::Null)
                .collect();
            return match others.as_slice() {
                // ["null", T]: T's columns, null when the union is.
                [only] => leaves(avro, only, ns, path, out),
                _ => {
                    out.push(Column {
                        name: path.join("."),
                        path,
                        kind: Kind::Json,
                    });
                    Ok(())
                }
            };
        }
        Schema::Record(r) => {
            let inner = r.name.fully_qualified_name(ns).namespace;
            for f in &r.fields {
                let mut p = path.clone();
                p.push(f.name.clone());
                leaves(avro, &f.schema, &inner, p, out)?;
            }
            return Ok(());
        }
        Schema::Boolean => Kind::Bool,
        Schema::Int => Kind::Int32,
        Schema::Long => Kind::Int64,
        Schema::Float => Kind::Float,
        Schema::Double => Kind::Double,
        Schema::String | Schema::Enum(_) | Schema::Uuid => Kind::Utf8,
        Schema::Bytes | Schema::Fixed(_) => Kind::Bytes,
        Schema::Decimal(d) => Kind::Decimal {
            precision: d.precision as i32,
            scale: d.scale as i32,
        },
        Schema::Date => Kind::Date,
        Schema::TimeMillis => Kind::Time(1_000_000),
        Schema::TimeMicros => Kind::Time(1_000),
        Schema::TimestampMillis => Kind::Timestamp(1_000_000, true),
        Schema::TimestampMicros => Kind::Timestamp(1_000, true),
        Schema::TimestampNanos => Kind::Timestamp(1, true),
        Schema::LocalTimestampMillis => Kind::Timestamp(1_000_000, false),
        Schema::LocalTimestampMicros => Kind::Timestamp(1_000, false),
        Schema::LocalTimestampNanos => Kind::Timestamp(1, false),
        _ => Kind::Json,
    };
    out.push(Column {
        name: path.join("."),
        path,
        kind,
    });
    Ok(())
}

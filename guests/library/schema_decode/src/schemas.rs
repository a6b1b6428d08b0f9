//! The instance's parsed schemas, fetched through the host's `schemas`
//! import. The host caches the registry's answers for the whole process;
//! this cache keeps what parsing them made, so a schema is parsed once per
//! instance.

use crate::flumen::pipeline::schemas::{by_guid, by_id, Error, Format, Schema};
use schema_codec::avro::AvroSchema;
use schema_codec::framing::SchemaRef;
use schema_codec::json_schema::JsonSchema;
use schema_codec::protobuf::ProtoSchema;
use std::collections::HashMap;
use std::rc::Rc;

/// How to decode payloads written with one schema, and the subject it is
/// registered under.
pub struct Decoder {
    kind: Kind,
    /// The schema's subject, if the registry said.
    pub subject: Option<String>,
}

/// A schema's kind, parsed.
enum Kind {
    /// Avro binary, with the writer's schema.
    Avro(AvroSchema),
    /// JSON text (JSON Schema payloads are JSON already), validated
    /// against the schema if `validate_json` is set.
    Json(Option<JsonSchema>),
    /// Protobuf, with the writer's file and its imports.
    Protobuf(ProtoSchema),
}

impl Decoder {
    /// The format's name, for the `flumen.<field>.schema_format` header.
    pub fn format_name(&self) -> &'static str {
        match self.kind {
            Kind::Avro(_) => "avro",
            Kind::Json(_) => "json",
            Kind::Protobuf(_) => "protobuf",
        }
    }

    /// The JSON form of a payload.
    pub fn decode(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        match &self.kind {
            Kind::Avro(schema) => schema.decode(payload),
            Kind::Json(schema) => {
                // The payload is already JSON; checking that it parses keeps
                // a corrupt one from reaching a sink as if decoded.
                let value = serde_json::from_slice::<serde_json::Value>(payload)
                    .map_err(|e| format!("the JSON Schema payload is not JSON: {e}"))?;
                if let Some(schema) = schema {
                    schema.validate(&value)?;
                }
                Ok(payload.to_vec())
            }
            Kind::Protobuf(schema) => {
                let json = schema.decode(payload)?;
                serde_json::to_vec(&json).map_err(|e| e.to_string())
            }
        }
    }
}

/// What looking a schema up gave.
pub enum Lookup {
    /// A decoder for it.
    Found(Rc<Decoder>),
    /// The schema does not exist or cannot be parsed: reject the event.
    Reject(String),
    /// The registry cannot answer now, or the component may not ask:
    /// fail the call.
    Fail(String),
}

/// Parsed schemas by reference, and the ones known not to exist.
pub struct Schemas {
    known: HashMap<SchemaRef, Result<Rc<Decoder>, String>>,
    /// Whether JSON Schema payloads are validated against their schema.
    validate_json: bool,
}

impl Schemas {
    /// No schemas yet; JSON Schema payloads validated if `validate_json`.
    pub fn new(validate_json: bool) -> Self {
        Self {
            known: HashMap::new(),
            validate_json,
        }
    }

    /// The decoder for `schema`, fetching and parsing it on first use.
    pub fn get(&mut self, schema: &SchemaRef) -> Lookup {
        if let Some(known) = self.known.get(schema) {
            return match known {
                Ok(d) => Lookup::Found(d.clone()),
                Err(e) => Lookup::Reject(e.clone()),
            };
        }
        let fetched = match schema {
            SchemaRef::Id(id) => by_id(*id),
            SchemaRef::Guid(guid) => by_guid(guid),
        };
        let parsed = match fetched {
            Ok(s) => parse(&s, self.validate_json)
                .map(Rc::new)
                .map_err(|e| format!("{schema}: {e}")),
            // Ids are never reused, so a missing one stays missing.
            Err(Error::NotFound(e)) => Err(format!("{schema} is not in the registry: {e}")),
            Err(Error::Unavailable(e)) => {
                return Lookup::Fail(format!("the schema registry is unavailable: {e}"))
            }
            Err(Error::NotGranted(e)) => return Lookup::Fail(e),
        };
        let lookup = match &parsed {
            Ok(d) => Lookup::Found(d.clone()),
            Err(e) => Lookup::Reject(e.clone()),
        };
        self.known.insert(schema.clone(), parsed);
        lookup
    }
}

/// Parses a fetched schema.
fn parse(schema: &Schema, validate_json: bool) -> Result<Decoder, String> {
    let kind = match schema.format {
        Format::Avro => {
            let references: Vec<&str> = schema.references.iter().map(|r| r.text.as_str()).collect();
            Kind::Avro(AvroSchema::parse(&schema.text, &references)?)
        }
        Format::Json if validate_json => {
            let references: Vec<(&str, &str)> = schema
                .references
                .iter()
                .map(|r| (r.name.as_str(), r.text.as_str()))
                .collect();
            Kind::Json(Some(JsonSchema::parse(&schema.text, &references)?))
        }
        Format::Json => Kind::Json(None),
        Format::Protobuf => {
            let references: Vec<(&str, &str)> = schema
                .references
                .iter()
                .map(|r| (r.name.as_str(), r.text.as_str()))
                .collect();
            Kind::Protobuf(ProtoSchema::parse(&schema.text, &references)?)
        }
    };
    Ok(Decoder {
        kind,
        subject: schema.subject.clone(),
    })
}

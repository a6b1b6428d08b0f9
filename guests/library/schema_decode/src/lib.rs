//! The `schema_decode` interceptor: replaces an event's Schema Registry
//! framed value (and/or key) with its JSON form, decoded inside the
//! sandbox with the schema the host's registry client fetched.
//!
//! Config keys:
//! - `fields` = `value` (default) | `key` | `both`: which fields to decode.
//! - `validate_json` (default `false`): JSON Schema payloads are checked
//!   against their schema, and rejected with the path of what breaks it.
//!
//! It decodes Avro, Protobuf and JSON Schema, in all three framings.
//!
//! The component needs `schema_registry = true` in its flumen config.
//!
//! For each decoded field it adds the headers `flumen.<field>.schema_id`
//! (the id, or the GUID for framings that carry one),
//! `flumen.<field>.schema_subject` (if the registry says) and
//! `flumen.<field>.schema_format` (`avro`, `json` or `protobuf`), and keeps
//! the event's other headers, so that a sink can re-encode.
//!
//! An event it cannot decode (no framing, an unknown id, a payload that does
//! not match its schema) is rejected through the `rejection` import with a
//! reason naming the offset, the field and the cause: the component's
//! `on_failure` policy decides (under `dead-letter`, the dead letter keeps
//! the original bytes). A registry that cannot be reached fails the call,
//! which the host retries until it answers; nothing is rejected for it.

wit_bindgen::generate!({ world: "interceptor", path: "../../../wit" });

mod schemas;

use exports::flumen::pipeline::interception::{Columns, Guest, Replacement, Source, Verdicts};
use flumen::pipeline::rejection::reject;
use flumen::pipeline::types::Header;
use flumen_guest_common::answer::{Actions, REPLACE};
use flumen_guest_common::Config;
use schema_codec::framing;
use schemas::{Lookup, Schemas};
use std::cell::RefCell;

/// Which fields an instance decodes.
#[derive(Clone, Copy)]
struct Fields {
    key: bool,
    value: bool,
}

/// The header names of one field: where Confluent's header framing puts
/// the schema id, and the two headers this interceptor adds.
struct Field {
    id_header: &'static str,
    id_out: &'static str,
    subject_out: &'static str,
    format_out: &'static str,
}

const KEY: Field = Field {
    id_header: "__key_schema_id",
    id_out: "flumen.key.schema_id",
    subject_out: "flumen.key.schema_subject",
    format_out: "flumen.key.schema_format",
};

const VALUE: Field = Field {
    id_header: "__value_schema_id",
    id_out: "flumen.value.schema_id",
    subject_out: "flumen.value.schema_subject",
    format_out: "flumen.value.schema_format",
};

thread_local! {
    static STATE: RefCell<Option<(Fields, Schemas)>> = const { RefCell::new(None) };
}

struct SchemaDecode;

impl Guest for SchemaDecode {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["fields", "validate_json"])?;
        let validate_json = config.bool_or("validate_json", false)?;
        let fields = match config.get("fields").unwrap_or("value") {
            "value" => Fields {
                key: false,
                value: true,
            },
            "key" => Fields {
                key: true,
                value: false,
            },
            "both" => Fields {
                key: true,
                value: true,
            },
            other => {
                return Err(format!(
                    "config key `fields` is `{other}`; expected `value`, `key` or `both`"
                ))
            }
        };
        STATE.with(|s| *s.borrow_mut() = Some((fields, Schemas::new(validate_json))));
        Ok(())
    }

    fn process(_source: Source, batch: Columns) -> Result<Verdicts, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let (fields, schemas) = s.as_mut().ok_or("process called before init")?;
            let mut actions = Actions::new(batch.len());
            let mut replacements = Vec::new();
            for (i, e) in batch.iter().enumerate() {
                let mut headers: Vec<Header> = e
                    .headers()
                    .map(|(name, value)| Header {
                        name: name.to_owned(),
                        value: value.to_vec(),
                    })
                    .collect();
                let mut decode =
                    |field: &Field,
                     bytes: Option<&[u8]>|
                     -> Result<Result<Option<Vec<u8>>, String>, String> {
                        // An absent key, or a tombstone, has nothing to decode.
                        let Some(bytes) = bytes else {
                            return Ok(Ok(None));
                        };
                        let header = e
                            .headers()
                            .find(|(n, _)| *n == field.id_header)
                            .map(|(_, v)| v);
                        let frame = match framing::split(bytes, header) {
                            Ok(f) => f,
                            Err(cause) => return Ok(Err(cause.0)),
                        };
                        let decoder = match schemas.get(&frame.schema) {
                            Lookup::Found(d) => d,
                            Lookup::Reject(cause) => return Ok(Err(cause)),
                            Lookup::Fail(cause) => return Err(cause),
                        };
                        let json = match decoder.decode(&frame.datum()) {
                            Ok(json) => json,
                            Err(cause) => return Ok(Err(format!("{}: {cause}", frame.schema))),
                        };
                        let id = match &frame.schema {
                            framing::SchemaRef::Id(id) => id.to_string(),
                            framing::SchemaRef::Guid(guid) => guid.clone(),
                        };
                        headers.push(Header {
                            name: field.id_out.to_owned(),
                            value: id.into_bytes(),
                        });
                        if let Some(subject) = &decoder.subject {
                            headers.push(Header {
                                name: field.subject_out.to_owned(),
                                value: subject.as_bytes().to_vec(),
                            });
                        }
                        headers.push(Header {
                            name: field.format_out.to_owned(),
                            value: decoder.format_name().as_bytes().to_vec(),
                        });
                        Ok(Ok(Some(json)))
                    };
                let key = if fields.key {
                    decode(&KEY, e.key)?
                } else {
                    Ok(e.key.map(<[u8]>::to_vec))
                };
                let key = match key {
                    Ok(k) => k,
                    Err(cause) => {
                        reject(i as u32, &format!("offset {}: key: {cause}", e.offset));
                        continue;
                    }
                };
                let value = if fields.value {
                    decode(&VALUE, e.value)?
                } else {
                    Ok(e.value.map(<[u8]>::to_vec))
                };
                let value = match value {
                    Ok(v) => v,
                    Err(cause) => {
                        reject(i as u32, &format!("offset {}: value: {cause}", e.offset));
                        continue;
                    }
                };
                actions.set(i, REPLACE);
                replacements.push(Replacement {
                    timestamp: e.timestamp,
                    key: key.or_else(|| e.key.map(<[u8]>::to_vec)),
                    value: value.or_else(|| e.value.map(<[u8]>::to_vec)),
                    headers,
                });
            }
            Ok(Verdicts {
                actions: actions.into_bytes(),
                replacements,
                routes: Vec::new(),
            })
        })
    }
}

export!(SchemaDecode);

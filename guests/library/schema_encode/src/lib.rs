//! The `schema_encode` interceptor: the reverse of `schema_decode`. It
//! replaces an event's JSON value (or key) with its Schema Registry framed
//! form, Avro, Protobuf or JSON Schema, written with a schema the host's
//! registry client fetched by subject.
//!
//! Config keys:
//! - `field` = `value` (default) | `key`.
//! - `subject`: the subject, explicitly; otherwise by `subject_strategy` =
//!   `topic` (default: `<topic>-<field>`) | `record` (the record's full
//!   name, `record`) | `topic_record` (`<topic>-<record>`), as Confluent's
//!   naming strategies name them.
//! - `record`: the record's (or Protobuf message's) full name, for the
//!   `record` strategies.
//! - `version` = `latest` (default: the subject's newest, fetched once per
//!   instance) | a version number.
//! - `framing` = `id` (default) | `guid` | `header`.
//! - `message`: the Protobuf message type (full name) to write; default the
//!   file's first.
//! - `auto_register` (default `false`) with `schema` (its text) and
//!   `format` = `avro` | `protobuf` | `json`: registers the schema under
//!   the subject if the subject has none yet. Needs
//!   `schema_registry_register = true` besides `schema_registry = true`.
//!
//! An event that does not fit the schema is rejected with the offset and
//! the field's path; one that is not JSON, with the parser's message. The
//! `flumen.<field>.schema_*` headers `schema_decode` adds are removed.

wit_bindgen::generate!({ world: "interceptor", path: "../../../wit" });

mod encoders;

use encoders::{Encoders, Lookup, Settings};
use exports::flumen::pipeline::interception::{Columns, Guest, Replacement, Source, Verdicts};
use flumen::pipeline::rejection::reject;
use flumen::pipeline::types::Header;
use flumen_guest_common::answer::{Actions, REPLACE};
use flumen_guest_common::Config;
use std::cell::RefCell;

thread_local! {
    static STATE: RefCell<Option<Encoders>> = const { RefCell::new(None) };
}

struct SchemaEncode;

impl Guest for SchemaEncode {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, encoders::KEYS)?;
        let settings = Settings::from_config(&config)?;
        STATE.with(|s| *s.borrow_mut() = Some(Encoders::new(settings)));
        Ok(())
    }

    fn process(source: Source, batch: Columns) -> Result<Verdicts, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let encoders = s.as_mut().ok_or("process called before init")?;
            let key_field = encoders.settings.key;
            let field_name = if key_field { "key" } else { "value" };
            let encoder = match encoders.for_topic(&source.topic) {
                Lookup::Found(e) => e,
                // The whole batch needs the same schema: fail the call (an
                // outage is retried without giving events up) or reject
                // every event (no such subject, an invalid schema).
                Lookup::Fail(cause) => return Err(cause),
                Lookup::Reject(cause) => {
                    for (i, e) in batch.iter().enumerate() {
                        reject(
                            i as u32,
                            &format!("offset {}: {field_name}: {cause}", e.offset),
                        );
                    }
                    return Ok(Verdicts {
                        actions: Vec::new(),
                        replacements: Vec::new(),
                        routes: Vec::new(),
                    });
                }
            };
            let id_header = if key_field {
                "__key_schema_id"
            } else {
                "__value_schema_id"
            };
            let ours = if key_field {
                "flumen.key.schema_"
            } else {
                "flumen.value.schema_"
            };
            let mut actions = Actions::new(batch.len());
            let mut replacements = Vec::new();
            for (i, e) in batch.iter().enumerate() {
                let field = if key_field { e.key } else { e.value };
                // An absent key, or a tombstone, stays as it is.
                let Some(field) = field else { continue };
                let framed = match encoder.encode(field) {
                    Ok(f) => f,
                    Err(cause) => {
                        reject(
                            i as u32,
                            &format!("offset {}: {field_name}: {cause}", e.offset),
                        );
                        continue;
                    }
                };
                let mut headers: Vec<Header> = e
                    .headers()
                    .filter(|(name, _)| !name.starts_with(ours) && *name != id_header)
                    .map(|(name, value)| Header {
                        name: name.to_owned(),
                        value: value.to_vec(),
                    })
                    .collect();
                if let Some(value) = framed.header {
                    headers.push(Header {
                        name: id_header.to_owned(),
                        value,
                    });
                }
                let (key, value) = if key_field {
                    (Some(framed.field), e.value.map(<[u8]>::to_vec))
                } else {
                    (e.key.map(<[u8]>::to_vec), Some(framed.field))
                };
                actions.set(i, REPLACE);
                replacements.push(Replacement {
                    timestamp: e.timestamp,
                    key,
                    value,
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

export!(SchemaEncode);

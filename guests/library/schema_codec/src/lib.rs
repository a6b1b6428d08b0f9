//! The codecs behind the `schema_decode` and `schema_encode` interceptors:
//! Confluent's wire framings ([`framing`]), Avro ([`avro`]) and Protobuf
//! ([`protobuf`]) datums to and from JSON, JSON Schema validation
//! ([`json_schema`]), by the rendering
//! `docs/schemas.md` documents. No bindings: each component fetches its
//! schemas through its own `schemas` import and hands their text here.

pub mod avro;
pub mod framing;
#[cfg(feature = "json-schema")]
pub mod json_schema;
#[cfg(feature = "protobuf")]
pub mod protobuf;

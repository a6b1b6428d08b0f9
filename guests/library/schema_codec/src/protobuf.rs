//! Protobuf payloads into JSON: schemas compiled from `.proto` source, or
//! read from a base64 `FileDescriptorProto` (what Confluent's Python client
//! registers), and messages decoded by descriptor.
//!
//! The rendering is protobuf's own JSON mapping (what `JsonFormat` in Java
//! and `json_format.MessageToDict` in Python give), with the field names as
//! written in the `.proto` file and every field present, defaults included:
//! 64-bit integers as strings, bytes as base64, enums by name, and the
//! well-known types (`Timestamp`, `Duration`, wrappers, `Struct`, …) in
//! their special forms (`"2024-05-01T12:00:00Z"`).

use crate::framing::message_indexes;
use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use std::collections::HashMap;

/// A writer schema: its file, compiled with everything it imports.
pub struct ProtoSchema {
    pool: DescriptorPool,
    file: String,
}

/// The name the schema's own file gets when it is `.proto` source, which
/// carries no name of its own.
const MAIN: &str = "flumen-schema.proto";

/// Files by the names imports use: the schema's references.
struct References(HashMap<String, File>);

impl FileResolver for References {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// One schema text as a file: a base64 descriptor if it is one, otherwise
/// `.proto` source named `name`.
fn file(name: &str, text: &str) -> Result<File, String> {
    let descriptor = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| prost_types::FileDescriptorProto::decode(&bytes[..]).ok());
    match descriptor {
        Some(mut d) => {
            // A descriptor names itself; the name imports use is the
            // reference's, which must match for the import to resolve.
            d.name = Some(name.to_owned());
            Ok(File::from_file_descriptor_proto(d))
        }
        None => File::from_source(name, text)
            .map_err(|e| format!("invalid .proto schema `{name}`: {e}")),
    }
}

impl ProtoSchema {
    /// Compiles `text` with `references` (`(name, text)`: what its imports
    /// name), and the well-known types.
    pub fn parse(text: &str, references: &[(&str, &str)]) -> Result<Self, String> {
        let mut files = HashMap::new();
        for (name, text) in references {
            files.insert(name.to_string(), file(name, text)?);
        }
        let main = file(MAIN, text)?;
        files.insert(MAIN.to_owned(), main);
        let mut resolver = ChainFileResolver::new();
        resolver.add(References(files));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_file(MAIN)
            .map_err(|e| format!("invalid Protobuf schema: {e}"))?;
        Ok(Self {
            pool: compiler.descriptor_pool(),
            file: MAIN.to_owned(),
        })
    }

    /// The message type a frame's indexes name: the first index picks a
    /// top-level message of the file, each next one a message nested in it.
    fn message(&self, indexes: &[i64]) -> Result<MessageDescriptor, String> {
        let file = self
            .pool
            .get_file_by_name(&self.file)
            .ok_or("the schema's file is missing from its pool")?;
        let pick = |list: Vec<MessageDescriptor>, i: i64| {
            usize::try_from(i).ok().and_then(|i| list.into_iter().nth(i)).ok_or_else(|| {
                format!("message index {i} names no message type of the schema (indexes {indexes:?})")
            })
        };
        let (&first, rest) = indexes.split_first().ok_or("no message index")?;
        let mut message = pick(file.messages().collect(), first)?;
        for &i in rest {
            message = pick(message.child_messages().collect(), i)?;
        }
        Ok(message)
    }

    /// Decodes a frame's message indexes and the message after them, and
    /// renders it as JSON.
    pub fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, String> {
        let (indexes, payload) = message_indexes(bytes).map_err(|e| e.0)?;
        let descriptor = self.message(&indexes)?;
        let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|e| {
            format!(
                "the Protobuf payload is not a valid `{}` (truncated or corrupt): {e}",
                descriptor.full_name()
            )
        })?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(false);
        message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| {
                format!(
                    "cannot render the `{}` message as JSON: {e}",
                    descriptor.full_name()
                )
            })
    }
}

impl ProtoSchema {
    /// Encodes `json` (protobuf's JSON mapping; field names as in the
    /// `.proto` file or in lowerCamelCase) as a message of type `message`
    /// (a full name, e.g. `shop.Order`), or of the file's first message
    /// type. Returns the frame's message indexes and the message.
    pub fn encode(
        &self,
        json: &serde_json::Value,
        message: Option<&str>,
    ) -> Result<(Vec<i64>, Vec<u8>), String> {
        let file = self
            .pool
            .get_file_by_name(&self.file)
            .ok_or("the schema's file is missing from its pool")?;
        let (indexes, descriptor) = match message {
            None => (vec![0], self.message(&[0])?),
            Some(name) => {
                let found = find(file.messages().collect(), name, &mut Vec::new());
                found.ok_or_else(|| format!("the schema defines no message type `{name}`"))?
            }
        };
        let message = DynamicMessage::deserialize(descriptor.clone(), json)
            .map_err(|e| format!("the value does not fit `{}`: {e}", descriptor.full_name()))?;
        Ok((indexes, message.encode_to_vec()))
    }
}

/// The index path and descriptor of the message type `name` among
/// `messages` and their nested types.
fn find(
    messages: Vec<MessageDescriptor>,
    name: &str,
    path: &mut Vec<i64>,
) -> Option<(Vec<i64>, MessageDescriptor)> {
    for (i, m) in messages.into_iter().enumerate() {
        path.push(i as i64);
        if m.full_name() == name {
            return Some((path.clone(), m));
        }
        if let Some(found) = find(m.child_messages().collect(), name, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str =
        r#"syntax = "proto3"; package shop; message Address { string city = 1; }"#;
    const ORDER: &str = r#"
        syntax = "proto3";
        package shop;
        import "address.proto";
        import "google/protobuf/timestamp.proto";
        message Order {
            int64 id = 1;
            Address to = 2;
            google.protobuf.Timestamp at = 3;
            message Line { string sku = 1; }
            repeated Line lines = 4;
        }
    "#;

    #[test]
    fn decodes_with_references_well_known_types_and_nested_messages() {
        let schema = ProtoSchema::parse(ORDER, &[("address.proto", ADDRESS)]).unwrap();
        // Order { id: 7, to: { city: "Oslo" }, at: 1s, lines: [{ sku: "x" }] }
        let order = [
            0x08, 7, 0x12, 6, 0x0a, 4, b'O', b's', b'l', b'o', 0x1a, 2, 0x08, 1, 0x22, 3, 0x0a, 1,
            b'x',
        ];
        let mut frame = vec![0u8]; // message index [0]
        frame.extend(order);
        let json = schema.decode(&frame).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "7", "to": {"city": "Oslo"}, "at": "1970-01-01T00:00:01Z",
                               "lines": [{"sku": "x"}]})
        );
        // Index path [0, 0]: Order.Line.
        let json = schema.decode(&[4, 0, 0, 0x0a, 1, b'y']).unwrap();
        assert_eq!(json, serde_json::json!({"sku": "y"}));
        let e = schema.decode(&[2, 6, 0x08]).unwrap_err();
        assert!(e.contains("names no message type"), "{e}");
        let e = schema.decode(&[0, 0x12, 6, 0x0a]).unwrap_err();
        assert!(e.contains("truncated or corrupt"), "{e}");
    }

    #[test]
    fn encodes_what_it_decodes() {
        let schema = ProtoSchema::parse(ORDER, &[("address.proto", ADDRESS)]).unwrap();
        let value = serde_json::json!({"id": "7", "to": {"city": "Oslo"}, "at": "1970-01-01T00:00:01Z",
                                       "lines": [{"sku": "x"}]});
        let (indexes, bytes) = schema.encode(&value, None).unwrap();
        assert_eq!(indexes, [0]);
        let mut frame = vec![0u8];
        frame.extend(&bytes);
        assert_eq!(schema.decode(&frame).unwrap(), value);
        let (indexes, _) = schema
            .encode(&serde_json::json!({"sku": "y"}), Some("shop.Order.Line"))
            .unwrap();
        assert_eq!(indexes, [0, 0]);
        let e = schema
            .encode(&serde_json::json!({"id": "x"}), None)
            .unwrap_err();
        assert!(e.contains("does not fit `shop.Order`"), "{e}");
    }

    #[test]
    fn reads_a_base64_descriptor() {
        let compiled = ProtoSchema::parse(ADDRESS, &[]).unwrap();
        let proto = compiled
            .pool
            .get_file_by_name(MAIN)
            .unwrap()
            .file_descriptor_proto()
            .clone();
        let text = base64::engine::general_purpose::STANDARD.encode(proto.encode_to_vec());
        let schema = ProtoSchema::parse(&text, &[]).unwrap();
        assert_eq!(
            schema.decode(&[0, 0x0a, 1, b'z']).unwrap(),
            serde_json::json!({"city": "z"})
        );
    }
}

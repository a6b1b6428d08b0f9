//! JSON Schema payloads, optionally validated against their schema (the
//! schema's references resolved from the registry's answer, never fetched
//! over the network).

use jsonschema::{Resource, Validator};
use serde_json::Value;

/// A JSON Schema, compiled for validation.
pub struct JsonSchema {
    validator: Validator,
}

impl JsonSchema {
    /// Compiles `text` with `references` (`(name, text)`: the URL each is
    /// referred to by, and its schema).
    pub fn parse(text: &str, references: &[(&str, &str)]) -> Result<Self, String> {
        let schema: Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON Schema: {e}"))?;
        let mut options = jsonschema::options();
        for (name, text) in references {
            let contents: Value = serde_json::from_str(text)
                .map_err(|e| format!("invalid JSON Schema reference `{name}`: {e}"))?;
            let resource = Resource::from_contents(contents)
                .map_err(|e| format!("invalid JSON Schema reference `{name}`: {e}"))?;
            options = options.with_resource(name.to_string(), resource);
        }
        let validator = options
            .build(&schema)
            .map_err(|e| format!("invalid JSON Schema: {e}"))?;
        Ok(Self { validator })
    }

    /// Checks `payload` against the schema: the first violation, with the
    /// path of the value that breaks it.
    pub fn validate(&self, payload: &Value) -> Result<(), String> {
        self.validator.validate(payload).map_err(|e| {
            let at = e.instance_path.to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("the value does not match its JSON Schema at `{at}`: {e}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_with_references() {
        let address =
            r#"{"type":"object","properties":{"zip":{"type":"integer"}},"required":["zip"]}"#;
        let schema = JsonSchema::parse(
            r#"{"type":"object","properties":{"to":{"$ref":"https://example.com/address.json"}}}"#,
            &[("https://example.com/address.json", address)],
        )
        .unwrap();
        assert!(schema
            .validate(&serde_json::json!({"to": {"zip": 1}}))
            .is_ok());
        let e = schema
            .validate(&serde_json::json!({"to": {"zip": "x"}}))
            .unwrap_err();
        assert!(e.contains("`/to/zip`"), "{e}");
    }
}

//! The instance's encoders, one per subject: the schema fetched by subject
//! (and registered first, with `auto_register`), parsed once.

use crate::flumen::pipeline::schemas::{by_subject, register, Error, Format, Schema};
use flumen_guest_common::Config;
use schema_codec::avro::AvroSchema;
use schema_codec::framing::{frame, Framed, Framing};
use schema_codec::json_schema::JsonSchema;
use schema_codec::protobuf::ProtoSchema;
use std::collections::HashMap;
use std::rc::Rc;

/// How subjects are named, as Confluent's strategies name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Topic,
    Record,
    TopicRecord,
}

/// The config keys the interceptor takes; any other is refused at `init`.
pub const KEYS: &[&str] = &[
    "field",
    "subject",
    "subject_strategy",
    "record",
    "version",
    "framing",
    "message",
    "auto_register",
    "schema",
    "format",
];

/// The instance's configuration.
pub struct Settings {
    /// Whether the key is encoded (otherwise the value).
    pub key: bool,
    subject: Option<String>,
    strategy: Strategy,
    record: Option<String>,
    version: Option<i32>,
    framing: Framing,
    message: Option<String>,
    /// The schema to register if the subject has none.
    register: Option<(Format, String)>,
}

impl Settings {
    /// Reads and checks the config.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let key = config.one_of("field", &["value", "key"])? == "key";
        let strategy =
            match config.one_of("subject_strategy", &["topic", "record", "topic_record"])? {
                "record" => Strategy::Record,
                "topic_record" => Strategy::TopicRecord,
                _ => Strategy::Topic,
            };
        let record = config.get("record").map(str::to_owned);
        if strategy != Strategy::Topic && record.is_none() && config.get("subject").is_none() {
            return Err("subject_strategy `record` and `topic_record` need `record`: the record's full name".into());
        }
        let version = match config.get("version").unwrap_or("latest") {
            "latest" => None,
            v => Some(v.parse().map_err(|_| {
                format!("config key `version` is `{v}`; expected `latest` or a version number")
            })?),
        };
        let framing = match config.one_of("framing", &["id", "guid", "header"])? {
            "guid" => Framing::Guid,
            "header" => Framing::Header,
            _ => Framing::Id,
        };
        let register = if config.bool_or("auto_register", false)? {
            let schema = config.required("schema")?.to_owned();
            let format = match config.one_of("format", &["avro", "protobuf", "json"])? {
                "protobuf" => Format::Protobuf,
                "json" => Format::Json,
                _ => Format::Avro,
            };
            Some((format, schema))
        } else {
            None
        };
        Ok(Self {
            key,
            subject: config.get("subject").map(str::to_owned),
            strategy,
            record,
            version,
            framing,
            message: config.get("message").map(str::to_owned),
            register,
        })
    }

    fn subject(&self, topic: &str) -> String {
        let field = if self.key { "key" } else { "value" };
        match (&self.subject, self.strategy, &self.record) {
            (Some(s), _, _) => s.clone(),
            (None, Strategy::Record, Some(r)) => r.clone(),
            (None, Strategy::TopicRecord, Some(r)) => format!("{topic}-{r}"),
            _ => format!("{topic}-{field}"),
        }
    }
}

/// How a schema writes JSON.
enum Kind {
    Avro(AvroSchema),
    Protobuf(ProtoSchema),
    Json(JsonSchema),
}

/// One subject's schema, ready to write with.
pub struct Encoder {
    kind: Kind,
    id: Option<u32>,
    guid: Option<String>,
    framing: Framing,
    message: Option<String>,
}

impl Encoder {
    /// The framed form of a JSON field.
    pub fn encode(&self, field: &[u8]) -> Result<Framed, String> {
        let json: serde_json::Value =
            serde_json::from_slice(field).map_err(|e| format!("not JSON: {e}"))?;
        let (indexes, payload) = match &self.kind {
            Kind::Avro(s) => (None, s.encode(&json)?),
            Kind::Protobuf(s) => {
                let (indexes, payload) = s.encode(&json, self.message.as_deref())?;
                (Some(indexes), payload)
            }
            Kind::Json(schema) => {
                schema.validate(&json)?;
                (None, field.to_vec())
            }
        };
        frame(
            self.framing,
            self.id,
            self.guid.as_deref(),
            indexes.as_deref(),
            &payload,
        )
        .map_err(|e| e.0)
    }
}

/// What looking a subject's encoder up gave.
pub enum Lookup {
    /// Its encoder.
    Found(Rc<Encoder>),
    /// No such subject, or a schema that does not parse: reject.
    Reject(String),
    /// The registry cannot answer now, or the component may not ask: fail.
    Fail(String),
}

/// The instance's encoders by subject.
pub struct Encoders {
    /// The configuration.
    pub settings: Settings,
    known: HashMap<String, Result<Rc<Encoder>, String>>,
}

impl Encoders {
    /// No encoders yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            known: HashMap::new(),
        }
    }

    /// The encoder for events of `topic`, fetched on first use.
    pub fn for_topic(&mut self, topic: &str) -> Lookup {
        let subject = self.settings.subject(topic);
        if let Some(known) = self.known.get(&subject) {
            return match known {
                Ok(e) => Lookup::Found(e.clone()),
                Err(e) => Lookup::Reject(e.clone()),
            };
        }
        let fetched = match by_subject(&subject, self.settings.version) {
            Err(Error::NotFound(_)) if self.settings.register.is_some() => self.register(&subject),
            other => other,
        };
        let made = match fetched {
            Ok(schema) => self
                .encoder(&schema)
                .map(Rc::new)
                .map_err(|e| format!("subject `{subject}`: {e}")),
            Err(Error::NotFound(e)) => Err(format!("subject `{subject}` has no such schema: {e}")),
            Err(Error::Unavailable(e)) => {
                return Lookup::Fail(format!("the schema registry is unavailable: {e}"))
            }
            Err(Error::NotGranted(e)) => return Lookup::Fail(e),
        };
        let lookup = match &made {
            Ok(e) => Lookup::Found(e.clone()),
            Err(e) => Lookup::Reject(e.clone()),
        };
        self.known.insert(subject, made);
        lookup
    }

    /// Registers the configured schema under `subject`, then reads it back
    /// (for its GUID).
    fn register(&self, subject: &str) -> Result<Schema, Error> {
        let Some((format, text)) = &self.settings.register else {
            return Err(Error::NotFound(format!("no schema under `{subject}`")));
        };
        register(subject, *format, text)?;
        by_subject(subject, None)
    }

    fn encoder(&self, schema: &Schema) -> Result<Encoder, String> {
        let kind = match schema.format {
            Format::Avro => {
                let refs: Vec<&str> = schema.references.iter().map(|r| r.text.as_str()).collect();
                Kind::Avro(AvroSchema::parse(&schema.text, &refs)?)
            }
            Format::Protobuf => {
                let refs: Vec<(&str, &str)> = schema
                    .references
                    .iter()
                    .map(|r| (r.name.as_str(), r.text.as_str()))
                    .collect();
                Kind::Protobuf(ProtoSchema::parse(&schema.text, &refs)?)
            }
            Format::Json => {
                let refs: Vec<(&str, &str)> = schema
                    .references
                    .iter()
                    .map(|r| (r.name.as_str(), r.text.as_str()))
                    .collect();
                Kind::Json(JsonSchema::parse(&schema.text, &refs)?)
            }
        };
        Ok(Encoder {
            kind,
            id: schema.id,
            guid: schema.guid.clone(),
            framing: self.settings.framing,
            message: self
                .settings
                .message
                .clone()
                .or_else(|| self.settings.record.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: &[(&str, &str)]) -> Result<Settings, String> {
        let entries = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::new(entries, KEYS)?;
        Settings::from_config(&config)
    }

    #[test]
    fn subjects_are_named_as_confluent_s_strategies_name_them() {
        let topic = |entries: &[(&str, &str)]| settings(entries).unwrap().subject("orders");
        assert_eq!(topic(&[]), "orders-value");
        assert_eq!(topic(&[("field", "key")]), "orders-key");
        assert_eq!(
            topic(&[("subject_strategy", "record"), ("record", "shop.Order")]),
            "shop.Order"
        );
        assert_eq!(
            topic(&[
                ("subject_strategy", "topic_record"),
                ("record", "shop.Order")
            ]),
            "orders-shop.Order"
        );
        assert_eq!(
            topic(&[
                ("subject", "fixed"),
                ("subject_strategy", "record"),
                ("record", "x")
            ]),
            "fixed"
        );
    }

    #[test]
    fn versions_framings_and_registration_are_checked() {
        assert_eq!(settings(&[("version", "3")]).unwrap().version, Some(3));
        assert_eq!(settings(&[]).unwrap().version, None);
        assert!(settings(&[("version", "newest")])
            .err()
            .unwrap_or_default()
            .contains("`latest` or a version number"));
        assert!(settings(&[("subject_strategy", "record")])
            .err()
            .unwrap_or_default()
            .contains("need `record`"));
        assert!(settings(&[("framing", "magic")]).is_err());
        assert!(settings(&[("auto_register", "true")])
            .err()
            .unwrap_or_default()
            .contains("schema"));
        let s = settings(&[
            ("auto_register", "true"),
            ("schema", "{}"),
            ("format", "json"),
        ])
        .unwrap();
        assert!(matches!(s.register, Some((Format::Json, _))));
    }
}

//! The process's Schema Registry client: one per flumen process, shared by
//! every component and instance granted `schema_registry = true`.
//!
//! Typed Kafka events name the schema that wrote them by id (or GUID); a
//! guest asks the host for it through the `schemas` import. The registry
//! is asked once per schema per process, however many partitions and
//! instances read it: the [`cache`] keeps what it answered, bounded, and a
//! schema being fetched is waited for, not fetched again. A schema's
//! references are resolved here, so a guest receives everything it needs
//! to parse it in one answer.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use flumen::config::SchemaRegistryConfig;
//! use flumen::registry::Registry;
//! use std::time::{Duration, Instant};
//!
//! let config: SchemaRegistryConfig = toml::from_str(r#"urls = ["http://localhost:8081"]"#)?;
//! let registry = Registry::new(&config)?;
//! let schema = registry.by_id(1, Instant::now() + Duration::from_secs(5))?;
//! println!("{:?}: {}", schema.format, schema.text);
//! # Ok(()) }
//! ```

mod cache;
mod client;
mod resolve;

pub use resolve::{Format, Latest, Reference, Schema};

use crate::config::SchemaRegistryConfig;
use cache::{Cache, Key};
use client::Client;
use std::sync::Arc;
use std::time::Instant;

/// Why a schema was not returned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The registry says it has no such schema (HTTP 404). Asking again
    /// will not help.
    #[error("{0}")]
    NotFound(String),
    /// The registry could not be reached, did not answer in time, or
    /// answered with another error. Asking again later may help.
    #[error("{0}")]
    Unavailable(String),
}

/// Why the client could not be set up from its config.
#[derive(Debug, thiserror::Error)]
#[error("[schema_registry]: {0}")]
pub struct SetupError(String);

/// The process's registry client and schema cache.
pub struct Registry {
    client: Client,
    cache: Cache,
}

impl Registry {
    /// A client for `config`'s registry. Reads the private CA file, if
    /// any; connects only when a schema is first asked for.
    pub fn new(config: &SchemaRegistryConfig) -> Result<Arc<Self>, SetupError> {
        Ok(Arc::new(Self {
            client: Client::new(config).map_err(SetupError)?,
            cache: Cache::new(config.cache_schemas),
        }))
    }

    /// The schema registered under `id`, answered by `deadline` (or by
    /// the configured timeout, if sooner).
    pub fn by_id(&self, id: u32, deadline: Instant) -> Result<Arc<Schema>, FetchError> {
        self.cached(Key::Id(id), deadline, || format!("schemas/ids/{id}"))
    }

    /// The schema registered under `guid` (hex digits; dashes optional).
    pub fn by_guid(&self, guid: &str, deadline: Instant) -> Result<Arc<Schema>, FetchError> {
        let hex: String = guid
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FetchError::NotFound(format!(
                "`{guid}` is not a schema GUID (32 hex digits)"
            )));
        }
        let dashed = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        self.cached(Key::Guid(hex), deadline, || {
            format!("schemas/guids/{dashed}")
        })
    }

    /// The newest version registered under `subject` (not cached: `check
    /// --connect` asks, to show what a pipeline's topics have), or `None`
    /// if there is no such subject.
    pub fn latest(&self, subject: &str, deadline: Instant) -> Result<Option<Latest>, FetchError> {
        let mut get = |path: &str| self.client.get(path, deadline);
        resolve::latest(subject, &mut get)
    }

    /// The schema registered under `subject` as `version`, or its newest
    /// version. A pinned version is cached; the newest is asked for every
    /// time (it changes).
    pub fn by_subject(
        &self,
        subject: &str,
        version: Option<i32>,
        deadline: Instant,
    ) -> Result<Arc<Schema>, FetchError> {
        match version {
            Some(v) => {
                let path = resolve::subject_path(subject, &format!("versions/{v}"));
                let key = Key::Subject(subject.to_owned(), v);
                self.cached_as(key, Some(subject), deadline, || path)
            }
            None => {
                let path = resolve::subject_path(subject, "versions/latest");
                let mut get = |path: &str| self.client.get(path, deadline);
                resolve::fetch(&path, Some(subject), &mut get).map(Arc::new)
            }
        }
    }

    /// Registers `text` under `subject` (or finds it registered there);
    /// its id.
    pub fn register(
        &self,
        subject: &str,
        format: Format,
        text: &str,
        deadline: Instant,
    ) -> Result<u32, FetchError> {
        let mut post = |path: &str, body: Vec<u8>| self.client.post(path, body, deadline);
        resolve::register(subject, format, text, &mut post)
    }

    fn cached(
        &self,
        key: Key,
        deadline: Instant,
        path: impl FnOnce() -> String,
    ) -> Result<Arc<Schema>, FetchError> {
        self.cached_as(key, None, deadline, path)
    }

    fn cached_as(
        &self,
        key: Key,
        subject: Option<&str>,
        deadline: Instant,
        path: impl FnOnce() -> String,
    ) -> Result<Arc<Schema>, FetchError> {
        let schema = self.cache.get_or_fetch(key.clone(), || {
            let mut get = |path: &str| self.client.get(path, deadline);
            resolve::fetch(&path(), subject, &mut get)
        })?;
        // A topic may mix framings: the same schema named by id in one
        // event and by GUID in the next is one schema, fetched once.
        let aliases = [schema.id.map(Key::Id), schema.guid.clone().map(Key::Guid)];
        for alias in aliases.into_iter().flatten().filter(|a| *a != key) {
            self.cache.insert(alias, schema.clone());
        }
        Ok(schema)
    }
}

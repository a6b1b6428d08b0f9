//! The host side of the `schemas` import: a guest granted
//! `schema_registry = true` reads schemas through the process's
//! [`Registry`], within its call's deadline.
//!
//! An `unavailable` answer is remembered for the rest of the call: if the
//! guest then fails the call, the failure is an outage of the registry,
//! not bad data, and the flow retries it without ever giving the events up
//! (see [`crate::flow::Unavailable`]).

use super::tag::GuestTag;
use crate::contract::bindings::interceptor::flumen::pipeline::schemas as wit;
pub use crate::registry::Registry;
use crate::registry::{FetchError, Format, Schema};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One guest instance's access to the registry.
pub struct SchemaGrant {
    /// The process's registry, if the component is granted it.
    registry: Option<Arc<Registry>>,
    /// Whether the config grants it (a grant without a registry cannot
    /// pass config validation, but a guest run by `flumen test` can).
    granted: bool,
    /// Whether it may register schemas too.
    register: bool,
    tag: GuestTag,
    /// When the current call must be answered by.
    deadline: Instant,
    /// The first `unavailable` answer of the current call.
    unavailable: Option<String>,
}

impl SchemaGrant {
    /// The grant of an instance of a component that `granted` access to
    /// `registry`.
    pub fn new(
        registry: Option<Arc<Registry>>,
        granted: bool,
        register: bool,
        tag: GuestTag,
    ) -> Self {
        Self {
            registry,
            granted,
            register,
            tag,
            deadline: Instant::now(),
            unavailable: None,
        }
    }

    /// Starts a call that may run for `call_timeout`. A fetch gives up a
    /// fifth of it (at most a second) early, so the guest has time to
    /// answer.
    pub fn arm(&mut self, call_timeout: Duration) {
        self.deadline =
            Instant::now() + call_timeout - (call_timeout / 5).min(Duration::from_secs(1));
        self.unavailable = None;
    }

    /// Why the registry was unavailable during the last call, if it was.
    pub fn take_unavailable(&mut self) -> Option<String> {
        self.unavailable.take()
    }

    /// The schema `fetch` gets from the registry, if the component is
    /// granted it, as the import answers it.
    pub fn lookup(
        &mut self,
        fetch: impl FnOnce(&Registry, Instant) -> Result<Arc<Schema>, FetchError>,
    ) -> Result<wit::Schema, wit::Error> {
        let registry = self.registry()?;
        let fetched = fetch(&registry, self.deadline);
        self.answer(fetched.map(|s| to_wit(&s)))
    }

    /// Registers a schema through `register`, if the component may.
    pub fn register(
        &mut self,
        register: impl FnOnce(&Registry, Instant) -> Result<u32, FetchError>,
    ) -> Result<u32, wit::Error> {
        let registry = self.registry()?;
        if !self.register {
            return Err(wit::Error::NotGranted(format!(
                "component `{}` may read schemas but not register them: set \
                 `schema_registry_register = true` in its config",
                self.tag.component
            )));
        }
        let registered = register(&registry, self.deadline);
        self.answer(registered)
    }

    /// A registry answer as the import gives it; an outage is remembered
    /// for the call.
    fn answer<T>(&mut self, answer: Result<T, FetchError>) -> Result<T, wit::Error> {
        match answer {
            Ok(t) => Ok(t),
            Err(FetchError::NotFound(m)) => Err(wit::Error::NotFound(m)),
            Err(FetchError::Unavailable(m)) => {
                tracing::warn!(component = %self.tag.component, pipeline = %self.tag.pipeline,
                    error = %m, "schema registry unavailable");
                self.unavailable.get_or_insert_with(|| m.clone());
                Err(wit::Error::Unavailable(m))
            }
        }
    }

    /// The registry, if the component is granted it.
    fn registry(&self) -> Result<Arc<Registry>, wit::Error> {
        match (&self.registry, self.granted) {
            (Some(r), true) => Ok(r.clone()),
            (_, false) => Err(wit::Error::NotGranted(format!(
                "component `{}` is not granted the schema registry: set `schema_registry = \
                 true` in its config",
                self.tag.component
            ))),
            (None, true) => Err(wit::Error::NotGranted(
                "this flumen has no [schema_registry] configured".into(),
            )),
        }
    }
}

fn to_wit(s: &Schema) -> wit::Schema {
    wit::Schema {
        id: s.id,
        guid: s.guid.clone(),
        subject: s.subject.clone(),
        format: format(s.format),
        text: s.text.clone(),
        references: s
            .references
            .iter()
            .map(|r| wit::Reference {
                name: r.name.clone(),
                subject: r.subject.clone(),
                version: r.version,
                format: format(r.format),
                text: r.text.clone(),
            })
            .collect(),
    }
}

fn format(f: Format) -> wit::Format {
    match f {
        Format::Avro => wit::Format::Avro,
        Format::Protobuf => wit::Format::Protobuf,
        Format::Json => wit::Format::Json,
    }
}

//! A compiled, type-checked component, and the sandboxed store each of its
//! instances runs in.

use super::budget::LogBudget;
use super::error::{trap, GuestError};
use super::sandbox;
use super::state::GuestState;
use super::tag::GuestTag;
use super::{producer, Origin, Runtime, EPOCH_TICK};
use crate::config::{ComponentConfig, HostPattern};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimitsBuilder};

/// How a component's machine code was obtained, for `check` to report.
#[derive(Clone, Copy, Debug)]
pub struct Compiled {
    /// From the compile cache, or compiled now.
    pub origin: Origin,
    /// How long loading took (compiling, or mapping the cache entry).
    pub took: Duration,
}

/// A compiled, type-checked component, ready to be instantiated any number of
/// times. `P` is the typed `InstancePre` of its world.
#[derive(Clone)]
pub struct Loaded<P> {
    pub(super) engine: Engine,
    pub(super) fuel: bool,
    pub(super) pre: P,
    pub(super) cfg: Arc<ComponentConfig>,
    pub(super) guest_config: Arc<Vec<(String, String)>>,
    pub(super) http_allow: Arc<[HostPattern]>,
    pub(super) kafka_produce: Arc<[String]>,
    pub(super) producer: Option<Arc<producer::ProducerHub>>,
    pub(super) registry: Option<Arc<crate::registry::Registry>>,
    pub(super) name: Arc<str>,
    /// The component's log budget, shared by all its instances; a new
    /// version (a reload) starts a new one.
    pub(super) log_budget: Arc<LogBudget>,
    /// Digest of the component file it was compiled from.
    pub(super) digest: u64,
    pub(super) compiled: Compiled,
}

/// A digest of a component file's bytes, for telling whether a file on disk
/// is the one a component was compiled from. Change detection only: a
/// collision would at worst skip a reload of a changed file, which the next
/// change or SIGHUP repairs.
pub fn content_digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl<P> Loaded<P> {
    pub(super) fn new(
        rt: &Runtime,
        cfg: &ComponentConfig,
        pre: P,
        digest: u64,
        compiled: Compiled,
    ) -> Self {
        Self {
            digest,
            compiled,
            engine: rt.engine.clone(),
            fuel: rt.fuel,
            pre,
            guest_config: Arc::new(cfg.guest_config()),
            // The config was validated, so every pattern parses.
            http_allow: cfg
                .http_allow
                .iter()
                .filter_map(|h| HostPattern::parse(h).ok())
                .collect(),
            kafka_produce: cfg.kafka_produce.iter().cloned().collect(),
            producer: rt.producer.clone(),
            registry: rt.registry.clone(),
            name: cfg.name.as_str().into(),
            log_budget: Arc::new(LogBudget::new(&cfg.budgets)),
            cfg: Arc::new(cfg.clone()),
        }
    }

    /// The component's name from the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's configuration.
    pub fn config(&self) -> &ComponentConfig {
        &self.cfg
    }

    /// How its machine code was obtained.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// The [`content_digest`] of the file it was compiled from.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// A store holding a fresh sandbox with this component's grants and limits.
    pub(super) fn new_store(&self, tag: GuestTag) -> Result<Store<GuestState>, GuestError> {
        let wasi = sandbox::wasi_context(&self.cfg, &tag, &self.log_budget).map_err(|reason| {
            GuestError::Grant {
                name: self.name.to_string(),
                reason,
            }
        })?;
        let l = &self.cfg.limits;
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(l.memory_mb << 20).unwrap_or(usize::MAX))
            .table_elements(l.max_table_elements)
            .instances(l.max_instances)
            .tables(l.max_tables)
            // A guest that outgrows its cap traps with a message saying so,
            // instead of seeing `memory.grow` fail and aborting obscurely.
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            GuestState {
                wasi,
                http: Default::default(),
                http_grant: sandbox::HttpGrant::new(self.http_allow.clone(), tag.clone()),
                produce_grant: producer::ProduceGrant::new(
                    self.producer.clone(),
                    self.kafka_produce.clone(),
                    &self.cfg.budgets,
                    tag.clone(),
                ),
                schema_grant: super::schemas::SchemaGrant::new(
                    self.registry.clone(),
                    self.cfg.schema_registry,
                    self.cfg.schema_registry_register,
                    tag.clone(),
                ),
                rejections: Default::default(),
                log_budget: self.log_budget.clone(),
                table: ResourceTable::new(),
                limits,
                tag,
            },
        );
        store.limiter(|s| &mut s.limits);
        // wasmtime counts what it copies out of the guest (an answer, or
        // the data of one host call such as a `send` or a write) against
        // this "hostcall fuel", and refuses the copy once it runs out.
        // Measuring an answer only after copying it would not bound the
        // copy: a hand-written guest can point every entry of a list at the
        // same bytes, so a 1 MiB guest memory could make a copy of many
        // GiB.
        store.set_hostcall_fuel(
            usize::try_from(self.cfg.budgets.output_bytes_per_call).unwrap_or(usize::MAX),
        );
        Ok(store)
    }

    /// Arms the per-call bounds: the epoch deadline and, if counted, fuel.
    pub(super) fn arm(&self, store: &mut Store<GuestState>) -> Result<(), GuestError> {
        let timeout = self.cfg.limits.call_timeout_ms;
        store.set_epoch_deadline((timeout / EPOCH_TICK.as_millis() as u64).max(1));
        store
            .data_mut()
            .produce_grant
            .arm(Duration::from_millis(timeout));
        store
            .data_mut()
            .http_grant
            .arm(Duration::from_millis(timeout));
        store
            .data_mut()
            .schema_grant
            .arm(Duration::from_millis(timeout));
        if self.fuel {
            store
                .set_fuel(self.cfg.limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| trap(&self.name, e))?;
        }
        Ok(())
    }
}

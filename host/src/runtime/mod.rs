//! The guest runtime: one wasmtime [`Engine`] for the process, components
//! compiled and type-checked once at start-up, and cheap per-partition
//! instances created from their `InstancePre`.
//!
//! Every instance gets its own sandbox (the `sandbox` module: only the directories,
//! variables and HTTP hosts granted to it), a memory cap, and a wall-clock
//! deadline per call enforced by epoch interruption (plus fuel, if set). A
//! call that traps poisons the instance: it is dropped and the next call
//! runs on a fresh one, because a trapped component's memory is in an
//! unknown state.
//!
//! A component lives in a [`Slot`], which a hot reload can point at a new
//! version; each partition's [`Guest`] notices at its next batch boundary.

pub mod bindings;
pub mod cache;
pub mod columns;
pub mod producer;
mod sandbox;
mod state;

pub use cache::{CompileCache, Origin};
pub use sandbox::HostPattern;
pub use state::{GuestState, GuestTag};

use crate::config::ComponentConfig;
use bindings::columnar_interceptor::{ColumnarInterceptor, ColumnarInterceptorPre};
use bindings::columnar_sink::{ColumnarSink, ColumnarSinkPre};
use bindings::interceptor::{Interceptor, InterceptorPre as RecordInterceptorPre};
use bindings::sink::{Sink, SinkPre as RecordSinkPre};
use bindings::{Event, InterceptorVerdict, SinkVerdict, Source};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config as EngineConfig, Engine, Store, StoreLimitsBuilder};

/// How often the epoch ticks; call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Failure to load, check or run a guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The component file could not be read or compiled.
    #[error("component `{name}` ({path}): cannot load: {reason}")]
    Load {
        /// Component name from the config.
        name: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The component does not implement the world it is configured as.
    #[error("component `{name}` ({path}) is not a flumen {world} (it must implement the `flumen:pipeline/{world}` or `flumen:pipeline/columnar-{world}` world of wit/): {reason}")]
    WrongWorld {
        /// Component name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// `interceptor` or `sink`.
        world: &'static str,
        /// wasmtime's explanation.
        reason: String,
    },
    /// A grant could not be given (a directory that cannot be opened, a
    /// variable that is not set).
    #[error("component `{name}`: {reason}")]
    Grant {
        /// Component name.
        name: String,
        /// What and why.
        reason: String,
    },
    /// Instantiation failed (for example a start function trapped).
    #[error("component `{name}`: cannot instantiate: {reason}")]
    Instantiate {
        /// Component name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The guest's `init` refused its configuration.
    #[error("component `{name}` refused its config: {message}")]
    InitRefused {
        /// Component name.
        name: String,
        /// The guest's message.
        message: String,
    },
    /// The call trapped (panic, out-of-bounds, deadline, memory cap).
    #[error("component `{name}` trapped: {reason}")]
    Trap {
        /// Component name.
        name: String,
        /// The trap, with the guest's backtrace when available.
        reason: String,
    },
    /// The guest returned an error for the whole call.
    #[error("component `{name}` failed the batch: {message}")]
    Failed {
        /// Component name.
        name: String,
        /// The guest's message.
        message: String,
    },
    /// The guest broke the contract: wrong number of verdicts, unknown route.
    #[error("component `{name}` broke the contract: {message}")]
    Contract {
        /// Component name.
        name: String,
        /// What it did.
        message: String,
    },
}

/// The process-wide wasmtime engine and the linker that provides the host's
/// imports (WASI preview 2, `wasi:http`, `flumen:pipeline/log` and
/// `flumen:pipeline/producer`) to every guest.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    fuel: bool,
    cache: Option<CompileCache>,
    producer: Option<Arc<producer::ProducerHub>>,
}

impl Runtime {
    /// Creates the engine and starts the epoch ticker that enforces call
    /// deadlines. With `fuel`, the engine counts fuel, which components'
    /// `limits.fuel` need; it slows every guest, so it is on only when some
    /// component sets it.
    pub fn new(fuel: bool) -> anyhow::Result<Self> {
        let mut config = EngineConfig::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        bindings::interceptor::flumen::pipeline::log::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        bindings::interceptor::flumen::pipeline::types::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        // Linked for every guest, like `wasi:http`: the grant, checked on
        // every record, is what limits it.
        bindings::kafka_sink::flumen::pipeline::producer::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        // The ticker only holds a weak handle so that it ends with the engine.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("flumen-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            fuel,
            cache: None,
            producer: None,
        })
    }

    /// Lets Kafka sinks produce to `kafka` through the `producer` import
    /// (each only to the topics it is granted), for calls that may take
    /// `call_timeout`. Without this, every record they send is refused.
    pub fn with_producer(
        mut self,
        kafka: crate::config::KafkaConfig,
        call_timeout: Duration,
    ) -> Self {
        self.producer = Some(producer::ProducerHub::new(kafka, call_timeout));
        self
    }

    /// The producer Kafka sinks write through, if any.
    pub fn producer(&self) -> Option<&Arc<producer::ProducerHub>> {
        self.producer.as_ref()
    }

    /// The runtime a config needs: with fuel counting if any component
    /// sets `limits.fuel`, and the compile cache its `[cache]` asks for.
    /// A cache that cannot be used is logged and left off: it only saves
    /// time.
    pub fn for_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let mut runtime = Self::new(config.uses_fuel())?
            .with_producer(config.kafka.clone(), config.shortest_produce_timeout());
        if config.cache.enabled {
            match config.cache.dir.clone().or_else(cache::default_dir) {
                Some(dir) => runtime = runtime.with_cache(&dir),
                None => tracing::warn!(
                    "no compile cache: set `cache.dir` (or $FLUMEN_CACHE_DIR or $HOME); every \
                     start compiles every component"
                ),
            }
        }
        Ok(runtime)
    }

    /// Uses the compile cache in `dir` (see [`cache`]); logs and goes on
    /// without it if it cannot be used.
    pub fn with_cache(mut self, dir: &std::path::Path) -> Self {
        match CompileCache::open(dir, &self.engine) {
            Ok(c) => self.cache = Some(c),
            Err(e) => tracing::warn!(error = %e, "compile cache off"),
        }
        self
    }

    /// The compile cache, if on.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.cache.as_ref()
    }

    /// Compiles a component and checks it against its world's contract:
    /// its imports must be satisfied by the host and its exports must be
    /// the world's.
    pub fn load<P: GuestKind>(&self, cfg: &ComponentConfig) -> Result<Loaded<P>, GuestError> {
        let bytes = std::fs::read(&cfg.component).map_err(|e| GuestError::Load {
            name: cfg.name.clone(),
            path: cfg.component.clone(),
            reason: e.to_string(),
        })?;
        self.load_bytes(cfg, &bytes)
    }

    /// [`Runtime::load`] with the component file's contents already read.
    pub fn load_bytes<P: GuestKind>(
        &self,
        cfg: &ComponentConfig,
        bytes: &[u8],
    ) -> Result<Loaded<P>, GuestError> {
        if cfg.limits.fuel.is_some() && !self.fuel {
            return Err(GuestError::Load {
                name: cfg.name.clone(),
                path: cfg.component.clone(),
                reason: "limits.fuel needs a restart: fuel counting is switched on for the whole \
                         process when it starts"
                    .into(),
            });
        }
        let started = Instant::now();
        let compiled = match &self.cache {
            Some(cache) => cache.load(&self.engine, bytes),
            None => Component::new(&self.engine, bytes).map(|c| (c, Origin::Compiled)),
        };
        let (component, origin) = compiled.map_err(|e| GuestError::Load {
            name: cfg.name.clone(),
            path: cfg.component.clone(),
            reason: format!("{e:#}"),
        })?;
        let compiled = Compiled {
            origin,
            took: started.elapsed(),
        };
        tracing::info!(component = %cfg.name, ?origin, ms = compiled.took.as_millis() as u64,
            "component loaded");
        let digest = content_digest(bytes);
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(P::new)
            .map_err(|e| GuestError::WrongWorld {
                name: cfg.name.clone(),
                path: cfg.component.clone(),
                world: P::WORLD,
                reason: format!("{e:#}"),
            })?;
        Ok(Loaded::new(self, cfg, pre, digest, compiled))
    }
}

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
    engine: Engine,
    fuel: bool,
    pre: P,
    cfg: Arc<ComponentConfig>,
    guest_config: Arc<Vec<(String, String)>>,
    http_allow: Arc<[HostPattern]>,
    kafka_produce: Arc<[String]>,
    producer: Option<Arc<producer::ProducerHub>>,
    name: Arc<str>,
    /// Digest of the component file it was compiled from.
    digest: u64,
    compiled: Compiled,
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
    fn new(rt: &Runtime, cfg: &ComponentConfig, pre: P, digest: u64, compiled: Compiled) -> Self {
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
            name: cfg.name.as_str().into(),
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

    /// The `flumen:pipeline` world it implements, which says how it takes
    /// its batches: `interceptor` and `sink` as records,
    /// `columnar-interceptor` and `columnar-sink` as columns.
    pub fn world(&self) -> &'static str
    where
        P: GuestKind,
    {
        self.pre.world()
    }

    /// The [`content_digest`] of the file it was compiled from.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// A store holding a fresh sandbox with this component's grants and limits.
    fn new_store(&self, tag: GuestTag) -> Result<Store<GuestState>, GuestError> {
        let wasi = sandbox::wasi_context(&self.cfg, &tag).map_err(|reason| GuestError::Grant {
            name: self.name.to_string(),
            reason,
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
                    tag.clone(),
                ),
                table: ResourceTable::new(),
                limits,
                tag,
            },
        );
        store.limiter(|s| &mut s.limits);
        Ok(store)
    }

    /// Arms the per-call bounds: the epoch deadline and, if counted, fuel.
    fn arm(&self, store: &mut Store<GuestState>) -> Result<(), GuestError> {
        let timeout = self.cfg.limits.call_timeout_ms;
        store.set_epoch_deadline((timeout / EPOCH_TICK.as_millis() as u64).max(1));
        store
            .data_mut()
            .produce_grant
            .arm(Duration::from_millis(timeout));
        if self.fuel {
            store
                .set_fuel(self.cfg.limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| trap(&self.name, e))?;
        }
        Ok(())
    }
}

/// Where the current version of a component lives. The partitions' guests
/// share it; a hot reload publishes a new version into it and each guest
/// switches at its next batch boundary (see [`Guest::refresh`]).
pub struct Slot<P> {
    version: AtomicU64,
    current: Mutex<Loaded<P>>,
}

impl<P: Clone> Slot<P> {
    /// A slot holding version 1.
    pub fn new(loaded: Loaded<P>) -> Arc<Self> {
        Arc::new(Self {
            version: AtomicU64::new(1),
            current: Mutex::new(loaded),
        })
    }

    /// The current version number; cheap enough to read for every batch.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current version and its component.
    pub fn current(&self) -> (u64, Loaded<P>) {
        // The lock is held only to clone or swap, so poisoning cannot leave
        // a half-written value behind.
        let loaded = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (self.version(), loaded.clone())
    }

    /// Makes `loaded` the current version; returns its number.
    pub fn publish(&self, loaded: Loaded<P>) -> u64 {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = loaded;
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Turns a wasmtime error from a call into a guest error, keeping the detail
/// (trap code, deadline, guest backtrace) an operator needs.
fn trap(name: &str, e: wasmtime::Error) -> GuestError {
    GuestError::Trap {
        name: name.to_owned(),
        reason: format!("{e:#}"),
    }
}

/// What differs between the two kinds of guest: their world, bindings and
/// `init`. Implemented by each world's typed `InstancePre`.
pub trait GuestKind: Sized {
    /// The world's name in `flumen:pipeline`.
    const WORLD: &'static str;
    /// The typed bindings of a live instance.
    type Bindings;
    /// Checks a component's exports against the world.
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self>;
    /// The world the component was checked against: `WORLD` or its
    /// columnar form.
    fn world(&self) -> &'static str;
    /// Instantiates from the pre-checked component.
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings>;
    /// Calls the guest's `init`.
    // The generated `call_init` takes `&Vec` (a WIT list of tuples).
    #[allow(clippy::ptr_arg)]
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>>;
}

/// Whether `pre`'s component exports the `flumen:pipeline` interface
/// `interface`, in any version.
fn exports_interface(pre: &wasmtime::component::InstancePre<GuestState>, interface: &str) -> bool {
    let component = pre.component();
    let prefix = format!("flumen:pipeline/{interface}@");
    component
        .component_type()
        .exports(component.engine())
        .any(|(name, _)| name.starts_with(&prefix))
}

/// An interceptor component, checked against the world it exports: records
/// (`interceptor`) or columns (`columnar-interceptor`).
#[derive(Clone)]
pub enum InterceptorPre {
    /// Takes `list<event>`.
    Records(RecordInterceptorPre<GuestState>),
    /// Takes `columns`.
    Columns(ColumnarInterceptorPre<GuestState>),
}

/// A live interceptor instance, in the form its component exports.
pub enum InterceptorInstance {
    /// Takes `list<event>`.
    Records(Interceptor),
    /// Takes `columns`.
    Columns(ColumnarInterceptor),
}

impl GuestKind for InterceptorPre {
    const WORLD: &'static str = "interceptor";
    type Bindings = InterceptorInstance;
    fn world(&self) -> &'static str {
        match self {
            Self::Records(_) => Self::WORLD,
            Self::Columns(_) => "columnar-interceptor",
        }
    }
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        // A component that exports the columnar interface is checked
        // against it, so that a mistake in it is the error shown.
        if exports_interface(&pre, "columnar-interception") {
            ColumnarInterceptorPre::new(pre).map(Self::Columns)
        } else {
            RecordInterceptorPre::new(pre).map(Self::Records)
        }
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        Ok(match self {
            Self::Records(pre) => InterceptorInstance::Records(pre.instantiate(store)?),
            Self::Columns(pre) => InterceptorInstance::Columns(pre.instantiate(store)?),
        })
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        match b {
            InterceptorInstance::Records(b) => {
                b.flumen_pipeline_interception().call_init(store, config)
            }
            InterceptorInstance::Columns(b) => b
                .flumen_pipeline_columnar_interception()
                .call_init(store, config),
        }
    }
}

/// A sink component, checked against the world it exports: records
/// (`sink`) or columns (`columnar-sink`).
#[derive(Clone)]
pub enum SinkPre {
    /// Takes `list<event>`.
    Records(RecordSinkPre<GuestState>),
    /// Takes `columns`.
    Columns(ColumnarSinkPre<GuestState>),
}

/// A live sink instance, in the form its component exports.
pub enum SinkInstance {
    /// Takes `list<event>`.
    Records(Sink),
    /// Takes `columns`.
    Columns(ColumnarSink),
}

impl GuestKind for SinkPre {
    const WORLD: &'static str = "sink";
    type Bindings = SinkInstance;
    fn world(&self) -> &'static str {
        match self {
            Self::Records(_) => Self::WORLD,
            Self::Columns(_) => "columnar-sink",
        }
    }
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        if exports_interface(&pre, "columnar-delivery") {
            ColumnarSinkPre::new(pre).map(Self::Columns)
        } else {
            RecordSinkPre::new(pre).map(Self::Records)
        }
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        Ok(match self {
            Self::Records(pre) => SinkInstance::Records(pre.instantiate(store)?),
            Self::Columns(pre) => SinkInstance::Columns(pre.instantiate(store)?),
        })
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        match b {
            SinkInstance::Records(b) => b.flumen_pipeline_delivery().call_init(store, config),
            SinkInstance::Columns(b) => b
                .flumen_pipeline_columnar_delivery()
                .call_init(store, config),
        }
    }
}

/// A live guest for one partition. It is instantiated lazily and replaced
/// after a trap.
pub struct Guest<P: GuestKind> {
    slot: Arc<Slot<P>>,
    version: u64,
    loaded: Loaded<P>,
    tag: GuestTag,
    live: Option<(Store<GuestState>, P::Bindings)>,
    /// Calls served by the live instance.
    calls: u64,
    /// Its counters in `/metrics`.
    metrics: crate::metrics::GuestMetrics,
}

impl<P: GuestKind + Clone> Guest<P> {
    /// A guest that instantiates the slot's current version on first use.
    pub fn new(slot: Arc<Slot<P>>, tag: GuestTag) -> Self {
        let (version, loaded) = slot.current();
        let metrics = crate::metrics::GuestMetrics::new(&tag.pipeline, loaded.name(), P::WORLD);
        Self {
            slot,
            version,
            loaded,
            tag,
            live: None,
            calls: 0,
            metrics,
        }
    }

    /// Switches to the slot's current version if a reload published a new
    /// one; the next call then runs on a fresh instance of it. Returns the
    /// new version number if it switched. Callers call this only between
    /// batches, so a batch never sees two versions.
    pub fn refresh(&mut self) -> Option<u64> {
        if self.slot.version() == self.version {
            return None;
        }
        let (version, loaded) = self.slot.current();
        self.version = version;
        self.loaded = loaded;
        self.live = None;
        self.calls = 0;
        Some(version)
    }

    /// The configuration of the version this guest runs.
    pub fn config(&self) -> &ComponentConfig {
        self.loaded.config()
    }
}

impl<P: GuestKind> Guest<P> {
    /// The component's name.
    pub fn name(&self) -> &str {
        self.loaded.name()
    }

    /// Makes sure a live, initialized instance exists.
    pub fn ensure_live(&mut self) -> Result<(), GuestError> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        Ok(())
    }

    fn instantiate(&self) -> Result<(Store<GuestState>, P::Bindings), GuestError> {
        let name = self.loaded.name().to_owned();
        let mut store = self.loaded.new_store(self.tag.clone())?;
        self.loaded.arm(&mut store)?;
        let bindings =
            self.loaded
                .pre
                .instantiate(&mut store)
                .map_err(|e| GuestError::Instantiate {
                    name: name.clone(),
                    reason: format!("{e:#}"),
                })?;
        self.loaded.arm(&mut store)?;
        match P::init(&bindings, &mut store, &self.loaded.guest_config) {
            Ok(Ok(())) => Ok((store, bindings)),
            Ok(Err(message)) => Err(GuestError::InitRefused { name, message }),
            Err(e) => Err(trap(&name, e)),
        }
    }

    /// Runs `f` on the live instance under a fresh deadline. A trap drops
    /// the instance so that the next call gets a new one; so does reaching
    /// `limits.max_calls_per_instance`.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&P::Bindings, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        let (mut store, bindings) = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        self.loaded.arm(&mut store)?;
        let result = f(&bindings, &mut store);
        self.calls += 1;
        let recycle = self.loaded.cfg.limits.max_calls_per_instance;
        if result.is_ok() && (recycle == 0 || self.calls < recycle) {
            self.live = Some((store, bindings));
        } else {
            if result.is_ok() {
                tracing::debug!(
                    component = self.name(),
                    calls = self.calls,
                    "instance recycled"
                );
            }
            self.calls = 0;
        }
        result.map_err(|e| trap(self.loaded.name(), e))
    }

    fn checked<V>(
        &self,
        result: Result<Vec<V>, String>,
        expected: usize,
    ) -> Result<Vec<V>, GuestError> {
        let name = self.name().to_owned();
        let verdicts = result.map_err(|message| GuestError::Failed {
            name: name.clone(),
            message,
        })?;
        if verdicts.len() != expected {
            return Err(GuestError::Contract {
                name,
                message: format!(
                    "returned {} verdicts for a batch of {expected}",
                    verdicts.len()
                ),
            });
        }
        Ok(verdicts)
    }
}

impl Guest<InterceptorPre> {
    /// Calls the interceptor on a batch of `source`'s events; one verdict
    /// per event or an error.
    pub fn process(
        &mut self,
        source: &Source,
        batch: &[Event],
    ) -> Result<Vec<InterceptorVerdict>, GuestError> {
        let started = Instant::now();
        let r = self
            .call(|b, s| match b {
                InterceptorInstance::Records(b) => b
                    .flumen_pipeline_interception()
                    .call_process(s, source, batch),
                InterceptorInstance::Columns(b) => {
                    let columns = columns::from_events(batch)?;
                    let r = b
                        .flumen_pipeline_columnar_interception()
                        .call_process(s, source, &columns)?;
                    Ok(r.map(|v| v.into_iter().map(columns::interceptor_verdict).collect()))
                }
            })
            .and_then(|r| self.checked(r, batch.len()));
        self.metrics.interceptor_call(batch, started.elapsed(), &r);
        r
    }
}

impl Guest<SinkPre> {
    /// Calls the sink on a batch of `source`'s events; one verdict per
    /// event or an error.
    pub fn deliver(
        &mut self,
        source: &Source,
        batch: &[Event],
    ) -> Result<Vec<SinkVerdict>, GuestError> {
        let started = Instant::now();
        let r = self
            .call(|b, s| match b {
                SinkInstance::Records(b) => {
                    b.flumen_pipeline_delivery().call_deliver(s, source, batch)
                }
                SinkInstance::Columns(b) => {
                    let columns = columns::from_events(batch)?;
                    let r = b
                        .flumen_pipeline_columnar_delivery()
                        .call_deliver(s, source, &columns)?;
                    Ok(r.map(|v| v.into_iter().map(columns::sink_verdict).collect()))
                }
            })
            .and_then(|r| self.checked(r, batch.len()));
        self.metrics.sink_call(batch, started.elapsed(), &r);
        r
    }
}

/// An interceptor component, compiled and checked.
pub type InterceptorComponent = Loaded<InterceptorPre>;
/// A sink component, compiled and checked.
pub type SinkComponent = Loaded<SinkPre>;
/// Where an interceptor's current version lives.
pub type InterceptorSlot = Slot<InterceptorPre>;
/// Where a sink's current version lives.
pub type SinkSlot = Slot<SinkPre>;
/// A live interceptor instance.
pub type InterceptorGuest = Guest<InterceptorPre>;
/// A live sink instance.
pub type SinkGuest = Guest<SinkPre>;

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

mod budget;
pub mod cache;
mod compile;
pub mod contract_version;
mod error;
mod guest;
mod kind;
mod loaded;
pub mod metrics;
pub mod producer;
mod rejections;
mod sandbox;
mod schemas;
mod slot;
mod state;
mod tag;

pub use cache::{CompileCache, Origin};
pub use error::GuestError;
pub use guest::Guest;
pub use kind::{GuestKind, InterceptorPre, SinkPre};
pub use loaded::{content_digest, Compiled, Loaded};
pub use slot::Slot;
pub use state::GuestState;
pub use tag::GuestTag;

use crate::config::ComponentConfig;
use crate::contract::bindings;
use crate::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config as EngineConfig, Engine};

/// How often the epoch ticks; call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    registry: Option<Arc<Registry>>,
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
        // The same for `schemas`: a component without the grant is told so
        // on every call.
        bindings::interceptor::flumen::pipeline::schemas::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        bindings::interceptor::flumen::pipeline::rejection::add_to_linker::<_, HasSelf<_>>(
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
            registry: None,
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

    /// Lets components granted `schema_registry = true` read schemas from
    /// `registry`.
    pub fn with_registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The schema registry client, if any.
    pub fn registry(&self) -> Option<&Arc<Registry>> {
        self.registry.as_ref()
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
        if let Some(registry) = &config.schema_registry {
            runtime = runtime.with_registry(Registry::new(registry)?);
        }
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
        if let Some(reason) = not_a_component(bytes) {
            return Err(GuestError::Load {
                name: cfg.name.clone(),
                path: cfg.component.clone(),
                reason,
            });
        }
        let started = Instant::now();
        let compiled = match &self.cache {
            Some(cache) => cache.load(&self.engine, bytes),
            None => compile::compile(&self.engine, bytes).map(|c| (c, Origin::Compiled)),
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
        if let Some(found) = contract_version::unspoken(&component, &self.engine) {
            return Err(GuestError::OldContract {
                name: cfg.name.clone(),
                path: cfg.component.clone(),
                found,
            });
        }
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

/// Why `bytes` cannot be a component, in one line, for the two mistakes
/// that otherwise get the parser's byte dump: a file that is not
/// WebAssembly at all, and a core module that was never made a component.
fn not_a_component(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    // The preamble's version and layer: 1 and 0 for a core module,
    // 0x0d and 1 for a component.
    const CORE: &[u8] = &[1, 0, 0, 0];
    if !bytes.starts_with(MAGIC) {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
        return Some(format!(
            "not a WebAssembly file (it starts with {start:?}, not \"\\0asm\"); point `component` \
             at the .wasm file your guest's build writes"
        ));
    }
    (bytes.get(4..8) == Some(CORE)).then(|| {
        "a core WebAssembly module, not a component; build for wasm32-wasip2, or wrap it with \
         `wasm-tools component new module.wasm --adapt wasi_snapshot_preview1.reactor.wasm -o \
         component.wasm`"
            .to_owned()
    })
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

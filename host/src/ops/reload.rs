//! Hot reload: replace components, and their settings, while events flow.
//!
//! A reload re-reads the config file and every component file, and works
//! off the hot path: each component that changed (its file's bytes or its
//! table in the config) is compiled, checked against its world and
//! instantiated once with its config, in the reloading thread. Only when
//! every changed component passed is anything published; the partitions'
//! workers then switch at their next batch boundary ([`crate::runtime::Slot`]),
//! so a batch in flight finishes on the version it started with. A reload
//! that fails any step changes nothing: the running versions keep running,
//! and the rejection is logged and counted.
//!
//! The consumer is never touched, so a reload causes no rebalance. Changes
//! that would need a new consumer (topics, group, Kafka settings, batching)
//! are refused with a message saying that a restart is needed.

use super::pipeline::{probe, Components, Running};
use crate::config::{ComponentConfig, Config, ConfigError, PipelineConfig};
use crate::runtime::{content_digest, GuestError, GuestKind, Loaded, Runtime, Slot};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a reload was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config file does not load.
    #[error("reload rejected: {0}")]
    Config(#[from] ConfigError),
    /// The change needs a new consumer or a new engine.
    #[error("reload rejected: {0}; restart flumen to apply it")]
    RestartNeeded(String),
    /// A component file cannot be read.
    #[error("reload rejected: component `{name}`: cannot read {path}: {reason}")]
    Read {
        /// The component.
        name: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A component is granted a Kafka topic that cannot be used.
    #[error("reload rejected: {0}")]
    ProduceGrant(String),
    /// A new version failed to compile, match its world, or initialize.
    #[error("reload rejected: pipeline `{pipeline}`: {source}")]
    Guest {
        /// The pipeline.
        pipeline: String,
        /// What the new version did wrong.
        source: GuestError,
    },
}

/// Reload counters, for the log and for operators.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads that published at least one new version.
    pub applied: AtomicU64,
    /// Reloads refused (bad config, broken component, restart needed).
    pub rejected: AtomicU64,
    /// New component versions published.
    pub swaps: AtomicU64,
    /// Triggers that arrived while a reload ran, and were folded into the
    /// one run after it.
    pub coalesced: AtomicU64,
}

/// What [`ReloadHandle::reload`] did with a trigger.
#[derive(Debug)]
pub enum Reloaded {
    /// It reloaded: the versions published (empty if nothing changed).
    Ran(Vec<Swap>),
    /// A reload was running. One more runs when it ends, for this trigger
    /// and every other that arrives meanwhile, and logs its outcome.
    Queued,
}

/// One component's published version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swap {
    /// The pipeline.
    pub pipeline: String,
    /// The component.
    pub component: String,
    /// Its new version number (1 is the version flumen started with).
    pub version: u64,
}

/// Shared access to the reloader, for every trigger (file watch, SIGHUP,
/// the admin endpoint). Reloads run one at a time, and triggers coalesce:
/// one arriving while a reload runs is queued, and any number of queued
/// triggers make one more run, so a storm of triggers with a component
/// that takes 40 s to compile costs two compiles, not fifty.
#[derive(Clone)]
pub struct ReloadHandle {
    inner: Arc<Mutex<Reloader>>,
    gate: Arc<Mutex<Gate>>,
    stats: Arc<ReloadStats>,
}

/// Whether a reload runs, and whether another is queued behind it.
#[derive(Default)]
struct Gate {
    running: bool,
    queued: bool,
}

/// Opens the gate again however the run ends, a panic included, so that
/// later triggers are not queued forever.
struct GateOpener<'a>(&'a Mutex<Gate>);

impl Drop for GateOpener<'_> {
    fn drop(&mut self) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        g.running = false;
        g.queued = false;
    }
}

impl ReloadHandle {
    /// What reloads the components of `running` from `config_path` (the
    /// file its config came from).
    pub fn for_running(running: &Running, config_path: &Path) -> Self {
        Self::new(
            config_path,
            running.runtime.clone(),
            running.config.clone(),
            running.components.clone(),
        )
    }

    /// A reloader for pipelines started from `config` (read from
    /// `config_path`), whose components live in `components` (one entry per
    /// pipeline, in order).
    pub fn new(
        config_path: &Path,
        runtime: Runtime,
        config: Config,
        components: Vec<Components>,
    ) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Reloader {
                path: config_path.to_owned(),
                runtime,
                config,
                components,
            })),
            gate: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Reloads now, or queues the trigger if a reload is running (see
    /// [`ReloadHandle`]). `trigger` says why, for the log. A caller that
    /// runs a reload also runs the one queued behind it, and returns the
    /// outcome of its own.
    pub fn reload(&self, trigger: &str) -> Result<Reloaded, ReloadError> {
        {
            let mut g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            if g.running {
                self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                if !g.queued {
                    tracing::info!(
                        trigger,
                        "reload queued: one is running, and one more runs \
                        when it ends (for every trigger until then)"
                    );
                }
                g.queued = true;
                return Ok(Reloaded::Queued);
            }
            g.running = true;
        }
        let _open = GateOpener(&self.gate);
        let outcome = self.run(trigger);
        loop {
            {
                let mut g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
                if !g.queued {
                    break;
                }
                g.queued = false;
            }
            // Its outcome is logged and counted; the triggers that queued
            // it have had their answer.
            let _ = self.run("queued triggers");
        }
        outcome.map(Reloaded::Ran)
    }

    /// One reload.
    fn run(&self, trigger: &str) -> Result<Vec<Swap>, ReloadError> {
        let mut reloader = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        tracing::info!(trigger, "reload started");
        match reloader.reload() {
            Ok(swaps) => {
                if swaps.is_empty() {
                    tracing::info!(trigger, "reload: nothing changed");
                } else {
                    self.stats.applied.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .swaps
                        .fetch_add(swaps.len() as u64, Ordering::Relaxed);
                }
                for s in &swaps {
                    tracing::info!(trigger, pipeline = %s.pipeline, component = %s.component,
                        version = s.version,
                        "reload: new version published; partitions switch at their next batch");
                }
                Ok(swaps)
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!(trigger, error = %e, "reload REJECTED; the running versions keep running");
                Err(e)
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &ReloadStats {
        &self.stats
    }

    /// The reload counters, shared (for the metrics endpoint).
    pub fn shared_stats(&self) -> Arc<ReloadStats> {
        self.stats.clone()
    }

    /// The files whose change should trigger a reload: the config file and
    /// every component file.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut files = vec![r.path.clone()];
        for p in &r.config.pipelines {
            for c in p.interceptors.iter().chain(&p.sinks) {
                files.push(c.component.clone());
            }
        }
        files
    }
}

struct Reloader {
    path: PathBuf,
    /// The config the running versions came from: what a new one is
    /// compared with for changes that need a restart.
    config: Config,
    runtime: Runtime,
    components: Vec<Components>,
}

/// A checked new version, waiting for the rest of the reload to pass.
struct Pending<P> {
    pipeline: String,
    slot: Arc<Slot<P>>,
    loaded: Loaded<P>,
}

impl Reloader {
    fn reload(&mut self) -> Result<Vec<Swap>, ReloadError> {
        let new = Config::load(&self.path)?;
        if let Some(why) = restart_needed(&self.config, &new) {
            return Err(ReloadError::RestartNeeded(why));
        }
        let mut interceptors = Vec::new();
        let mut sinks = Vec::new();
        for (p, old) in new.pipelines.iter().zip(&self.config.pipelines) {
            // Only a changed grant is checked, so that a reload does not
            // wait on the broker for topics already in use.
            if !produce_grants(p).eq(produce_grants(old)) {
                super::pipeline::check_produce_grants(&self.runtime, p)
                    .map_err(|e| ReloadError::ProduceGrant(e.to_string()))?;
            }
        }
        for (p, components) in new.pipelines.iter().zip(&self.components) {
            check_changed(
                &self.runtime,
                p,
                &components.interceptors,
                &p.interceptors,
                &mut interceptors,
            )?;
            check_changed(&self.runtime, p, &components.sinks, &p.sinks, &mut sinks)?;
        }
        // Everything passed: publish.
        let mut swaps: Vec<Swap> = interceptors.into_iter().map(publish).collect();
        swaps.extend(sinks.into_iter().map(publish));
        self.config = new;
        Ok(swaps)
    }
}

/// Each component's `kafka_produce`, in order.
fn produce_grants(p: &PipelineConfig) -> impl Iterator<Item = &Vec<String>> {
    p.interceptors
        .iter()
        .chain(&p.sinks)
        .map(|c| &c.kafka_produce)
}

fn publish<P: GuestKind + Clone>(p: Pending<P>) -> Swap {
    let component = p.loaded.name().to_owned();
    let version = p.slot.publish(p.loaded);
    Swap {
        pipeline: p.pipeline,
        component,
        version,
    }
}

/// Compiles and probes every component of one kind whose file or settings
/// differ from the version running in its slot; adds each to `pending`.
fn check_changed<P: GuestKind + Clone>(
    runtime: &Runtime,
    pipeline: &PipelineConfig,
    slots: &[Arc<Slot<P>>],
    new: &[ComponentConfig],
    pending: &mut Vec<Pending<P>>,
) -> Result<(), ReloadError> {
    for (slot, new) in slots.iter().zip(new) {
        let bytes = std::fs::read(&new.component).map_err(|e| ReloadError::Read {
            name: new.name.clone(),
            path: new.component.clone(),
            reason: e.to_string(),
        })?;
        let (_, running) = slot.current();
        if content_digest(&bytes) == running.digest() && running.config() == new {
            continue;
        }
        let guest_err = |source| ReloadError::Guest {
            pipeline: pipeline.name.clone(),
            source,
        };
        let loaded = runtime.load_bytes::<P>(new, &bytes).map_err(guest_err)?;
        probe(&loaded, &pipeline.name).map_err(guest_err)?;
        pending.push(Pending {
            pipeline: pipeline.name.clone(),
            slot: slot.clone(),
            loaded,
        });
    }
    Ok(())
}

/// Why `new` cannot be applied to a running `old`, if it cannot.
fn restart_needed(old: &Config, new: &Config) -> Option<String> {
    if old.kafka != new.kafka {
        return Some("[kafka] changed".into());
    }
    if old.admin != new.admin || old.reload != new.reload {
        return Some("[admin] or [reload] changed".into());
    }
    let names = |c: &Config| {
        c.pipelines
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    if names(old) != names(new) {
        return Some(format!(
            "the pipelines changed (from {:?} to {:?})",
            names(old),
            names(new)
        ));
    }
    for (o, n) in old.pipelines.iter().zip(&new.pipelines) {
        let component_names =
            |cs: &[ComponentConfig]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if component_names(&o.interceptors) != component_names(&n.interceptors)
            || component_names(&o.sinks) != component_names(&n.sinks)
        {
            return Some(format!(
                "pipeline `{}`: interceptors or sinks were added, removed, renamed or reordered",
                o.name
            ));
        }
        // Everything but the components' own tables belongs to the consumer
        // and the partition workers, which a reload does not replace.
        let mut o = o.clone();
        let mut n = n.clone();
        for p in [&mut o, &mut n] {
            p.interceptors.clear();
            p.sinks.clear();
        }
        if o != n {
            return Some(format!(
                "pipeline `{}`: a pipeline-level setting changed (topics, group_id, batch, \
                 commit, retry, dead_letter, max_queued_events, max_queued_bytes or \
                 drain_timeout_ms)",
                o.name
            ));
        }
    }
    None
}

/// Watches the config file and the component files; after a change, once
/// the files have been quiet for `debounce`, reloads. Runs until the
/// process ends. Replace files by renaming a finished file over them: a
/// reload that reads a half-written file is rejected (and counted), and the
/// next change triggers another.
pub fn watch(handle: ReloadHandle, debounce: Duration) -> notify::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx)?;
    let mut watching = Vec::new();
    let mut files = watch_set(&handle, &mut watcher, &mut watching)?;
    std::thread::Builder::new()
        .name("flumen-reload-watch".into())
        .spawn(move || {
            let relevant = |files: &[PathBuf], ev: &notify::Result<notify::Event>| match ev {
                Ok(ev) => !ev.kind.is_access() && ev.paths.iter().any(|p| files.contains(p)),
                Err(_) => false,
            };
            while let Ok(ev) = rx.recv() {
                if !relevant(&files, &ev) {
                    continue;
                }
                // Wait until the watched files have been quiet for
                // `debounce`; other files in the same directories (a log
                // file, say) may change all the time and do not count.
                let mut quiet_at = Instant::now() + debounce;
                loop {
                    match rx.recv_timeout(quiet_at.saturating_duration_since(Instant::now())) {
                        Ok(ev) if relevant(&files, &ev) => quiet_at = Instant::now() + debounce,
                        Ok(_) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let _ = handle.reload("file changed");
                match watch_set(&handle, &mut watcher, &mut watching) {
                    Ok(f) => files = f,
                    Err(e) => tracing::error!(error = %e, "cannot watch the component files"),
                }
            }
        })
        .map_err(notify::Error::io)?;
    Ok(())
}

/// Watches the directories of the reloader's files (a file replaced by a
/// rename is a new inode, so the file itself cannot be watched); returns the
/// files, as the watcher will name them.
fn watch_set(
    handle: &ReloadHandle,
    watcher: &mut notify::RecommendedWatcher,
    watching: &mut Vec<PathBuf>,
) -> notify::Result<Vec<PathBuf>> {
    use notify::{RecursiveMode, Watcher};
    let mut files = Vec::new();
    for f in handle.watched_files() {
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = dir.canonicalize()?;
        if !watching.contains(&dir) {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            watching.push(dir.clone());
        }
        if let Some(name) = f.file_name() {
            files.push(dir.join(name));
        }
    }
    Ok(files)
}

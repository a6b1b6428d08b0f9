//! Starting and stopping pipelines: load every component once, prove each
//! one instantiates and accepts its config, then run one consumer thread per
//! pipeline until asked to stop.

use crate::config::{ComponentConfig, Config, ConfigError, PipelineConfig};
use crate::contract::{Batch, Source};
use crate::flow::partition;
use crate::flow::{DeadLetterError, DeadLetterQueue, DeadLetters, RateLimiter, Stages};
use crate::kafka;
use crate::kafka::{PartitionWorkers, PipelineConsumer, WorkerHandle};
use crate::runtime::{
    Guest, GuestError, GuestKind, GuestTag, InterceptorSlot, Loaded, Runtime, SinkSlot, Slot,
};
use crate::stats::PipelineStats;
use crossbeam_channel::Receiver;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The components of a pipeline, compiled once and shared by all partitions
/// (through slots, so that a reload reaches every partition).
#[derive(Clone)]
pub struct Components {
    /// Interceptors in chain order.
    pub interceptors: Vec<Arc<InterceptorSlot>>,
    /// Sinks in configuration order.
    pub sinks: Vec<Arc<SinkSlot>>,
    /// The pipeline's dead-letter topic, if it has one.
    pub dead_letter: Option<Arc<DeadLetterQueue>>,
}

/// Starts a pipeline's partition workers, each with its own instances of
/// the pipeline's components.
struct Workers {
    pipeline: PipelineConfig,
    components: Components,
    stats: Arc<PipelineStats>,
    /// Per sink, its rate limiter: one for all partitions.
    rates: Vec<Option<Arc<RateLimiter>>>,
    /// The member's fence, if it fences itself.
    fence: Option<Arc<kafka::fence::Fence>>,
}

impl Workers {
    /// A partition's own instance of the component in `slot`.
    fn guest<P: GuestKind + Clone>(&self, slot: &Arc<Slot<P>>, source: &Source) -> Guest<P> {
        let tag = GuestTag {
            component: slot.current().1.name().into(),
            pipeline: self.pipeline.name.as_str().into(),
            partition: Some((source.topic.as_str().into(), source.partition)),
        };
        Guest::new(slot.clone(), tag)
    }
}

impl PartitionWorkers for Workers {
    fn start(
        &self,
        topic: &str,
        partition: i32,
        events: Receiver<Batch>,
    ) -> std::io::Result<WorkerHandle> {
        let source = Source {
            topic: topic.to_owned(),
            partition,
        };
        let c = &self.components;
        let stages = Stages {
            interceptors: c
                .interceptors
                .iter()
                .map(|s| self.guest(s, &source))
                .collect(),
            sinks: c.sinks.iter().map(|s| self.guest(s, &source)).collect(),
            dead_letter: c.dead_letter.clone().map(|q| q as Arc<dyn DeadLetters>),
            rates: self.rates.clone(),
            fence: self.fence.clone(),
        };
        let (shared, thread) =
            partition::spawn(&self.pipeline, stages, self.stats.clone(), source, events)?;
        Ok(WorkerHandle { shared, thread })
    }
}

/// A failure to start a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A guest could not be loaded, checked or initialized.
    #[error("pipeline `{pipeline}`: {source}")]
    Guest {
        /// The pipeline.
        pipeline: String,
        /// What went wrong.
        source: GuestError,
    },
    /// The Kafka client could not be created.
    #[error("pipeline `{pipeline}`: cannot create Kafka consumer: {source}")]
    Kafka {
        /// The pipeline.
        pipeline: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The dead-letter producer could not be set up.
    #[error("pipeline `{pipeline}`: {source}")]
    DeadLetter {
        /// The pipeline.
        pipeline: String,
        /// What went wrong.
        source: DeadLetterError,
    },
    /// A component is granted a topic to produce to that cannot be used.
    #[error("pipeline `{pipeline}`: component `{component}`: kafka_produce: {reason}")]
    ProduceGrant {
        /// The pipeline.
        pipeline: String,
        /// The component granted the topic.
        component: String,
        /// What is wrong.
        reason: String,
    },
    /// librdkafka refused an option, or a client made from them.
    #[error(transparent)]
    KafkaConfig(#[from] ConfigError),
    /// `check --connect` could not connect, or found something missing.
    #[error(transparent)]
    Probe(#[from] kafka::probe::ProbeError),
    /// Anything else (thread spawn, engine creation).
    #[error("{0}")]
    Other(String),
}

/// A pipeline's components, loaded, type-checked and initialized once.
pub struct CheckedPipeline {
    /// The pipeline's config.
    pub config: PipelineConfig,
    /// Its compiled components.
    pub components: Components,
}

/// Instantiates a component once and calls its `init`, so that a refused
/// config or a trapping start-up is reported before any event is read (or,
/// on a reload, before the new version replaces the old one).
pub fn probe<P: GuestKind + Clone>(loaded: &Loaded<P>, pipeline: &str) -> Result<(), GuestError> {
    let tag = GuestTag {
        component: loaded.name().into(),
        pipeline: pipeline.into(),
        partition: None,
    };
    Guest::new(Slot::new(loaded.clone()), tag).ensure_live()
}

fn load_all<P: GuestKind + Clone>(
    runtime: &Runtime,
    configs: &[ComponentConfig],
    pipeline: &str,
) -> Result<Vec<Arc<Slot<P>>>, StartError> {
    configs
        .iter()
        .map(|c| {
            let loaded = runtime.load(c)?;
            probe(&loaded, pipeline)?;
            Ok(Slot::new(loaded))
        })
        .collect::<Result<_, GuestError>>()
        .map_err(|source| StartError::Guest {
            pipeline: pipeline.to_owned(),
            source,
        })
}

/// Loads, type-checks and initializes every component of every pipeline.
/// This is all of `flumen check` after parsing, and the first step of `run`.
pub fn check(config: &Config, runtime: &Runtime) -> Result<Vec<CheckedPipeline>, StartError> {
    kafka::client_config::validate(config)?;
    config
        .pipelines
        .iter()
        .map(|p| {
            Ok(CheckedPipeline {
                config: p.clone(),
                components: Components {
                    interceptors: load_all(runtime, &p.interceptors, &p.name)?,
                    sinks: load_all(runtime, &p.sinks, &p.name)?,
                    // Connecting to Kafka is `start`'s business, not `check`'s.
                    dead_letter: None,
                },
            })
        })
        .collect()
}

/// Pipelines running in the background.
pub struct Running {
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Vec<(String, Arc<PipelineStats>)>,
    /// What a reload needs: see [`super::reload::ReloadHandle::for_running`].
    pub(super) runtime: Runtime,
    pub(super) config: Config,
    pub(super) components: Vec<Components>,
}

impl Running {
    /// Counters per pipeline name.
    pub fn stats(&self) -> &[(String, Arc<PipelineStats>)] {
        &self.stats
    }

    /// Whether every consumer thread is still running.
    pub fn is_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops fetching, lets in-flight batches finish (bounded by each
    /// pipeline's `drain_timeout_ms`), commits what is finalized and leaves
    /// the consumer groups.
    pub fn stop(self) {
        self.shutdown.store(true, Ordering::Release);
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a consumer thread panicked");
            }
        }
    }
}

/// Checks that every topic a component of `p` is granted to produce to
/// exists, so that a misspelt grant stops the start instead of having every
/// record refused later.
pub fn check_produce_grants(runtime: &Runtime, p: &PipelineConfig) -> Result<(), StartError> {
    for c in p.interceptors.iter().chain(&p.sinks) {
        if c.kafka_produce.is_empty() {
            continue;
        }
        let fail = |reason: String| StartError::ProduceGrant {
            pipeline: p.name.clone(),
            component: c.name.clone(),
            reason,
        };
        let hub = runtime
            .producer()
            .ok_or_else(|| fail("this flumen has no Kafka cluster to produce to".into()))?;
        let topics: Vec<&str> = c.kafka_produce.iter().map(String::as_str).collect();
        let missing = hub.missing_topics(&topics).map_err(fail)?;
        if !missing.is_empty() {
            return Err(fail(format!(
                "topic `{}` does not exist; create it before starting flumen",
                missing.join("`, `")
            )));
        }
    }
    Ok(())
}

/// Connects to Kafka as every pipeline would, for `check --connect`.
pub fn connect(config: &Config, timeout: std::time::Duration) -> Result<String, StartError> {
    Ok(kafka::probe::probe(config, timeout)?)
}

/// Checks every component, then starts one consumer per pipeline.
pub fn start(config: &Config) -> Result<Running, StartError> {
    let runtime = Runtime::for_config(config).map_err(|e| StartError::Other(format!("{e:#}")))?;
    let checked = check(config, &runtime)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut running = Running {
        shutdown: shutdown.clone(),
        threads: Vec::new(),
        stats: Vec::new(),
        runtime,
        config: config.clone(),
        components: Vec::new(),
    };
    for mut p in checked {
        let name = p.config.name.clone();
        for warning in crate::config::exactly_once::warnings(&p.config) {
            tracing::warn!(pipeline = %name, "{warning}");
        }
        let stats = Arc::new(PipelineStats::default());
        if let Some(dl) = &p.config.dead_letter {
            match DeadLetterQueue::new(config, &name, dl, &p.config.retry) {
                Ok(q) => p.components.dead_letter = Some(Arc::new(q)),
                Err(source) => {
                    running.stop();
                    return Err(StartError::DeadLetter {
                        pipeline: name,
                        source,
                    });
                }
            }
        }
        if let Err(e) = check_produce_grants(&running.runtime, &p.config) {
            running.stop();
            return Err(e);
        }
        running.components.push(p.components.clone());
        let rates = (p.config.sinks.iter())
            .map(|s| {
                s.delivery()
                    .rate_limit
                    .map(|r| Arc::new(RateLimiter::new(r)))
            })
            .collect();
        let fence = kafka::fence::for_pipeline(
            &name,
            kafka::client_config::fence_timing(config, &p.config),
        );
        let workers = Workers {
            fence: fence.clone(),
            rates,
            pipeline: p.config.clone(),
            components: p.components,
            stats: stats.clone(),
        };
        let started =
            PipelineConsumer::new(config, &p.config, Box::new(workers), stats.clone(), fence)
                .map_err(|source| StartError::Kafka {
                    pipeline: name.clone(),
                    source,
                })
                .and_then(|consumer| {
                    let flag = shutdown.clone();
                    std::thread::Builder::new()
                        .name(format!("flumen-consumer-{name}"))
                        .spawn(move || consumer.run(&flag))
                        .map_err(|e| StartError::Other(e.to_string()))
                });
        match started {
            Ok(thread) => {
                running.threads.push(thread);
                running.stats.push((name, stats));
            }
            Err(e) => {
                // Pipelines already started must not keep running headless.
                running.stop();
                return Err(e);
            }
        }
    }
    Ok(running)
}

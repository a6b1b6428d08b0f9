//! A partition's live instance of a component: instantiated lazily,
//! replaced after a trap or after `limits.max_calls_per_instance` calls,
//! and switched to a new version at a batch boundary after a reload. It is
//! what the flow calls, through [`crate::flow::Interceptor`] and
//! [`crate::flow::Sink`].

use super::budget::{cut_line, is_output_over, output_over};
use super::error::{trap, GuestError};
use super::kind::{GuestKind, InterceptorPre, SinkPre};
use super::loaded::Loaded;
use super::metrics::GuestMetrics;
use super::slot::Slot;
use super::state::GuestState;
use super::tag::GuestTag;
use crate::config::ComponentConfig;
use crate::contract::{verdict, Batch, InterceptorVerdict, SinkVerdict, Source};
use crate::flow::{self, CallError};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store;

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
    /// Why the schema registry was unavailable during the last call, if
    /// it was.
    unavailable: Option<String>,
    /// Its counters in `/metrics`.
    metrics: GuestMetrics,
}

impl<P: GuestKind + Clone> Guest<P> {
    /// A guest that instantiates the slot's current version on first use.
    pub fn new(slot: Arc<Slot<P>>, tag: GuestTag) -> Self {
        let (version, loaded) = slot.current();
        let metrics = GuestMetrics::new(&tag.pipeline, loaded.name(), P::WORLD);
        Self {
            slot,
            version,
            loaded,
            tag,
            live: None,
            calls: 0,
            unavailable: None,
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
            Err(e) => Err(self.failed(e)),
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
        let over_budget = store.data_mut().produce_grant.take_over_budget();
        self.unavailable = store.data_mut().schema_grant.take_unavailable();
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
        result.map_err(|e| match over_budget {
            // The trap is the host's `send` refusing: say which budget.
            Some(message) => GuestError::OverBudget {
                name: self.name().to_owned(),
                message,
            },
            None => self.failed(e),
        })
    }

    /// The error of a call (or `init`) that failed inside wasmtime: a
    /// trap, or wasmtime refusing to copy more than
    /// `budgets.output_bytes_per_call` out of the guest (its hostcall
    /// fuel), so that the host never held more; that one names the budget.
    fn failed(&self, e: wasmtime::Error) -> GuestError {
        let name = self.name();
        if !is_output_over(&e) {
            return trap(name, e);
        }
        super::metrics::budget_hits(&self.tag.pipeline, name, "output_bytes").inc();
        GuestError::OverBudget {
            name: name.to_owned(),
            message: output_over(
                "answer or host-call data",
                self.loaded.cfg.budgets.output_bytes_per_call,
            ),
        }
    }

    /// One verdict per event of a batch of `len`, from the guest's
    /// compact `answer` expanded by `expand`: an error the guest returned
    /// fails the call, and so does an answer that does not fit the batch.
    /// (Its size needs no check here: wasmtime copied no more than
    /// `budgets.output_bytes_per_call` out of the guest.)
    fn checked<A, V>(
        &self,
        answer: Result<A, String>,
        len: usize,
        expand: fn(A, usize) -> Result<Vec<V>, String>,
    ) -> Result<Vec<V>, GuestError> {
        let name = self.name();
        let answer = answer.map_err(|message| {
            // Logged with every failed call: a guest cannot make it a
            // flood of its own.
            let message = cut_line(&message).into_owned();
            match &self.unavailable {
                Some(registry) => GuestError::Unavailable {
                    name: name.to_owned(),
                    message: format!("{registry} (the component said: {message})"),
                },
                None => GuestError::Failed {
                    name: name.to_owned(),
                    message,
                },
            }
        })?;
        expand(answer, len).map_err(|message| GuestError::Contract {
            name: name.to_owned(),
            message,
        })
    }
}

impl Guest<InterceptorPre> {
    /// Calls the interceptor on a batch of `source`'s events; one verdict
    /// per event or an error.
    pub fn process(
        &mut self,
        source: &Source,
        batch: &Batch,
    ) -> Result<Vec<InterceptorVerdict>, GuestError> {
        let started = Instant::now();
        let r = self
            .call(|b, s| {
                s.data_mut().rejections.open(batch.len());
                let answer = b.flumen_pipeline_interception().call_process(
                    &mut *s,
                    source,
                    batch.columns(),
                )?;
                Ok((answer, s.data_mut().rejections.close()))
            })
            .and_then(|(answer, rejected)| {
                let mut verdicts =
                    self.checked(answer, batch.len(), verdict::interceptor_verdicts)?;
                let rejected = rejected.map_err(|message| GuestError::Contract {
                    name: self.name().to_owned(),
                    message,
                })?;
                verdict::apply_rejections(&mut verdicts, rejected);
                Ok(verdicts)
            });
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
        batch: &Batch,
    ) -> Result<Vec<SinkVerdict>, GuestError> {
        let started = Instant::now();
        let r = self
            .call(|b, s| {
                b.flumen_pipeline_delivery()
                    .call_deliver(s, source, batch.columns())
            })
            .and_then(|r| self.checked(r, batch.len(), verdict::sink_verdicts));
        self.metrics.sink_call(batch, started.elapsed(), &r);
        r
    }
}

impl<P: GuestKind + Clone> flow::Component for Guest<P> {
    fn name(&self) -> &str {
        Guest::name(self)
    }

    fn config(&self) -> &ComponentConfig {
        Guest::config(self)
    }

    fn refresh(&mut self) -> Option<u64> {
        Guest::refresh(self)
    }

    fn ensure_live(&mut self) -> Result<(), CallError> {
        Guest::ensure_live(self).map_err(CallError::from)
    }
}

impl flow::Interceptor for Guest<InterceptorPre> {
    fn process(
        &mut self,
        source: &Source,
        batch: &Batch,
    ) -> Result<Vec<InterceptorVerdict>, CallError> {
        Guest::process(self, source, batch).map_err(|e| match e {
            GuestError::Unavailable { .. } => CallError::from(flow::Unavailable(e.to_string())),
            e => CallError::from(e),
        })
    }
}

impl flow::Sink for Guest<SinkPre> {
    fn deliver(&mut self, source: &Source, batch: &Batch) -> Result<Vec<SinkVerdict>, CallError> {
        Guest::deliver(self, source, batch).map_err(CallError::from)
    }

    fn another(&self) -> Self {
        Guest::new(self.slot.clone(), self.tag.clone())
    }
}

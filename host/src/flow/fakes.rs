//! Fakes behind the flow's seams, for its unit tests: components that
//! answer what a test scripts and record every call they get, and a
//! dead-letter topic that records what it acknowledged.

use super::component::{CallError, Component, Interceptor, Sink};
use super::failure::{DeadLetters, Failure};
use crate::config::ComponentConfig;
use crate::contract::{Batch, Event, InterceptorVerdict, SinkVerdict, Source};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// A component config named `name`, with `extra` TOML lines (say
/// `on_failure = "skip"`) and a fast retry budget unless `extra` sets one.
pub fn component_config(name: &str, extra: &str) -> ComponentConfig {
    let retry = if extra.contains("retry") {
        ""
    } else {
        "retry = { attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 2 }\n"
    };
    toml::from_str(&format!(
        "name = \"{name}\"\ncomponent = \"{name}.wasm\"\n{retry}{extra}"
    ))
    .expect("fake component config")
}

/// Events with the given offsets, each valued by its offset.
pub fn events(offsets: &[i64]) -> Vec<Event> {
    offsets
        .iter()
        .map(|&offset| Event {
            offset,
            timestamp: None,
            key: Some(format!("k{}", offset % 3).into_bytes()),
            value: Some(offset.to_string().into_bytes()),
            headers: Vec::new(),
        })
        .collect()
}

/// [`events`] as the batch a worker takes.
pub fn batch(offsets: &[i64]) -> Batch {
    Batch::from_events(&events(offsets)).expect("a small batch")
}

/// The offsets of a batch as a guest got it.
pub fn offsets(batch: &[Event]) -> Vec<i64> {
    batch.iter().map(|e| e.offset).collect()
}

/// What a fake answers to one call: the batch in, its verdicts or an error.
pub type Script<V> = Box<dyn FnMut(&[Event]) -> Result<Vec<V>, CallError> + Send>;

/// A scripted component of either kind (`V` is its verdict type).
pub struct Fake<V> {
    config: ComponentConfig,
    /// Shared by the instances [`Sink::another`] makes, as a guest's
    /// instances share its code.
    script: Arc<Mutex<Script<V>>>,
    /// The offsets of every call, in order.
    calls: Arc<Mutex<Vec<Vec<i64>>>>,
}

impl<V> Fake<V> {
    /// A fake named `name` with `extra` config lines, answering `script`.
    pub fn new(
        name: &str,
        extra: &str,
        script: impl FnMut(&[Event]) -> Result<Vec<V>, CallError> + Send + 'static,
    ) -> Self {
        Self {
            config: component_config(name, extra),
            script: Arc::new(Mutex::new(Box::new(script))),
            calls: Arc::default(),
        }
    }

    /// The calls made so far (a handle that stays valid once the fake is
    /// moved into a worker).
    pub fn log(&self) -> Arc<Mutex<Vec<Vec<i64>>>> {
        self.calls.clone()
    }

    fn call(&mut self, batch: &[Event]) -> Result<Vec<V>, CallError> {
        self.calls.lock().expect("calls").push(offsets(batch));
        (self.script.lock().expect("script"))(batch)
    }
}

impl<V> Component for Fake<V> {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn config(&self) -> &ComponentConfig {
        &self.config
    }
    fn refresh(&mut self) -> Option<u64> {
        // A fake has one version: reloads are the runtime's tests' business.
        None
    }
    fn ensure_live(&mut self) -> Result<(), CallError> {
        Ok(())
    }
}

impl Interceptor for Fake<InterceptorVerdict> {
    fn process(
        &mut self,
        _source: &Source,
        batch: &Batch,
    ) -> Result<Vec<InterceptorVerdict>, CallError> {
        self.call(&batch.to_events())
    }
}

impl Sink for Fake<SinkVerdict> {
    fn deliver(&mut self, _source: &Source, batch: &Batch) -> Result<Vec<SinkVerdict>, CallError> {
        self.call(&batch.to_events())
    }

    fn another(&self) -> Self {
        Self {
            config: self.config.clone(),
            script: self.script.clone(),
            calls: self.calls.clone(),
        }
    }
}

/// A fake interceptor.
pub type FakeInterceptor = Fake<InterceptorVerdict>;
/// A fake sink.
pub type FakeSink = Fake<SinkVerdict>;

/// A dead-letter topic that acknowledges every write (or, with `refuse`
/// set, none, reporting a stop instead) and records what it acknowledged.
#[derive(Default)]
pub struct FakeDeadLetters {
    /// `(component, offset, attempts)` of each acknowledged letter.
    pub acked: Mutex<Vec<(String, i64, u32)>>,
    /// Set: writes are never acknowledged.
    pub refuse: AtomicBool,
    /// Called before each write, with the letters' offsets.
    #[allow(clippy::type_complexity)]
    pub on_write: Mutex<Option<Box<dyn FnMut(&[i64]) + Send>>>,
}

impl DeadLetters for FakeDeadLetters {
    fn topic(&self) -> &str {
        "dlq"
    }
    fn write(&self, _source: &Source, letters: &[(&Event, &Failure)], _stop: &AtomicBool) -> bool {
        if let Some(f) = self.on_write.lock().expect("on_write").as_mut() {
            f(&letters.iter().map(|(e, _)| e.offset).collect::<Vec<_>>());
        }
        if self.refuse.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        let mut acked = self.acked.lock().expect("acked");
        for (e, f) in letters {
            acked.push((f.component.clone(), e.offset, f.attempts));
        }
        true
    }
}

/// An interceptor verdict.
pub fn verdict(action: crate::contract::Action, route: Option<&[&str]>) -> InterceptorVerdict {
    InterceptorVerdict {
        action,
        route: route.map(|r| r.iter().map(|s| s.to_string()).collect()),
    }
}

/// Delivers every event.
pub fn deliver(batch: &[Event]) -> Result<Vec<SinkVerdict>, CallError> {
    Ok(batch.iter().map(|_| SinkVerdict::Delivered).collect())
}

//! Library sinks: the [`Sink`] trait and [`sink!`](crate::sink!), which
//! makes a component of one.
//!
//! Every sink component keeps its state between `init` and `deliver` in a
//! thread-local (a component instance is single-threaded), refuses a
//! `deliver` before `init`, and turns the batch's columns into a checked
//! [`Batch`]. The macro does that once for all of them; a sink only says
//! how it is built and how it delivers.

use crate::columns::Batch;
use crate::config::Config;

/// One event a sink did not deliver: its position in the batch, whether
/// the host should send it again (`retry`) or give it to the sink's
/// `on_failure` policy, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// The event's position in the batch, from 0.
    pub event: u32,
    /// Send it again later (a transient failure), rather than rejecting it.
    pub retry: bool,
    /// Why, for the operator.
    pub reason: String,
}

impl Undelivered {
    /// Event `event` failed transiently: the host sends it again.
    pub fn retry(event: usize, reason: impl Into<String>) -> Self {
        Self::new(event, true, reason)
    }

    /// Event `event` is refused: the host applies the failure policy.
    pub fn reject(event: usize, reason: impl Into<String>) -> Self {
        Self::new(event, false, reason)
    }

    /// Event `event` failed: sent again if `retry`, else rejected.
    pub fn new(event: usize, retry: bool, reason: impl Into<String>) -> Self {
        Self {
            // A batch never holds more than u32::MAX events (the contract's
            // positions are 32-bit).
            event: u32::try_from(event).unwrap_or(u32::MAX),
            retry,
            reason: reason.into(),
        }
    }
}

/// A library sink: configured once, then handed each batch.
/// [`sink!`](crate::sink!) turns an implementation into a component.
pub trait Sink: Sized {
    /// The config keys it accepts; any other key is refused at `init`.
    const KEYS: &'static [&'static str];
    /// Builds the sink from its config, or says what is wrong.
    fn new(config: &Config) -> Result<Self, String>;
    /// Delivers the events of `batch` (of `topic`/`partition`), returning
    /// those it did not deliver, in increasing order; an error fails the
    /// whole call, and the host retries every event of it.
    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String>;
}

/// Makes the sink component of a [`Sink`]: generates the world's bindings
/// from `wit/` and exports them, calling `Sink::new` from `init` and
/// `Sink::deliver` for each batch. The world is `sink` unless given
/// (`sink!(KafkaSink, "kafka-sink")`); its imports are generated in the
/// calling crate, where the sink's code can use them. The crate must
/// depend on `wit-bindgen` and sit two folders below `guests/` (as
/// `guests/library/<name>` does): the WIT path is relative to it.
#[macro_export]
macro_rules! sink {
    ($t:ty) => {
        $crate::sink!($t, "sink");
    };
    ($t:ty, $world:literal) => {
        wit_bindgen::generate!({ world: $world, path: "../../../wit" });

        use exports::flumen::pipeline::delivery as __delivery;

        std::thread_local! {
            static __STATE: std::cell::RefCell<Option<$t>> =
                const { std::cell::RefCell::new(None) };
        }

        struct __Sink;

        impl __delivery::Guest for __Sink {
            fn init(config: Vec<(String, String)>) -> Result<(), String> {
                let config = $crate::Config::new(config, <$t as $crate::Sink>::KEYS)?;
                let state = <$t as $crate::Sink>::new(&config)?;
                __STATE.with(|s| *s.borrow_mut() = Some(state));
                Ok(())
            }

            fn deliver(
                source: __delivery::Source,
                batch: __delivery::Columns,
            ) -> Result<Vec<__delivery::Failure>, String> {
                let batch = $crate::columns!(batch)?;
                let undelivered = __STATE.with(|s| {
                    let mut s = s.borrow_mut();
                    let sink = s.as_mut().ok_or("deliver called before init")?;
                    <$t as $crate::Sink>::deliver(sink, &source.topic, source.partition, &batch)
                })?;
                Ok(undelivered
                    .into_iter()
                    .map(|u| __delivery::Failure {
                        event: u.event,
                        kind: if u.retry {
                            __delivery::FailureKind::Retry
                        } else {
                            __delivery::FailureKind::Reject
                        },
                        reason: u.reason,
                    })
                    .collect())
            }
        }

        export!(__Sink);
    };
}

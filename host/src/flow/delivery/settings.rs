//! A sink's delivery settings, as its window uses them: one value built
//! from the sink's config and the pipeline's batching.

use crate::config::{BatchConfig, Delivery, DeliveryOrdering};
use std::time::Duration;

/// How one sink's calls are formed and how many may run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What order the events keep.
    pub ordering: DeliveryOrdering,
    /// Calls of one partition at the sink at once (the most, if adaptive).
    pub max_in_flight: usize,
    /// Whether the number of calls adapts (AIMD) below `max_in_flight`.
    pub adaptive: bool,
    /// How new events are gathered into calls.
    pub gather: Gather,
}

/// How new events are gathered into calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Gather {
    /// The most events in one call.
    pub max_events: usize,
    /// The most bytes in one call (a single larger event still goes).
    pub max_bytes: usize,
    /// Sink-side batching: how long new events may wait for more.
    pub max_wait: Option<Duration>,
}

impl Settings {
    /// The settings of a sink configured with `d`; a sink without its own
    /// batching calls with what `pipeline_batch` gathered.
    pub fn new(d: &Delivery<'_>, pipeline_batch: &BatchConfig) -> Self {
        let gather = match d.batch {
            Some(b) => Gather {
                max_events: b.max_events,
                max_bytes: b.max_bytes,
                max_wait: Some(Duration::from_millis(b.max_wait_ms)),
            },
            None => Gather {
                max_events: pipeline_batch.max_events,
                max_bytes: pipeline_batch.max_bytes,
                max_wait: None,
            },
        };
        Self {
            ordering: d.ordering,
            max_in_flight: d.max_in_flight,
            adaptive: d.adaptive,
            gather,
        }
    }
}

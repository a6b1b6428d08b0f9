//! How a component fails: its retry budget and what happens to an event
//! once that is spent. Both a pipeline (as the default) and each component
//! set them.

use super::{invalid, ConfigError, MAX_WAIT_MS};
use serde::Deserialize;

/// How often and how patiently a failed call or event is tried again, with
/// exponential backoff and jitter, before the component's `on_failure`
/// policy applies.
///
/// Two budgets, because two kinds of failure need different patience. A
/// component that fails (a trap, a call past its deadline, an
/// interceptor's error) may fail on one poison event, so it gets a few
/// `attempts`. A sink that answers `retry` says its destination is
/// unavailable for now (refused, timed out, a 5xx): that is an outage, not
/// bad data, and giving the events up after a second of retries would
/// dead-letter good events. Those wait up to `max_elapsed_ms` instead.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Tries in all (the first one included) of a call that fails before
    /// `on_failure` applies. Under `block` the tries go on after that, at
    /// the longest backoff.
    pub attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff_ms: u64,
    /// Upper bound of the wait.
    pub max_backoff_ms: u64,
    /// How long an event a sink keeps answering `retry` for is retried,
    /// from the first such answer, before `on_failure` applies.
    pub max_elapsed_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
            max_elapsed_ms: 300_000,
        }
    }
}

/// Largest `retry.max_elapsed_ms`: one week. Past that, `block` says what
/// is meant.
const MAX_ELAPSED_MS: u64 = 7 * 24 * 3_600_000;

/// What a component does with an event once its retries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Stop the partition at the event: commit nothing past it and keep
    /// retrying until it succeeds (or flumen is stopped). Loses nothing.
    #[default]
    Block,
    /// Write the event to the pipeline's dead-letter topic, with headers
    /// saying why, and finalize it once the broker acknowledged the write.
    DeadLetter,
    /// Finalize the event without delivering it; it is counted and logged.
    /// Opt-in: the event is gone from the pipeline.
    Skip,
    /// Interceptors only: pass the event on unchanged, as if the
    /// interceptor had kept it.
    FailOpen,
}

impl FailurePolicy {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Block => "block",
            FailurePolicy::DeadLetter => "dead-letter",
            FailurePolicy::Skip => "skip",
            FailurePolicy::FailOpen => "fail-open",
        }
    }
}

impl RetryConfig {
    /// Checks the table at `key` of `here` (a pipeline or component).
    pub(super) fn validate(&self, here: &str, key: &str) -> Result<(), ConfigError> {
        if self.attempts == 0 {
            return Err(invalid(
                Some(here.to_owned()),
                format!("{key}.attempts"),
                "must be at least 1 (the first try counts)",
            ));
        }
        if self.initial_backoff_ms == 0
            || self.max_backoff_ms < self.initial_backoff_ms
            || self.max_backoff_ms > MAX_WAIT_MS
        {
            return Err(invalid(
                Some(here.to_owned()),
                key,
                format!(
                    "need 1 <= initial_backoff_ms <= max_backoff_ms <= {MAX_WAIT_MS}, got {} and {}",
                    self.initial_backoff_ms, self.max_backoff_ms
                ),
            ));
        }
        if self.max_elapsed_ms > MAX_ELAPSED_MS {
            return Err(invalid(
                Some(here.to_owned()),
                format!("{key}.max_elapsed_ms"),
                format!(
                    "must be at most {MAX_ELAPSED_MS} (a week), got {}; to retry a destination \
                     for ever, set on_failure = \"block\"",
                    self.max_elapsed_ms
                ),
            ));
        }
        Ok(())
    }
}

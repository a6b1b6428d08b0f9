//! Sinks that deliver exactly once: a sink whose own table sets
//! `exactly_once = true` (the `s3` sink) writes each object once, under a
//! key named by its first offset, and adopts objects another writer stored
//! first (docs/sinks/s3.md, "Exactly once"). Its pipeline commits by the
//! owner rule (`kafka::commit_rule`). This module refuses the host settings
//! that could lose events and warns about the ones that could leave an event
//! out of the bucket or store it differently.

use super::{invalid, ConfigError, FailurePolicy, PipelineConfig};
use crate::config::ComponentConfig;

/// Whether sink `c` declares `exactly_once = true` in its own table.
pub fn declared(c: &ComponentConfig) -> bool {
    c.config.get("exactly_once").and_then(toml::Value::as_bool) == Some(true)
}

/// Refuses `max_in_flight` above 1 on such a sink: an object covers the
/// offsets from its first event to its last, so objects of one partition
/// must be cut one after another; calls in flight at once (in key order,
/// or a retry beside a newer call) hold interleaved offsets, and an object
/// would seem to hold events that another call still owes.
pub(super) fn validate(p: &PipelineConfig, here: &str) -> Result<(), ConfigError> {
    for c in p.sinks.iter().filter(|c| declared(c)) {
        if c.max_in_flight > 1 {
            return Err(invalid(
                Some(format!("{here}, sink `{}`", c.name)),
                "max_in_flight",
                format!(
                    "is {} but the sink sets exactly_once = true, which needs one call in \
                     flight per partition (an object holds a range of offsets, and calls in \
                     flight at once hold interleaved ones, so one object would seem to hold \
                     another call's events); set max_in_flight = 1",
                    c.max_in_flight
                ),
            ));
        }
    }
    Ok(())
}

/// Settings under which an `exactly_once` sink of `p` could leave an event
/// out of the bucket, or store it otherwise than a run reading it again
/// would, each with the fix: for `flumen check` and the log at start.
pub fn warnings(p: &PipelineConfig) -> Vec<String> {
    let mut out = Vec::new();
    for c in p.sinks.iter().filter(|c| declared(c)) {
        let sink = format!("sink `{}` (exactly_once)", c.name);
        if c.on_failure != FailurePolicy::Block {
            out.push(format!(
                "{sink}: on_failure = \"{}\" gives events up without storing them, so the \
                 bucket lacks them; set on_failure = \"block\" for every event to reach it",
                c.on_failure.as_str()
            ));
        }
        if !p.interceptors.is_empty() {
            out.push(format!(
                "{sink}: interceptors run before it; each must keep, drop, change and route \
                 an event the same way when it is read again after a crash or a rebalance: the \
                 bucket keeps the first run's object, so an event a second run would have \
                 stored differently is not stored again"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn pipeline(extra: &str, sink: &str) -> Result<Config, String> {
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "b:9092"
[[pipeline]]
name = "p"
topics = ["t"]
group_id = "g"
{extra}
[[pipeline.sink]]
name = "s3"
component = "s3.wasm"
config = {{ bucket = "b", exactly_once = true }}
{sink}
"#
        );
        Config::parse(&text, std::path::Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_calls_in_flight() {
        let e = pipeline("", "max_in_flight = 4\nordering = \"unordered\"").unwrap_err();
        assert!(
            e.contains("max_in_flight") && e.contains("set max_in_flight = 1"),
            "{e}"
        );
    }

    #[test]
    fn warns_about_what_can_leave_events_out() {
        let c = pipeline("", "").expect("valid");
        assert!(super::warnings(&c.pipelines[0]).is_empty());
        // Other sinks and a short drain are harmless now: objects are
        // written once and adopted, wherever a restart begins.
        let c = pipeline(
            "drain_timeout_ms = 2000",
            "on_failure = \"skip\"\n[[pipeline.sink]]\nname = \"f\"\ncomponent = \"f.wasm\"",
        )
        .expect("valid");
        let w = super::warnings(&c.pipelines[0]).join("\n");
        assert!(w.contains("on_failure = \"skip\""), "{w}");
        assert!(
            !w.contains("other sinks") && !w.contains("drain_timeout_ms"),
            "{w}"
        );
    }
}

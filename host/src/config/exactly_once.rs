//! Sinks that deliver exactly once: a sink whose own table sets
//! `exactly_once = true` (the `s3` sink) names its objects by offset and,
//! when an instance starts, removes what a crashed run stored past the
//! committed offset. That is safe only with some host settings; this
//! module refuses the ones that could lose events and warns about the ones
//! that could store an event twice (docs/sinks/s3.md, "Exactly once").

use super::{invalid, ConfigError, FailurePolicy, PipelineConfig};
use crate::config::ComponentConfig;

/// The guest's own timeout when its table does not set `timeout_ms`
/// (the s3 sink's default).
const GUEST_TIMEOUT_MS: i64 = 10_000;

/// Whether sink `c` declares `exactly_once = true` in its own table.
pub fn declared(c: &ComponentConfig) -> bool {
    c.config.get("exactly_once").and_then(toml::Value::as_bool) == Some(true)
}

/// Refuses `max_in_flight` above 1 on such a sink: its first call after a
/// start removes the partition's objects from that call's first offset on,
/// and with several calls in flight another call's object, already stored
/// and reported delivered, could be among them.
pub(super) fn validate(p: &PipelineConfig, here: &str) -> Result<(), ConfigError> {
    for c in p.sinks.iter().filter(|c| declared(c)) {
        if c.max_in_flight > 1 {
            return Err(invalid(
                Some(format!("{here}, sink `{}`", c.name)),
                "max_in_flight",
                format!(
                    "is {} but the sink sets exactly_once = true, which needs one call in \
                     flight per partition (a starting instance removes objects past its first \
                     offset, and could remove one another call has just stored); set \
                     max_in_flight = 1",
                    c.max_in_flight
                ),
            ));
        }
    }
    Ok(())
}

/// Settings under which an `exactly_once` sink of `p` could store an event
/// twice, or not at all, each with the fix: for `flumen check` and the log
/// at start.
pub fn warnings(p: &PipelineConfig) -> Vec<String> {
    let mut out = Vec::new();
    for c in p.sinks.iter().filter(|c| declared(c)) {
        let sink = format!("sink `{}` (exactly_once)", c.name);
        let others: Vec<&str> = p
            .sinks
            .iter()
            .filter(|o| o.name != c.name)
            .map(|o| o.name.as_str())
            .collect();
        if !others.is_empty() {
            out.push(format!(
                "{sink}: the pipeline has other sinks ({}); its commits wait for all of them, \
                 so a restart can begin inside one of this sink's objects and store part of it \
                 again. Give the exactly-once sink a pipeline (and group) of its own",
                others.join(", ")
            ));
        }
        if c.on_failure != FailurePolicy::Block {
            out.push(format!(
                "{sink}: on_failure = \"{}\" gives events up without storing them, so the \
                 bucket lacks them; set on_failure = \"block\" for every event to reach it",
                c.on_failure.as_str()
            ));
        }
        let guest_timeout = c
            .config
            .get("timeout_ms")
            .and_then(toml::Value::as_integer)
            .unwrap_or(GUEST_TIMEOUT_MS);
        if (p.drain_timeout_ms as i64) < guest_timeout {
            out.push(format!(
                "{sink}: drain_timeout_ms ({}) is shorter than the sink's timeout_ms \
                 ({guest_timeout}); a call still running when a rebalance gives the partition \
                 away could store its object after the new owner cleared leftovers. Raise \
                 drain_timeout_ms or lower timeout_ms",
                p.drain_timeout_ms
            ));
        }
        if !p.interceptors.is_empty() {
            out.push(format!(
                "{sink}: interceptors run before it; each must keep, drop and route an event \
                 the same way when it is read again after a crash, or objects differ"
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
    fn warns_about_what_can_duplicate() {
        // drain_timeout_ms's default (10 s) covers the sink's (10 s).
        let c = pipeline("", "").expect("valid");
        assert!(super::warnings(&c.pipelines[0]).is_empty());
        let c = pipeline(
            "drain_timeout_ms = 2000",
            "on_failure = \"skip\"\n[[pipeline.sink]]\nname = \"f\"\ncomponent = \"f.wasm\"",
        )
        .expect("valid");
        let w = super::warnings(&c.pipelines[0]).join("\n");
        assert!(w.contains("other sinks (f)"), "{w}");
        assert!(w.contains("on_failure = \"skip\""), "{w}");
        assert!(
            w.contains("drain_timeout_ms (2000) is shorter than the sink's timeout_ms (10000)"),
            "{w}"
        );
    }
}

//! The HTTP sink: POSTs each batch as JSON lines (one event per line, as the
//! file sink writes them) to a URL, through `wasi:http`.
//!
//! It works only if the operator grants the URL's host to this component
//! (`http_allow` in the host's TOML); otherwise every request fails with
//! `HTTP-request-denied` and the batch fails (the host retries it and then
//! applies the component's `on_failure` policy).
//!
//! Config keys:
//! - `url` (required): `http://host[:port]/path` or `https://…`.
//! - `timeout_ms` (default 10000): connect and first-byte timeout.
//!
//! Verdicts: a 2xx answer delivers the batch; 408, 429 and 5xx ask for a
//! retry of every event; any other status rejects the batch (the reason
//! carries the status and the start of the answer's body). A request that
//! cannot be made at all (denied, refused, timed out) fails the call.

wit_bindgen::generate!({ world: "sink", path: "../../../wit" });

use exports::flumen::pipeline::delivery::{Columns, Failure, FailureKind, Guest, Source};
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::http::{self, Request};
use flumen_guest_common::{json_line, Config};
use std::cell::RefCell;

/// The parsed `url`.
struct Target {
    endpoint: Endpoint,
    timeout_ns: u64,
}

thread_local! {
    static TARGET: RefCell<Option<Target>> = const { RefCell::new(None) };
}

const HEADERS: &[(&str, &str)] = &[("content-type", "application/x-ndjson")];

/// POSTs `body`; the status and the start of the answer's body.
fn post(t: &Target, body: &[u8]) -> Result<(u16, String), String> {
    let headers: Vec<(String, String)> = HEADERS
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let response = http::send(
        &Request {
            method: "POST",
            endpoint: &t.endpoint,
            authority: None,
            path_and_query: &t.endpoint.path,
            headers: &headers,
            body,
            timeout_ns: t.timeout_ns,
        },
        512,
    )
    .map_err(|e| e.to_string())?;
    Ok((response.status, response.text()))
}

struct HttpSink;

impl Guest for HttpSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["url", "timeout_ms"])?;
        let endpoint = Endpoint::parse("url", config.required("url")?)?;
        let timeout_ns = config
            .u64_or("timeout_ms", 10_000)?
            .saturating_mul(1_000_000);
        TARGET.with(|t| {
            *t.borrow_mut() = Some(Target {
                endpoint,
                timeout_ns,
            })
        });
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = String::with_capacity(batch.len() * 128);
        for e in batch.iter() {
            body.push_str(&json_line(e.fields(&source.topic, source.partition)));
        }
        TARGET.with(|t| {
            let t = t.borrow();
            let t = t.as_ref().ok_or("deliver called before init")?;
            let (status, answer) = post(t, body.as_bytes())?;
            let kind = match status {
                200..=299 => return Ok(Vec::new()),
                408 | 429 | 500..=599 => FailureKind::Retry,
                _ => FailureKind::Reject,
            };
            // One request carried the whole batch, so every event failed
            // alike.
            let reason = format!("HTTP {status}: {answer}");
            Ok((0..batch.len() as u32)
                .map(|event| Failure {
                    event,
                    kind,
                    reason: reason.clone(),
                })
                .collect())
        })
    }
}

export!(HttpSink);

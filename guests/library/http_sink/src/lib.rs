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

use flumen_guest_common::columns::Batch;
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::http::{self, Request};
use flumen_guest_common::{json_line, Config, Sink, Undelivered};

flumen_guest_common::sink!(HttpSink);

/// The parsed `url`.
struct HttpSink {
    endpoint: Endpoint,
    timeout_ns: u64,
}

const HEADERS: &[(&str, &str)] = &[("content-type", "application/x-ndjson")];

/// POSTs `body`; the status and the start of the answer's body.
fn post(t: &HttpSink, body: &[u8]) -> Result<(u16, String), String> {
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

impl Sink for HttpSink {
    const KEYS: &'static [&'static str] = &["url", "timeout_ms"];

    fn new(config: &Config) -> Result<Self, String> {
        let endpoint = Endpoint::parse("url", config.required("url")?)?;
        let timeout_ns = config
            .u64_or("timeout_ms", 10_000)?
            .saturating_mul(1_000_000);
        Ok(HttpSink {
            endpoint,
            timeout_ns,
        })
    }

    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = String::with_capacity(batch.len() * 128);
        for e in batch.iter() {
            body.push_str(&json_line(e.fields(topic, partition)));
        }
        let (status, answer) = post(self, body.as_bytes())?;
        let retry = match status {
            200..=299 => return Ok(Vec::new()),
            408 | 429 | 500..=599 => true,
            _ => false,
        };
        // One request carried the whole batch, so every event failed alike.
        let reason = format!("HTTP {status}: {answer}");
        Ok((0..batch.len())
            .map(|event| Undelivered::new(event, retry, reason.clone()))
            .collect())
    }
}

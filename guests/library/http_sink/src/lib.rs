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
use flumen_guest_common::{json_line, Config};
use std::cell::RefCell;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};

/// The parsed `url`.
struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
    timeout_ns: u64,
}

thread_local! {
    static TARGET: RefCell<Option<Target>> = const { RefCell::new(None) };
}

fn parse_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(format!(
            "config key `url` must start with http:// or https://, got `{url}`"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("config key `url` has no host: `{url}`"));
    }
    Ok((scheme, authority.to_owned(), path.to_owned()))
}

/// Largest write WASI streams accept in one `blocking-write-and-flush`.
const CHUNK: usize = 4096;

fn post(t: &Target, body: &[u8]) -> Result<(u16, String), String> {
    let headers =
        Fields::from_list(&[("content-type".to_owned(), b"application/x-ndjson".to_vec())])
            .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = match t.scheme {
        Scheme::Http => Scheme::Http,
        Scheme::Https => Scheme::Https,
        Scheme::Other(ref s) => Scheme::Other(s.clone()),
    };
    request.set_method(&Method::Post).map_err(|()| "method")?;
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    request
        .set_authority(Some(&t.authority))
        .map_err(|()| format!("bad host `{}`", t.authority))?;
    request
        .set_path_with_query(Some(&t.path))
        .map_err(|()| format!("bad path `{}`", t.path))?;
    let out = request.body().map_err(|()| "request body taken twice")?;
    let options = RequestOptions::new();
    // Unsupported options are not an error: the default then applies.
    let _ = options.set_connect_timeout(Some(t.timeout_ns));
    let _ = options.set_first_byte_timeout(Some(t.timeout_ns));
    let response = outgoing_handler::handle(request, Some(options)).map_err(describe)?;
    // The body is streamed after `handle`, which is what reads it.
    let written = (|| -> Result<(), String> {
        let stream = out.write().map_err(|()| "body stream taken twice")?;
        for chunk in body.chunks(CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the body: {e:?}"))?;
        }
        drop(stream);
        OutgoingBody::finish(out, None).map_err(describe)
    })();
    response.subscribe().block();
    let response = match response.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(describe(e)),
        Some(Err(())) | None => return Err("the response was lost".into()),
    };
    // A body write that failed without an error on the response is still a
    // failed delivery.
    written?;
    let status = response.status();
    Ok((status, body_start(&response)))
}

/// The first bytes of the answer's body, for the reject reason.
fn body_start(r: &IncomingResponse) -> String {
    let Ok(body) = r.consume() else {
        return String::new();
    };
    let Ok(stream) = body.stream() else {
        return String::new();
    };
    let bytes = stream.blocking_read(512).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn describe(e: ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => {
            "HTTP-request-denied: the host refused the request (grant the host in `http_allow`)"
                .into()
        }
        other => format!("HTTP request failed: {other:?}"),
    }
}

struct HttpSink;

impl Guest for HttpSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["url", "timeout_ms"])?;
        let (scheme, authority, path) = parse_url(config.required("url")?)?;
        let timeout_ns = config
            .u64_or("timeout_ms", 10_000)?
            .saturating_mul(1_000_000);
        TARGET.with(|t| {
            *t.borrow_mut() = Some(Target {
                scheme,
                authority,
                path,
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

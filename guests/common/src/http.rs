//! A blocking HTTP client over `wasi:http`, for the sinks that speak HTTP
//! (`http_sink`, `s3_sink`, `clickhouse_sink`). Enabled by the `http`
//! feature, since only those guests import `wasi:http`.
//!
//! A request works only if the operator grants its host to the component
//! (`http_allow` in the host's TOML); otherwise it fails with
//! [`HttpError::Denied`], whose message says so.

use crate::endpoint::Endpoint;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};

/// Largest write WASI streams accept in one `blocking-write-and-flush`.
const CHUNK: usize = 4096;

/// One request.
pub struct Request<'a> {
    /// `GET`, `PUT`, `POST`, `DELETE`, …
    pub method: &'a str,
    /// Scheme and host.
    pub endpoint: &'a Endpoint,
    /// The authority to send, when it differs from the endpoint's (S3's
    /// virtual-host style puts the bucket in front of it).
    pub authority: Option<&'a str>,
    /// Path and query, already encoded.
    pub path_and_query: &'a str,
    /// Headers to send (`host` is set by wasi:http from the authority).
    pub headers: &'a [(String, String)],
    /// The body; empty sends none.
    pub body: &'a [u8],
    /// Connect and first-byte timeout.
    pub timeout_ns: u64,
}

/// An answer.
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The answer's headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, up to the limit the caller asked for.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused it: the host is not granted in `http_allow`.
    Denied,
    /// No answer in time (connect or first byte), or the connection broke:
    /// sending again may work.
    Transient(String),
    /// The request could not be made (a malformed header, a bad host).
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied => f.write_str(
                "HTTP-request-denied: the host refused the request (grant the host in `http_allow`)",
            ),
            HttpError::Transient(m) | HttpError::Failed(m) => f.write_str(m),
        }
    }
}

fn classify(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_) => HttpError::Transient(format!("HTTP request failed: {e:?}")),
        other => HttpError::Failed(format!("HTTP request failed: {other:?}")),
    }
}

/// Sends `req` and waits for the answer, reading at most `body_limit` bytes
/// of its body.
pub fn send(req: &Request<'_>, body_limit: usize) -> Result<Response, HttpError> {
    let failed = |what: &str| HttpError::Failed(what.to_owned());
    let mut list: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    // Without it the body goes chunked, which some servers refuse (S3's
    // PutObject answers 411 MissingContentLength).
    let has_body = !req.body.is_empty() || matches!(req.method, "POST" | "PUT");
    if has_body && !req.headers.iter().any(|(n, _)| n == "content-length") {
        list.push((
            "content-length".into(),
            req.body.len().to_string().into_bytes(),
        ));
    }
    let headers =
        Fields::from_list(&list).map_err(|e| HttpError::Failed(format!("headers: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    let method = match req.method {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    request.set_method(&method).map_err(|()| failed("method"))?;
    let scheme = if req.endpoint.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| failed("scheme"))?;
    let authority = req.authority.unwrap_or(&req.endpoint.authority);
    request
        .set_authority(Some(authority))
        .map_err(|()| HttpError::Failed(format!("bad host `{authority}`")))?;
    request
        .set_path_with_query(Some(req.path_and_query))
        .map_err(|()| HttpError::Failed(format!("bad path `{}`", req.path_and_query)))?;
    let out = request
        .body()
        .map_err(|()| failed("request body taken twice"))?;
    let options = RequestOptions::new();
    // Unsupported options are not an error: the default then applies.
    let _ = options.set_connect_timeout(Some(req.timeout_ns));
    let _ = options.set_first_byte_timeout(Some(req.timeout_ns));
    let response = outgoing_handler::handle(request, Some(options)).map_err(classify)?;
    // The body is streamed after `handle`, which is what reads it.
    let written = (|| -> Result<(), HttpError> {
        let stream = out
            .write()
            .map_err(|()| failed("body stream taken twice"))?;
        for chunk in req.body.chunks(CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Transient(format!("writing the body: {e:?}")))?;
        }
        drop(stream);
        OutgoingBody::finish(out, None).map_err(classify)
    })();
    response.subscribe().block();
    let response = match response.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(classify(e)),
        Some(Err(())) | None => return Err(HttpError::Transient("the response was lost".into())),
    };
    // A body write that failed without an error on the response is still a
    // failed request.
    written?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    Ok(Response {
        status,
        headers,
        body: read_body(&response, body_limit),
    })
}

/// Up to `limit` bytes of the answer's body.
fn read_body(r: &IncomingResponse, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(body) = r.consume() else {
        return out;
    };
    let Ok(stream) = body.stream() else {
        return out;
    };
    while out.len() < limit {
        match stream.blocking_read((limit - out.len()).min(65_536) as u64) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => break,
        }
    }
    out
}

//! What a guest may reach outside its own memory: the WASI context built
//! from its grants, the `wasi:http` allow-list checked on every request, and
//! its stdout/stderr turned into log lines.
//!
//! Everything is denied unless the component's config grants it. WASI
//! already denies what is not in the context (no preopened directory, no
//! network, no variables), so the guest sees an ordinary error such as
//! "not found" or "access denied" and can handle it. HTTP is the exception:
//! `wasi:http` is linked for every guest, so that a component that imports it
//! can still be loaded, and the allow-list below is what stands between a
//! guest and the network.

use super::budget::{LogBudget, MAX_LOG_LINE};
use super::tag::GuestTag;
use crate::config::{ComponentConfig, HostPattern};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

/// The `wasi:http` hooks of one guest instance: every outgoing request is
/// checked against the component's allow-list before anything is sent,
/// and ends by the deadline of the call that sent it.
pub struct HttpGrant {
    allow: Arc<[HostPattern]>,
    tag: GuestTag,
    /// When the current call must end (`limits.call_timeout_ms`).
    deadline: Option<Instant>,
}

impl HttpGrant {
    /// The grant of a component with the given (already validated) list.
    pub fn new(allow: Arc<[HostPattern]>, tag: GuestTag) -> Self {
        Self {
            allow,
            tag,
            deadline: None,
        }
    }

    /// Starts a call that may run for `call_timeout`. The epoch deadline
    /// interrupts the guest only while it runs its own code; a guest
    /// blocked on a response would outlive it. So every request it sends
    /// gives up on connecting, on the first byte of the answer and between
    /// bytes by the call's deadline too: a call's writes are over when the
    /// call is (what a fenced member's timing rests on, see
    /// `crate::kafka::fence`).
    pub fn arm(&mut self, call_timeout: Duration) {
        self.deadline = Some(Instant::now() + call_timeout);
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        self.allow.iter().any(|p| p.matches(&host, port))
    }
}

/// The boxed futures `send_request` returns (the trait's own signature).
type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpGrant {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        if !self.allows(request.uri()) {
            let t = &self.tag;
            tracing::warn!(target: "flumen::guest", component = %t.component,
                pipeline = %t.pipeline, uri = %request.uri(),
                "guest HTTP request DENIED: host not in the component's http_allow");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // The default client; only the checks here are flumen's own.
        struct DefaultClient;
        impl WasiHttpHooks for DefaultClient {}
        let Some(deadline) = self.deadline else {
            return DefaultClient.send_request(request, options, fut);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionTimeout) });
        }
        // Connecting and the first byte each within what is left, and the
        // two together too.
        let sent =
            Box::into_pin(DefaultClient.send_request(request, Some(within(options, left)), fut));
        Box::new(async move {
            tokio::time::timeout(left, sent)
                .await
                .unwrap_or(Err(wasmtime_wasi_http::Error::ConnectionTimeout))
        })
    }
}

/// `options` with every timeout at most `left`.
fn within(
    options: Option<wasmtime_wasi_http::RequestOptions>,
    left: Duration,
) -> wasmtime_wasi_http::RequestOptions {
    let mut o = options.unwrap_or_default();
    let cap = |t: Option<Duration>| Some(t.map_or(left, |t| t.min(left)));
    o.connect_timeout = cap(o.connect_timeout);
    o.first_byte_timeout = cap(o.first_byte_timeout);
    o.between_bytes_timeout = cap(o.between_bytes_timeout);
    o
}

/// Builds a guest's WASI context: only what `cfg` grants.
pub fn wasi_context(
    cfg: &ComponentConfig,
    tag: &GuestTag,
    log_budget: &Arc<LogBudget>,
) -> Result<WasiCtx, String> {
    let mut wasi = WasiCtxBuilder::new();
    // Nothing is inherited: no args, no stdin, no network, no variables
    // but those granted, no directories but those granted.
    wasi.allow_blocking_current_thread(true);
    // Raw sockets stay switched off (`allow_tcp`/`allow_udp` default to
    // false), so a guest cannot even create one: HTTP through the
    // allow-list is the only way out.
    wasi.stdout(GuestOutput::new(
        tag.clone(),
        Stream::Stdout,
        log_budget.clone(),
    ));
    wasi.stderr(GuestOutput::new(
        tag.clone(),
        Stream::Stderr,
        log_budget.clone(),
    ));
    for (k, v) in &cfg.env {
        wasi.env(k, v);
    }
    for k in &cfg.env_from_host {
        let v = std::env::var(k).map_err(|_| {
            format!("env_from_host names {k:?}, which is not set in flumen's environment")
        })?;
        wasi.env(k, v);
    }
    for d in &cfg.dirs {
        let perms = if d.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        if d.create && !d.host.exists() {
            std::fs::create_dir_all(&d.host)
                .map_err(|e| format!("cannot create directory {}: {e}", d.host.display()))?;
        }
        wasi.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
            let hint = if d.host.exists() {
                ""
            } else {
                "; create it, or set `create = true` on the grant"
            };
            format!("cannot grant directory {}: {e:#}{hint}", d.host.display())
        })?;
    }
    Ok(wasi.build())
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// A guest's stdout or stderr: each line becomes a log line tagged with the
/// component, at `info` for stdout and `warn` for stderr (where a Rust
/// guest's panic message goes), within the component's log budget. A line
/// longer than [`MAX_LOG_LINE`] is logged in pieces, so a guest cannot make
/// the host buffer without bound by never writing a newline.
#[derive(Clone)]
pub struct GuestOutput {
    tag: GuestTag,
    stream: Stream,
    line: Vec<u8>,
    budget: Arc<LogBudget>,
}

impl GuestOutput {
    fn new(tag: GuestTag, stream: Stream, budget: Arc<LogBudget>) -> Self {
        Self {
            tag,
            stream,
            line: Vec::new(),
            budget,
        }
    }

    /// Another writer to the same stream, with a line buffer of its own.
    fn another(&self) -> Self {
        Self::new(self.tag.clone(), self.stream, self.budget.clone())
    }

    fn emit(&mut self) {
        if !self.budget.admit(&self.tag, self.line.len()) {
            self.line.clear();
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        let t = &self.tag;
        let (topic, partition) = t.topic_partition();
        match self.stream {
            Stream::Stdout => tracing::info!(target: "flumen::guest", component = %t.component,
                pipeline = %t.pipeline, topic, partition, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(target: "flumen::guest", component = %t.component,
                pipeline = %t.pipeline, topic, partition, stream = "stderr", "{text}"),
        }
        self.line.clear();
    }

    fn push(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            let room = MAX_LOG_LINE - self.line.len();
            // Only the line's room is searched for its end: scanning the
            // whole write for every piece made a long line cost quadratic
            // time (an 8 MB line took seconds of a tokio worker).
            let window = &buf[..buf.len().min(room)];
            let take = window
                .iter()
                .position(|&b| b == b'\n')
                .map_or(window.len(), |nl| nl + 1);
            self.line.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.line.ends_with(b"\n") || self.line.len() >= MAX_LOG_LINE {
                self.emit();
            }
        }
    }
}

impl Drop for GuestOutput {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.another())
    }

    /// Written on the guest's own thread. The default adapter hands every
    /// 8 KiB to a task on wasmtime-wasi's tokio runtime and waits for it:
    /// a stdout flood then kept both cores busy with hand-offs, and the
    /// other pipelines' hops waited for a core.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.another())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    /// Always ready: a write never waits (lines over the budget are dropped).
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // One piece of a line at a time: a write is handled, or dropped
        // by the budget, before the guest may hand over the next.
        Ok(MAX_LOG_LINE)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(list: &[&str]) -> HttpGrant {
        let allow: Vec<_> = list
            .iter()
            .map(|p| HostPattern::parse(p).unwrap())
            .collect();
        HttpGrant::new(
            allow.into(),
            GuestTag {
                component: "c".into(),
                pipeline: "p".into(),
                partition: None,
            },
        )
    }

    fn allows(g: &HttpGrant, uri: &str) -> bool {
        g.allows(&uri.parse().unwrap())
    }

    #[test]
    fn allow_list_matches_host_port_and_subdomains() {
        let g = grant(&[
            "127.0.0.1:8080",
            "API.example.com",
            "*.corp.test",
            "[::1]:9000",
        ]);
        assert!(allows(&g, "http://127.0.0.1:8080/x"));
        assert!(!allows(&g, "http://127.0.0.1:8081/x"));
        assert!(!allows(&g, "http://127.0.0.2:8080/x"));
        assert!(allows(&g, "https://api.example.com/v1"));
        assert!(allows(&g, "http://api.example.com:1234/"));
        assert!(!allows(&g, "http://api.example.com.evil.test/"));
        assert!(!allows(&g, "http://evilapi.example.com/"));
        assert!(allows(&g, "http://a.corp.test/"));
        assert!(allows(&g, "http://a.b.corp.test/"));
        assert!(!allows(&g, "http://corp.test/"));
        assert!(!allows(&g, "http://xcorp.test/"));
        assert!(allows(&g, "http://[::1]:9000/"));
        assert!(!allows(&g, "http://[::1]:9001/"));
        assert!(!allows(&grant(&[]), "http://127.0.0.1/"));
    }

    #[test]
    fn output_is_split_into_bounded_lines() {
        let tag = GuestTag {
            component: "c".into(),
            pipeline: "p".into(),
            partition: None,
        };
        let budget = Arc::new(LogBudget::new(&crate::config::Budgets::default()));
        let mut out = GuestOutput::new(tag, Stream::Stderr, budget);
        out.push(b"one\ntw");
        assert_eq!(out.line, b"tw");
        out.push(b"o\n");
        assert!(out.line.is_empty());
        out.push(&vec![b'x'; MAX_LOG_LINE * 2 + 3]);
        assert_eq!(out.line.len(), 3);
    }
}

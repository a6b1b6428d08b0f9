//! The admin HTTP endpoint (`[admin] listen`): `POST /reload` reloads the
//! components and answers with what happened; `GET /metrics` serves the
//! Prometheus metrics ([`crate::ops::metrics`]); `GET /health` answers 200 while
//! the process runs; `GET /ready` answers 200 once every pipeline's
//! consumer runs and has joined its group, 503 otherwise.
//!
//! It is a small blocking server on its own thread: it serves operators,
//! not traffic, and must keep answering when the pipelines are busy. A
//! reload can take tens of seconds (compiling a Python or JavaScript
//! guest), so `POST /reload` is answered from a reloader thread of its own:
//! `/health`, `/ready` and `/metrics` keep answering meanwhile, and a
//! liveness probe never sees a hung process.

use super::metrics::{self, Metrics};
use super::reload::{ReloadError, ReloadHandle, Reloaded};
use crate::stats::PipelineStats;
use serde_json::json;
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response, Server};

/// `POST /reload` requests that may wait while one reload runs; more are
/// answered 429 at once rather than piling up.
const RELOADS_QUEUED: usize = 1;

/// What the endpoint serves besides reloads: the running pipelines.
struct Admin {
    pipelines: Vec<(String, Arc<PipelineStats>)>,
    metrics: Metrics,
}

/// Starts the endpoint on `listen` for the running `pipelines`. Returns once
/// it is listening, so that a port already in use is an error at start
/// rather than a silent absence.
pub fn serve(
    listen: &str,
    reload: ReloadHandle,
    pipelines: Vec<(String, Arc<PipelineStats>)>,
) -> std::io::Result<std::net::SocketAddr> {
    let server = Server::http(listen).map_err(std::io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("the admin endpoint must listen on an IP address"))?;
    let admin = Admin {
        metrics: Metrics::new(pipelines.clone(), reload.shared_stats()),
        pipelines,
    };
    let (reloads, queued) = sync_channel::<Request>(RELOADS_QUEUED);
    std::thread::Builder::new()
        .name("flumen-admin-reload".into())
        .spawn(move || {
            for request in queued {
                let (status, body) = reload_now(&reload);
                respond(request, status, "application/json", body.to_string());
            }
        })?;
    std::thread::Builder::new()
        .name("flumen-admin".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                match (request.method(), request.url()) {
                    (Method::Get, "/metrics") => {
                        let body = admin.metrics.render();
                        respond(request, 200, metrics::CONTENT_TYPE, body);
                    }
                    (Method::Post, "/reload") => match reloads.try_send(request) {
                        Ok(()) => {}
                        Err(TrySendError::Full(request)) => {
                            let body = json!({ "status": "busy", "error":
                                "a reload is running and another is queued; try again when they finish" });
                            respond(request, 429, "application/json", body.to_string());
                        }
                        Err(TrySendError::Disconnected(request)) => {
                            let body = json!({ "status": "rejected", "error": "the reloader stopped" });
                            respond(request, 503, "application/json", body.to_string());
                        }
                    },
                    _ => {
                        let (status, body) = admin.route(request.method(), request.url());
                        respond(request, status, "application/json", body.to_string());
                    }
                }
            }
        })?;
    tracing::info!(%addr, "admin endpoint listening (POST /reload, GET /metrics, /health, /ready)");
    Ok(addr)
}

impl Admin {
    /// Every pipeline whose consumer is not running or has not joined its
    /// group yet.
    fn not_ready(&self) -> Vec<&str> {
        self.pipelines
            .iter()
            .filter(|(_, s)| !s.ready())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Partitions stopped at a record that cannot be decoded, as
    /// `pipeline: topic[partition]@offset`.
    fn unreadable(&self) -> Vec<String> {
        self.pipelines
            .iter()
            .flat_map(|(name, s)| {
                s.unreadable()
                    .into_iter()
                    .map(move |((t, p), o)| format!("{name}: {t}[{p}]@{o}"))
            })
            .collect()
    }

    fn route(&self, method: &Method, url: &str) -> (u16, serde_json::Value) {
        match (method, url) {
            (Method::Get, "/health") => (200, json!({ "status": "ok" })),
            (Method::Get, "/ready") => {
                let unreadable = self.unreadable();
                match self.not_ready().as_slice() {
                    [] if unreadable.is_empty() => (200, json!({ "status": "ready" })),
                    waiting => (
                        503,
                        json!({ "status": "not ready", "pipelines_not_consuming": waiting,
                                "partitions_unreadable": unreadable }),
                    ),
                }
            }
            (_, "/reload" | "/health" | "/ready" | "/metrics") => {
                (405, json!({ "error": "method not allowed" }))
            }
            _ => (
                404,
                json!({ "error": "not found; try POST /reload, GET /metrics, /health or /ready" }),
            ),
        }
    }
}

fn respond(request: Request, status: u16, content_type: &str, body: String) {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes("Content-Type", content_type) {
        response.add_header(h);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "admin endpoint: client went away");
    }
}

fn reload_now(reload: &ReloadHandle) -> (u16, serde_json::Value) {
    match reload.reload("POST /reload") {
        Ok(Reloaded::Ran(swaps)) => (200, json!({ "status": "reloaded", "swapped": swaps })),
        Ok(Reloaded::Queued) => (
            202,
            json!({ "status": "queued", "detail": "a reload is running; one more runs when it \
                ends, for this and every trigger until then, and the log says how it went" }),
        ),
        Err(e) => {
            let status = match e {
                ReloadError::RestartNeeded(_) => 409,
                _ => 422,
            };
            (
                status,
                json!({ "status": "rejected", "error": e.to_string() }),
            )
        }
    }
}

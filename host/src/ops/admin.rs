//! The admin HTTP endpoint (`[admin] listen`): `POST /reload` reloads the
//! components and answers with what happened; `GET /metrics` serves the
//! Prometheus metrics ([`crate::ops::metrics`]); `GET /health` answers 200 while
//! the process runs; `GET /ready` answers 200 once every pipeline's
//! consumer runs and has joined its group, 503 otherwise.
//!
//! It is a small blocking server on its own thread: it serves operators,
//! not traffic, and must keep answering when the pipelines are busy.

use super::metrics::{self, Metrics};
use super::reload::{ReloadError, ReloadHandle};
use crate::stats::PipelineStats;
use serde_json::json;
use std::sync::Arc;
use tiny_http::{Header, Method, Response, Server};

/// What the endpoint serves: the reloader and the running pipelines.
struct Admin {
    reload: ReloadHandle,
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
        reload,
        pipelines,
    };
    std::thread::Builder::new()
        .name("flumen-admin".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (status, content_type, body) =
                    if (request.method(), request.url()) == (&Method::Get, "/metrics") {
                        (200, metrics::CONTENT_TYPE, admin.metrics.render())
                    } else {
                        let (status, body) = admin.route(request.method(), request.url());
                        (status, "application/json", body.to_string())
                    };
                let mut response = Response::from_string(body).with_status_code(status);
                if let Ok(h) = Header::from_bytes("Content-Type", content_type) {
                    response.add_header(h);
                }
                if let Err(e) = request.respond(response) {
                    tracing::debug!(error = %e, "admin endpoint: client went away");
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

    fn route(&self, method: &Method, url: &str) -> (u16, serde_json::Value) {
        match (method, url) {
            (Method::Post, "/reload") => self.reload_now(),
            (Method::Get, "/health") => (200, json!({ "status": "ok" })),
            (Method::Get, "/ready") => match self.not_ready().as_slice() {
                [] => (200, json!({ "status": "ready" })),
                waiting => (
                    503,
                    json!({ "status": "not ready", "pipelines_not_consuming": waiting }),
                ),
            },
            (_, "/reload" | "/health" | "/ready" | "/metrics") => {
                (405, json!({ "error": "method not allowed" }))
            }
            _ => (
                404,
                json!({ "error": "not found; try POST /reload, GET /metrics, /health or /ready" }),
            ),
        }
    }

    fn reload_now(&self) -> (u16, serde_json::Value) {
        match self.reload.reload("POST /reload") {
            Ok(swaps) => (200, json!({ "status": "reloaded", "swapped": swaps })),
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
}

//! The admin HTTP endpoint (`[admin] listen`): `POST /reload` reloads the
//! components and answers with what happened; `GET /health` answers 200
//! while the process runs.
//!
//! It is a small blocking server on its own thread: it serves operators,
//! not traffic, and must keep answering when the pipelines are busy.

use crate::reload::{ReloadError, ReloadHandle};
use serde_json::json;
use tiny_http::{Header, Method, Response, Server};

/// Starts the endpoint on `listen`. Returns once it is listening, so that a
/// port already in use is an error at start rather than a silent absence.
pub fn serve(listen: &str, reload: ReloadHandle) -> std::io::Result<std::net::SocketAddr> {
    let server = Server::http(listen).map_err(std::io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("the admin endpoint must listen on an IP address"))?;
    std::thread::Builder::new()
        .name("flumen-admin".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (status, body) = route(request.method(), request.url(), &reload);
                let mut response = Response::from_string(body.to_string()).with_status_code(status);
                if let Ok(h) = Header::from_bytes("Content-Type", "application/json") {
                    response.add_header(h);
                }
                if let Err(e) = request.respond(response) {
                    tracing::debug!(error = %e, "admin endpoint: client went away");
                }
            }
        })?;
    tracing::info!(%addr, "admin endpoint listening (POST /reload, GET /health)");
    Ok(addr)
}

fn route(method: &Method, url: &str, reload: &ReloadHandle) -> (u16, serde_json::Value) {
    match (method, url) {
        (Method::Post, "/reload") => match reload.reload("POST /reload") {
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
        },
        (Method::Get, "/health") => (200, json!({ "status": "ok" })),
        (_, "/reload" | "/health") => (405, json!({ "error": "method not allowed" })),
        _ => (
            404,
            json!({ "error": "not found; try POST /reload or GET /health" }),
        ),
    }
}

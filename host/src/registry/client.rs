//! HTTP(S) GETs to the registry: hyper over tokio, TLS by rustls (the
//! stack `wasi:http` already brings, so the registry costs no new
//! dependency), with the configured authentication, CA and timeout.

use crate::config::SchemaRegistryConfig;
use http::header::CONTENT_TYPE;
use http::header::{ACCEPT, AUTHORIZATION, HOST};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Largest registry answer read: schemas are text of a few KiB; this
/// bounds what a broken or hostile registry can make the host hold.
const MAX_BODY: usize = 16 << 20;

/// A registry client: base URLs tried in order, and how to talk to them.
pub struct Client {
    urls: Vec<Uri>,
    authorization: Option<HeaderValue>,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl Client {
    /// A client for `config`, or why it cannot be made.
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, String> {
        let urls = config
            .urls
            .iter()
            .map(|u| {
                u.trim_end_matches('/')
                    .parse::<Uri>()
                    .map_err(|e| format!("`{u}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let authorization = match (&config.username, &config.password, &config.token) {
            (Some(user), Some(password), _) => {
                use base64::Engine as _;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            (_, _, Some(token)) => Some(format!("Bearer {token}")),
            _ => None,
        }
        .map(|v| {
            let mut v = HeaderValue::from_str(&v).map_err(|_| {
                "the username, password or token holds a character HTTP headers cannot".to_owned()
            })?;
            v.set_sensitive(true);
            Ok::<_, String>(v)
        })
        .transpose()?;
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "ca_file {} holds no PEM certificate",
                        path.display()
                    ));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            urls,
            authorization,
            tls: Arc::new(tls),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// GETs `path` (relative to the base URL) from the first registry URL
    /// that answers, by `deadline` or the configured timeout, whichever is
    /// sooner. Returns the status and body; `Err` if none answered.
    pub fn get(&self, path: &str, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
        self.send(path, None, deadline)
    }

    /// POSTs the JSON `body` to `path`, as [`Client::get`] GETs. A request
    /// that reached no registry was not applied; one that timed out may
    /// have been (registering is idempotent, so sending it again is safe).
    pub fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), String> {
        self.send(path, Some(body), deadline)
    }

    fn send(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), String> {
        let method = if body.is_some() { "POST" } else { "GET" };
        let mut errors = Vec::new();
        for base in &self.urls {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(self.timeout);
            if left.is_zero() {
                errors.push(format!("{base}: no time left in the call"));
                break;
            }
            let request = self.request(base, path, body.clone(), left);
            match wasmtime_wasi::runtime::in_tokio(request) {
                Ok(answer) => return Ok(answer),
                Err(e) => errors.push(format!("{base}: {e}")),
            }
        }
        Err(format!(
            "no registry answered {method} /{path} ({})",
            errors.join("; ")
        ))
    }

    async fn request(
        &self,
        base: &Uri,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(timeout, self.exchange(base, path, body)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    async fn exchange(
        &self,
        base: &Uri,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), String> {
        let authority = base.authority().ok_or("the URL has no host")?;
        let https = base.scheme_str() == Some("https");
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((authority.host(), port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let prefix = base.path().trim_end_matches('/');
        let method = if body.is_some() {
            http::Method::POST
        } else {
            http::Method::GET
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{prefix}/{path}"))
            .header(HOST, authority.as_str())
            .header(CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")
            .header(
                ACCEPT,
                "application/vnd.schemaregistry.v1+json, application/json",
            );
        if let Some(a) = &self.authorization {
            request = request.header(AUTHORIZATION, a.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("bad request: {e}"))?;
        if https {
            let name = ServerName::try_from(authority.host().to_owned())
                .map_err(|e| format!("bad server name: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e} (is `ca_file` the CA that signed the registry's certificate?)"))?;
            send(tls, request).await
        } else {
            send(tcp, request).await
        }
    }
}

/// Sends `request` on a fresh HTTP/1 connection over `io`; reads the whole
/// answer.
async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> SchemaRegistryConfig {
        toml::from_str(&format!("urls = [\"https://r:8081/\"]\n{extra}")).expect("config")
    }

    #[test]
    fn authenticates_as_configured_and_hides_the_credentials() {
        let bearer = Client::new(&config("token = \"t0k\"")).expect("client");
        let header = bearer.authorization.expect("a header");
        assert_eq!(header.to_str().ok(), Some("Bearer t0k"));
        assert!(header.is_sensitive());
        let basic = Client::new(&config("username = \"u\"\npassword = \"p\"")).expect("client");
        // base64("u:p")
        assert_eq!(
            basic
                .authorization
                .and_then(|h| h.to_str().ok().map(str::to_owned))
                .as_deref(),
            Some("Basic dTpw")
        );
        assert!(Client::new(&config(""))
            .expect("client")
            .authorization
            .is_none());
        assert_eq!(bearer.urls[0].to_string(), "https://r:8081/");
    }

    #[test]
    fn names_a_ca_file_that_holds_no_certificate() {
        let dir = std::env::temp_dir().join(format!("flumen-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").expect("write");
        let e = Client::new(&config(&format!(
            "ca_file = {:?}",
            dir.display().to_string()
        )))
        .err()
        .unwrap_or_default();
        let _ = std::fs::remove_file(&dir);
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn a_request_goes_to_the_next_url_when_one_does_not_answer() {
        // Nothing listens on port 9 of loopback: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let body = "{\"schema\":\"\\\"string\\\"\"}";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).expect("write");
        });
        let config: SchemaRegistryConfig = toml::from_str(&format!(
            "urls = [\"http://127.0.0.1:9\", \"http://127.0.0.1:{port}\"]\ntimeout_ms = 2000"
        ))
        .expect("config");
        let client = Client::new(&config).expect("client");
        let (status, body) = client
            .get("schemas/ids/1", Instant::now() + Duration::from_secs(5))
            .expect("the second URL answers");
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains("string"));
        server.join().expect("server");
        let e = client
            .get("schemas/ids/1", Instant::now() + Duration::from_secs(2))
            .expect_err("nobody answers now");
        assert!(
            e.contains("127.0.0.1:9") && e.contains("no registry answered GET"),
            "{e}"
        );
    }
}

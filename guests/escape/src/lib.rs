//! A hostile sink, for the escape suite: each instance tries to break out of
//! its sandbox in one way, chosen by its config, whenever it is called.
//!
//! Config keys:
//! - `attempt` (required): what to try (see `attempt` below).
//! - `target` (optional): the path, URL, address or variable it goes for.
//!
//! Verdicts say what happened, for the suite to check: `reject("ESCAPED: …")`
//! means the attempt SUCCEEDED, `reject("denied: …")` means the sandbox
//! refused it, with the error the guest saw. Attempts that the host must
//! stop (endless loops, unbounded memory, a blown stack) never return.

wit_bindgen::generate!({ world: "sink", path: "../../wit" });

use exports::flumen::pipeline::delivery::{Event, Guest, Source, Verdict};
use flumen_guest_common::Config;
use std::cell::RefCell;
use std::io::{Read, Write};

thread_local! {
    static PLAN: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
}

struct Escape;

/// Tries the attempt: `Ok(what it got)` if it got through, `Err(error)` if
/// it was refused.
fn attempt(kind: &str, target: &str) -> Result<String, String> {
    let e = |e: std::io::Error| e.to_string();
    match kind {
        // A file outside any granted directory (absolute, or through `..`
        // or a symlink planted in a granted directory).
        "read" => {
            let mut s = String::new();
            std::fs::File::open(target)
                .and_then(|mut f| f.read_to_string(&mut s))
                .map_err(e)?;
            Ok(format!("read {} bytes", s.len()))
        }
        // Creating a file (in a read-only grant, or outside any grant).
        "write" => std::fs::File::create(target)
            .and_then(|mut f| f.write_all(b"escaped"))
            .map(|()| "wrote".into())
            .map_err(e),
        // Listing a directory that is not granted.
        "list" => std::fs::read_dir(target)
            .map(|d| format!("{} entries", d.count()))
            .map_err(e),
        // A raw TCP connection (wasi:sockets).
        "tcp" => std::net::TcpStream::connect(target)
            .map(|_| "connected".into())
            .map_err(e),
        // A UDP socket sending a datagram.
        "udp" => std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.send_to(b"escaped", target))
            .map(|n| format!("sent {n} bytes"))
            .map_err(e),
        // A DNS lookup.
        "dns" => {
            use std::net::ToSocketAddrs;
            (target, 80)
                .to_socket_addrs()
                .map(|a| format!("resolved {} addresses", a.count()))
                .map_err(e)
        }
        // An environment variable of the host.
        "env" => match std::env::var(target) {
            Ok(v) => Ok(format!("read {target}={v}")),
            Err(_) => {
                let all: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                Err(format!(
                    "{target} not set (the guest sees {} variables: {all:?})",
                    all.len()
                ))
            }
        },
        // An HTTP request through wasi:http.
        "http" => http_get(target),
        // Print to stdout and stderr; the host turns them into log lines.
        "print" => {
            println!("escape guest on stdout: {target}");
            eprintln!("escape guest on stderr: {target}");
            Err("printed (not an escape)".into())
        }
        // Resources: these never return if the host does its job.
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "cpu" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "stack" => Ok(format!("depth {}", recurse(0))),
        "noop" => Err("did nothing".into()),
        other => Err(format!("unknown attempt `{other}`")),
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let pad = std::hint::black_box([n; 64]);
    recurse(n + 1) + pad[(n % 64) as usize]
}

fn http_get(url: &str) -> Result<String, String> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let rest = url
        .strip_prefix("http://")
        .ok_or("target must be an http:// URL")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "authority")?;
    request
        .set_path_with_query(Some(&format!("/{path}")))
        .map_err(|()| "path")?;
    let response = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(r))) => Ok(format!("HTTP {}", r.status())),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".into()),
    }
}

impl Guest for Escape {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["attempt", "target"])?;
        let kind = config.required("attempt")?.to_owned();
        let target = config.get("target").unwrap_or("").to_owned();
        PLAN.with(|p| *p.borrow_mut() = (kind, target));
        Ok(())
    }

    fn deliver(_source: Source, batch: Vec<Event>) -> Result<Vec<Verdict>, String> {
        let (kind, target) = PLAN.with(|p| p.borrow().clone());
        let verdict = match attempt(&kind, &target) {
            Ok(got) => Verdict::Reject(format!("ESCAPED: {got}")),
            Err(error) => Verdict::Reject(format!("denied: {error}")),
        };
        Ok(vec![verdict; batch.len()])
    }
}

export!(Escape);

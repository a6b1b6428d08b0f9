//! Talking to the admin endpoint: plain HTTP requests, free ports, and
//! metric samples read with the parser `flumen top` uses.

use super::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request without a body to the admin endpoint on `port`:
/// (status, body).
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// One HTTP/1.1 request with a body to `addr` (`host:port`), for the real
/// services the tests start (object store, ClickHouse): (status, body),
/// the body de-chunked.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    try_http_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"))
}

/// [`http_request`], with a connection that fails or breaks as an error.
pub fn try_http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut rest = &answer[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Ok((status, rest.to_vec()));
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&rest[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .expect("chunk size in hex");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, body));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A loopback port free at the time of asking, for a service the test
/// starts as its own process.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on
/// Linux), one after another from a counter: a port the kernel hands out
/// (`bind(0)`) can be handed out again, or taken by any process's outgoing
/// connection, between the asking and the service's own bind. That race was
/// seen in CI as `weed` failing with "address already in use". Each test
/// process starts its count at a window chosen by its pid, and a port found
/// busy is skipped. A port handed out is also claimed for the life of this
/// process by an abstract Unix socket named after it, which the kernel
/// drops when the process ends: two test binaries running at once (the
/// fault suite's orderings in scripts/test.sh) never hand out the same port,
/// even in the moment before its service binds it.
pub fn free_port() -> u16 {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000; // up to 31_999
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    static CLAIMS: Mutex<Vec<UnixListener>> = Mutex::new(Vec::new());
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() % 22) * 1_000,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let name = format!("flumen-test-port-{port}");
        let claim = SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| UnixListener::bind_addr(&addr));
        if let Ok(claim) = claim {
            CLAIMS.lock().expect("port claims").push(claim);
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

/// The value of the sample of metric `name` whose labels include `labels`
/// in `/metrics` text, read with the parser `flumen top` uses.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    flumen::cli::top::parse(text)
        .into_iter()
        .find(|s| s.matches(name, labels))
        .map(|s| s.value)
}

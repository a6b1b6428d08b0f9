//! A slow, lossy link: a TCP proxy that holds every chunk it forwards for
//! a fixed delay, and a share of them for a retransmission timeout more, as
//! a lost packet costs a TCP stream (head-of-line: what follows waits
//! too). The kernel here has no `netem` qdisc to do it below TCP.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Linux's smallest retransmission timeout: what a lost segment adds.
const RTO: Duration = Duration::from_millis(200);

/// A proxy from a loopback port to `upstream`; stops accepting on drop.
pub struct SlowLink {
    /// `127.0.0.1:port` to connect to instead of the upstream.
    pub addr: String,
    stop: Arc<AtomicBool>,
    /// Chunks held back an extra RTO, as lost.
    pub lost: Arc<AtomicU64>,
    /// Chunks forwarded.
    pub chunks: Arc<AtomicU64>,
    /// When each chunk from a client arrived, for what a client sent when.
    pub sent: Arc<Mutex<Vec<Instant>>>,
    /// When each chunk from a client was passed on upstream.
    pub passed: Arc<Mutex<Vec<Instant>>>,
    /// How long each chunk is held, in milliseconds: see [`Self::hold`].
    delay_ms: Arc<AtomicU64>,
    /// See [`Self::strip_if_none_match`].
    strip: Arc<AtomicBool>,
}

impl SlowLink {
    /// Listens on a loopback port the kernel picks (nothing can take it
    /// between choosing and binding) and forwards to `upstream`, each way
    /// `delay` late, and `loss` (0.0–1.0) of the chunks an [`RTO`] later.
    pub fn start(upstream: &str, delay: Duration, loss: f64) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the slow link");
        let port = listener
            .local_addr()
            .expect("the slow link's address")
            .port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (lost, chunks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let passed = Arc::new(Mutex::new(Vec::new()));
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let strip = Arc::new(AtomicBool::new(false));
        let link = Self {
            addr: format!("127.0.0.1:{port}"),
            stop: stop.clone(),
            lost: lost.clone(),
            chunks: chunks.clone(),
            sent: sent.clone(),
            passed: passed.clone(),
            delay_ms: delay_ms.clone(),
            strip: strip.clone(),
        };
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let ways = [(&client, &server, true), (&server, &client, false)];
                for (from, to, upward) in ways {
                    let (from, to) = (from.try_clone(), to.try_clone());
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let way = Way {
                        delay_ms: delay_ms.clone(),
                        loss,
                        lost: lost.clone(),
                        chunks: chunks.clone(),
                        sent: upward.then(|| (sent.clone(), passed.clone())),
                        strip: upward.then(|| strip.clone()),
                    };
                    std::thread::spawn(move || pump(from, to, way));
                }
            }
        });
        link
    }
}

impl SlowLink {
    /// Holds every chunk from now on for `delay` (each way), as a network
    /// that keeps a stream's packets for a while and then delivers them.
    pub fn hold(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// From now on, takes `If-None-Match` out of every request but those
    /// for `/.flumen/` keys: to the store behind the link, the client's
    /// writes are no longer conditional, while the s3 sink's start-up check
    /// of conditional writes still passes. The store must not check
    /// signatures (the header is signed): for measuring what conditional
    /// writes add, never for a test that must pass.
    pub fn strip_if_none_match(&self) {
        self.strip.store(true, Ordering::Relaxed);
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Times, noted as they happen.
type Log = Arc<Mutex<Vec<Instant>>>;

/// One direction of a link: how it holds chunks, what it counts, and
/// (from the client) when each chunk arrived and was passed on, and
/// whether requests lose their condition.
struct Way {
    delay_ms: Arc<AtomicU64>,
    loss: f64,
    lost: Arc<AtomicU64>,
    chunks: Arc<AtomicU64>,
    sent: Option<(Log, Log)>,
    strip: Option<Arc<AtomicBool>>,
}

/// `chunk` without the `if-none-match` header of the request it starts,
/// unless that request is for a `/.flumen/` key: the header's name is
/// overwritten in place, so no length changes.
fn unconditional(chunk: &mut [u8]) {
    const NAME: &[u8] = b"\r\nif-none-match:";
    let Some(line_end) = chunk.windows(2).position(|w| w == b"\r\n") else {
        return;
    };
    if chunk[..line_end].windows(9).any(|w| w == b"/.flumen/") {
        return;
    }
    let at = chunk
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME));
    if let Some(at) = at {
        chunk[at + 2..at + NAME.len() - 1].copy_from_slice(b"x-ignored-hdr");
    }
}

/// Forwards `from` to `to`: a reader queues each chunk with the time it
/// may go; a writer sends them in order, each at its time.
fn pump(mut from: TcpStream, mut to: TcpStream, way: Way) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let passed = way.sent.as_ref().map(|(_, passed)| passed.clone());
    let writer = std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
            if let Some(log) = &passed {
                log.lock().expect("the link's log").push(Instant::now());
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_due = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = Duration::from_millis(way.delay_ms.load(Ordering::Relaxed));
        let mut due = Instant::now() + delay;
        if fastrand::f64() < way.loss {
            due += RTO;
            way.lost.fetch_add(1, Ordering::Relaxed);
        }
        // A stream keeps its order: nothing overtakes a held chunk.
        due = due.max(last_due);
        last_due = due;
        way.chunks.fetch_add(1, Ordering::Relaxed);
        if let Some((log, _)) = &way.sent {
            log.lock().expect("the link's log").push(Instant::now());
        }
        let mut chunk = buf[..n].to_vec();
        if way
            .strip
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            unconditional(&mut chunk);
        }
        if tx.send((due, chunk)).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

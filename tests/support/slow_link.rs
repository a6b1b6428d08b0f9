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
        let link = Self {
            addr: format!("127.0.0.1:{port}"),
            stop: stop.clone(),
            lost: lost.clone(),
            chunks: chunks.clone(),
            sent: sent.clone(),
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
                let ways = [(&client, &server, Some(&sent)), (&server, &client, None)];
                for (from, to, log) in ways {
                    let (from, to) = (from.try_clone(), to.try_clone());
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let counters = (lost.clone(), chunks.clone(), log.cloned());
                    std::thread::spawn(move || pump(from, to, delay, loss, counters));
                }
            }
        });
        link
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What a direction of a link counts: chunks held as lost, chunks, and
/// (from the client) when each arrived.
type Counters = (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Option<Arc<Mutex<Vec<Instant>>>>,
);

/// Forwards `from` to `to`: a reader queues each chunk with the time it
/// may go; a writer sends them in order, each at its time.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    loss: f64,
    (lost, chunks, log): Counters,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
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
        let mut due = Instant::now() + delay;
        if fastrand::f64() < loss {
            due += RTO;
            lost.fetch_add(1, Ordering::Relaxed);
        }
        // A stream keeps its order: nothing overtakes a held chunk.
        due = due.max(last_due);
        last_due = due;
        chunks.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = &log {
            log.lock().expect("the link's log").push(Instant::now());
        }
        if tx.send((due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

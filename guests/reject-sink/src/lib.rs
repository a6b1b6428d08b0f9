//! A sink for tests of the failure path. It appends events as JSON lines like
//! the file sink, and misbehaves on request:
//!
//! - `reject` / `retry` (substrings): an event whose value contains it gets a
//!   `reject` (permanent) or `retry` verdict and is not written;
//! - `trap` (substring): the first batch of a partition holding such a value
//!   makes the guest trap before it writes anything — by panicking, or with
//!   `trap_kind = "oob"` by reading outside its memory, or with
//!   `trap_kind = "unreachable"` by executing `unreachable`; a marker file
//!   `.trapped-<partition>` beside `path` keeps the fresh instance the host
//!   retries on from trapping again;
//! - `trap_percent`, `fail_percent` (0–100): that share of calls trap, or
//!   fail the whole batch with an error, before writing anything;
//! - `retry_percent` (0–100): that share of events get a `retry` verdict;
//! - `spin` (substring): a batch holding such a value loops forever;
//! - `grow` (substring): a batch holding such a value allocates memory
//!   without bound;
//! - `delay_ms`: every call sleeps this long first (a slow destination).
//!
//! Each instance logs `instance started` from its `init`. Config keys:
//! `path` (required, with `%{partition}` as for the file sink) and the above.
//!
//! It takes its batches in columns (world `columnar-sink`), so that the
//! failure-path tests also cover how the host turns a columnar sink's
//! `retry` and `reject` answers into its own.

wit_bindgen::generate!({ world: "columnar-sink", path: "../../wit" });

use exports::flumen::pipeline::columnar_delivery::{Columns, Guest, Source, Verdict};
use flumen_guest_common::columns::Batch;
use flumen_guest_common::{json_line, Config, PartitionFile};
use std::cell::RefCell;
use std::io::Write;

struct State {
    file: PartitionFile,
    dir: String,
    reject: Option<Vec<u8>>,
    retry: Option<Vec<u8>>,
    trap: Option<Vec<u8>>,
    trap_kind: String,
    spin: Option<Vec<u8>>,
    grow: Option<Vec<u8>>,
    trap_percent: u64,
    fail_percent: u64,
    retry_percent: u64,
    delay_ms: u64,
    rng: u64,
}

impl State {
    /// xorshift64*: the guest has no rand crate, and tests need only a
    /// different sequence per instance.
    fn roll(&mut self, percent: u64) -> bool {
        if percent == 0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100 < percent
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn contains(value: Option<&[u8]>, needle: Option<&[u8]>) -> bool {
    match (value, needle) {
        (Some(v), Some(n)) if !n.is_empty() => v.windows(n.len()).any(|w| w == n),
        _ => false,
    }
}

fn any_contains(batch: &Batch<'_>, needle: Option<&[u8]>) -> bool {
    batch.iter().any(|e| contains(e.value, needle))
}

struct RejectSink;

/// Traps the way `kind` says.
fn trap(kind: &str, offset: i64) -> Result<(), String> {
    match kind {
        "panic" => panic!("trap requested by the batch at offset {offset}"),
        // Linear memory is far smaller than 4 GiB, so this address is out
        // of bounds: the load itself traps.
        "oob" => {
            let far = usize::MAX - 15;
            // SAFETY: none; trapping is the point, and wasm makes it a clean
            // trap rather than undefined behaviour in the host.
            let byte = unsafe { std::ptr::read_volatile(far as *const u8) };
            Err(format!("read {byte} out of bounds without a trap"))
        }
        "unreachable" => std::process::abort(),
        other => Err(format!("unknown trap_kind `{other}`")),
    }
}

impl Guest for RejectSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(
            config,
            &[
                "path",
                "reject",
                "retry",
                "trap",
                "trap_kind",
                "spin",
                "grow",
                "trap_percent",
                "fail_percent",
                "retry_percent",
                "delay_ms",
            ],
        )?;
        let path = config.required("path")?;
        let file = PartitionFile::new(path)?;
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let bytes = |k: &str| config.get(k).map(|s| s.as_bytes().to_vec());
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        let state = State {
            file,
            dir,
            reject: bytes("reject"),
            retry: bytes("retry"),
            trap: bytes("trap"),
            trap_kind: config.get("trap_kind").unwrap_or("panic").to_owned(),
            spin: bytes("spin"),
            grow: bytes("grow"),
            trap_percent: config.u64_or("trap_percent", 0)?,
            fail_percent: config.u64_or("fail_percent", 0)?,
            retry_percent: config.u64_or("retry_percent", 0)?,
            delay_ms: config.u64_or("delay_ms", 0)?,
            rng: seed,
        };
        flumen::pipeline::log::log(flumen::pipeline::log::Level::Info, "instance started");
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Verdict>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        let Some(first) = batch.get(0) else {
            return Ok(Vec::new());
        };
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let state = state.as_mut().ok_or("deliver called before init")?;
            if state.delay_ms > 0 {
                std::thread::sleep(std::time::Duration::from_millis(state.delay_ms));
            }
            if any_contains(&batch, state.trap.as_deref()) {
                let marker = format!("{}/.trapped-{}", state.dir, source.partition);
                if std::fs::metadata(&marker).is_err() {
                    std::fs::write(&marker, b"").map_err(|e| format!("{marker}: {e}"))?;
                    trap(&state.trap_kind, first.offset)?;
                }
            }
            if any_contains(&batch, state.spin.as_deref()) {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            if any_contains(&batch, state.grow.as_deref()) {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            if state.roll(state.trap_percent) {
                panic!("random trap (trap_percent) at offset {}", first.offset);
            }
            if state.roll(state.fail_percent) {
                return Err(format!(
                    "random failure (fail_percent) at offset {}",
                    first.offset
                ));
            }
            let mut buf = String::new();
            let mut verdicts = Vec::with_capacity(batch.len());
            for e in batch.iter() {
                let value = e.value;
                if contains(value, state.reject.as_deref()) {
                    verdicts.push(Verdict::Reject(format!(
                        "offset {} matches `reject`",
                        e.offset
                    )));
                } else if contains(value, state.retry.as_deref()) {
                    verdicts.push(Verdict::Retry(format!(
                        "offset {} matches `retry`",
                        e.offset
                    )));
                } else if state.roll(state.retry_percent) {
                    verdicts.push(Verdict::Retry(format!(
                        "random retry at offset {}",
                        e.offset
                    )));
                } else {
                    buf.push_str(&json_line(e.fields(&source.topic, source.partition)));
                    verdicts.push(Verdict::Delivered);
                }
            }
            let (_, file) = state.file.get(&source.topic, source.partition)?;
            file.write_all(buf.as_bytes()).map_err(|e| e.to_string())?;
            file.flush().map_err(|e| e.to_string())?;
            Ok(verdicts)
        })
    }
}

export!(RejectSink);

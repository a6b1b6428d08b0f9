//! A sink for tests of the failure path: it appends events as JSON lines like
//! the file sink, but rejects (permanently) every event whose value contains
//! `reject` and asks for a retry of every event whose value contains `retry`.
//! Rejected and retried events are not written.
//!
//! With `trap` set, the first batch of a partition holding a value with that
//! substring makes the guest panic (a trap) before it writes anything; it
//! leaves a marker file `.trapped-<partition>` beside `path` so that the
//! fresh instance the host retries on does not trap again. Each instance
//! logs `instance started` from its `init`.
//!
//! Config keys: `path` (required, with `%{partition}` as for the file sink),
//! `reject`, `retry` and `trap` (substrings; unset means never).

wit_bindgen::generate!({ world: "sink", path: "../../wit" });

use exports::flumen::pipeline::delivery::{Event, Guest, Verdict};
use flumen_guest_common::{event_fields, json_line, Config, PartitionFile};
use std::cell::RefCell;
use std::io::Write;

struct State {
    file: PartitionFile,
    dir: String,
    reject: Option<Vec<u8>>,
    retry: Option<Vec<u8>>,
    trap: Option<Vec<u8>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn contains(value: Option<&[u8]>, needle: Option<&[u8]>) -> bool {
    match (value, needle) {
        (Some(v), Some(n)) => v.windows(n.len()).any(|w| w == n),
        _ => false,
    }
}

struct RejectSink;

impl Guest for RejectSink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["path", "reject", "retry", "trap"])?;
        let path = config.required("path")?;
        let file = PartitionFile::new(path)?;
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let bytes = |k: &str| config.get(k).map(|s| s.as_bytes().to_vec());
        let (reject, retry, trap) = (bytes("reject"), bytes("retry"), bytes("trap"));
        flumen::pipeline::log::log(flumen::pipeline::log::Level::Info, "instance started");
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                file,
                dir,
                reject,
                retry,
                trap,
            })
        });
        Ok(())
    }

    fn deliver(batch: Vec<Event>) -> Result<Vec<Verdict>, String> {
        let Some(first) = batch.first() else {
            return Ok(Vec::new());
        };
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let state = state.as_mut().ok_or("deliver called before init")?;
            if batch.iter().any(|e| contains(e.value.as_deref(), state.trap.as_deref())) {
                let marker = format!("{}/.trapped-{}", state.dir, first.partition);
                if std::fs::metadata(&marker).is_err() {
                    std::fs::write(&marker, b"").map_err(|e| format!("{marker}: {e}"))?;
                    panic!("trap requested by the batch at offset {}", first.offset);
                }
            }
            let mut buf = String::new();
            let mut verdicts = Vec::with_capacity(batch.len());
            for e in &batch {
                let value = e.value.as_deref();
                if contains(value, state.reject.as_deref()) {
                    verdicts.push(Verdict::Reject(format!("offset {} matches `reject`", e.offset)));
                } else if contains(value, state.retry.as_deref()) {
                    verdicts.push(Verdict::Retry(format!("offset {} matches `retry`", e.offset)));
                } else {
                    buf.push_str(&json_line(event_fields!(e)));
                    verdicts.push(Verdict::Delivered);
                }
            }
            let (_, file) = state.file.get(&first.topic, first.partition)?;
            file.write_all(buf.as_bytes()).map_err(|e| e.to_string())?;
            file.flush().map_err(|e| e.to_string())?;
            Ok(verdicts)
        })
    }
}

export!(RejectSink);

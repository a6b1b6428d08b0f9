//! A test interceptor for the host's routing and replacing:
//! - an event with a `route` header goes to the sinks it names
//!   (comma-separated; an empty value routes it to no sink);
//! - an event whose value starts with `upper:` is replaced by one with the
//!   value upper-cased and a header `replaced: yes` added.
//!
//! Config key `fail` (a substring, optional): a batch holding an event whose
//! value contains it fails as a whole, as a broken interceptor would.
//!
//! It takes its batches in columns (world `columnar-interceptor`), so that
//! the routing and replacing tests also cover how the host turns a columnar
//! interceptor's answers into its own.

wit_bindgen::generate!({ world: "columnar-interceptor", path: "../../wit" });

use exports::flumen::pipeline::columnar_interception::{
    Action, Columns, Guest, Replacement, Source, Verdict,
};
use flumen::pipeline::types::Header;
use flumen_guest_common::columns::EventRef;
use flumen_guest_common::Config;
use std::cell::RefCell;

struct Router;

thread_local! {
    static FAIL: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

fn verdict(e: EventRef<'_>) -> Verdict {
    let route = e
        .headers()
        .find(|(name, _)| *name == "route")
        .map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
    let action = match e.value {
        Some(v) if v.starts_with(b"upper:") => {
            let mut headers: Vec<Header> = e
                .headers()
                .map(|(name, value)| Header {
                    name: name.to_owned(),
                    value: value.to_vec(),
                })
                .collect();
            headers.push(Header {
                name: "replaced".into(),
                value: b"yes".to_vec(),
            });
            Action::Replace(Replacement {
                timestamp: e.timestamp,
                key: e.key.map(<[u8]>::to_vec),
                value: Some(v.to_ascii_uppercase()),
                headers,
            })
        }
        _ => Action::Keep,
    };
    Verdict { action, route }
}

impl Guest for Router {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["fail"])?;
        FAIL.with(|f| *f.borrow_mut() = config.get("fail").map(|s| s.as_bytes().to_vec()));
        Ok(())
    }

    fn process(_source: Source, batch: Columns) -> Result<Vec<Verdict>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        let failing = FAIL.with(|f| {
            let f = f.borrow();
            let needle = f.as_deref().filter(|n| !n.is_empty())?;
            batch.iter().find(|e| {
                e.value
                    .is_some_and(|v| v.windows(needle.len()).any(|w| w == needle))
            })
        });
        if let Some(e) = failing {
            return Err(format!("offset {} matches `fail`", e.offset));
        }
        Ok(batch.iter().map(verdict).collect())
    }
}

export!(Router);

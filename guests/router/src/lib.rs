//! A test interceptor for the host's routing and replacing:
//! - an event with a `route` header goes to the sinks it names
//!   (comma-separated; an empty value routes it to no sink);
//! - an event whose value starts with `upper:` is replaced by one with the
//!   value upper-cased and a header `replaced: yes` added.
//!
//! No config keys.

wit_bindgen::generate!({ world: "interceptor", path: "../../wit" });

use exports::flumen::pipeline::interception::{Action, Event, Guest, Replacement, Verdict};
use flumen::pipeline::types::Header;
use flumen_guest_common::Config;

struct Router;

fn verdict(e: &Event) -> Verdict {
    let route = e.headers.iter().find(|h| h.name == "route").map(|h| {
        String::from_utf8_lossy(&h.value)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let action = match e.value.as_deref() {
        Some(v) if v.starts_with(b"upper:") => {
            let mut headers = e.headers.clone();
            headers.push(Header {
                name: "replaced".into(),
                value: b"yes".to_vec(),
            });
            Action::Replace(Replacement {
                timestamp: e.timestamp,
                key: e.key.clone(),
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
        Config::new(config, &[]).map(|_| ())
    }

    fn process(batch: Vec<Event>) -> Result<Vec<Verdict>, String> {
        Ok(batch.iter().map(verdict).collect())
    }
}

export!(Router);

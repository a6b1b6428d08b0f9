//! The filter interceptor: keeps or drops events by a regular expression on
//! the value or on one header.
//!
//! Config keys:
//! - `pattern` (required): a regular expression (Rust `regex` syntax),
//!   matched against raw bytes, so non-UTF-8 values are matched too.
//! - `field` (default `value`): `value`, `key`, or `header:<name>` (matches if
//!   any header of that name matches).
//! - `mode` (default `drop`): `drop` drops matching events and keeps the rest;
//!   `keep` keeps matching events and drops the rest.
//!
//! An event without the field (a tombstone, no key, no such header) does not
//! match.
//!
//! It reads its batch in columns: a filter
//! reads one field of each event and passes it on unchanged, so what it
//! costs is mostly the crossing, which columns make several times cheaper.

wit_bindgen::generate!({ world: "interceptor", path: "../../../wit" });

use exports::flumen::pipeline::interception::{Columns, Guest, Source, Verdicts};
use flumen::pipeline::log::{log, Level};
use flumen_guest_common::answer::{Actions, DROP};
use flumen_guest_common::columns::EventRef;
use flumen_guest_common::Config;
use regex::bytes::Regex;
use std::cell::RefCell;

enum Field {
    Value,
    Key,
    Header(String),
}

struct Filter {
    pattern: Regex,
    field: Field,
    keep_matching: bool,
}

impl Filter {
    fn matches(&self, e: &EventRef<'_>) -> bool {
        match &self.field {
            Field::Value => e.value.is_some_and(|v| self.pattern.is_match(v)),
            Field::Key => e.key.is_some_and(|k| self.pattern.is_match(k)),
            Field::Header(name) => e
                .headers()
                .any(|(n, v)| n == name && self.pattern.is_match(v)),
        }
    }
}

thread_local! {
    static FILTER: RefCell<Option<Filter>> = const { RefCell::new(None) };
}

struct FilterInterceptor;

impl Guest for FilterInterceptor {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::new(config, &["pattern", "field", "mode"])?;
        let source = config.required("pattern")?;
        let pattern = Regex::new(source)
            .map_err(|e| format!("config key `pattern` is not a valid regex: {e}"))?;
        let field = match config.get("field").unwrap_or("value") {
            "value" => Field::Value,
            "key" => Field::Key,
            other => match other.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Field::Header(name.to_owned()),
                _ => {
                    return Err(format!(
                    "config key `field` must be `value`, `key` or `header:<name>`, got `{other}`"
                ))
                }
            },
        };
        let keep_matching = config.one_of("mode", &["drop", "keep"])? == "keep";
        log(
            Level::Info,
            &format!(
                "{} events matching /{source}/",
                if keep_matching { "keeping" } else { "dropping" }
            ),
        );
        FILTER.with(|f| {
            *f.borrow_mut() = Some(Filter {
                pattern,
                field,
                keep_matching,
            })
        });
        Ok(())
    }

    fn process(_source: Source, batch: Columns) -> Result<Verdicts, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        FILTER.with(|f| {
            let filter = f.borrow();
            let filter = filter.as_ref().ok_or("process called before init")?;
            let mut actions = Actions::new(batch.len());
            for (i, e) in batch.iter().enumerate() {
                if filter.matches(&e) != filter.keep_matching {
                    actions.set(i, DROP);
                }
            }
            Ok(Verdicts {
                actions: actions.into_bytes(),
                replacements: Vec::new(),
                routes: Vec::new(),
            })
        })
    }
}

export!(FilterInterceptor);

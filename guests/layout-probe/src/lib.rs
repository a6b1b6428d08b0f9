//! The other side of `host/benches/batch_layout.rs`: the same two bodies (do
//! nothing; drop what matches `level=debug`, as the filter guest does) behind
//! each batch layout of `host/benches/layout/probe.wit`, so that the
//! benchmark measures what each layout costs to cross into a guest.

wit_bindgen::generate!({ world: "probe", path: "../../host/benches/layout" });

use exports::flumen::layout_probe::calls::{Columns, Event, Flat, Guest};
use flumen::layout_probe::lazy::Batch;
use regex::bytes::Regex;
use std::sync::OnceLock;

fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new("level=debug").expect("a valid pattern"))
}

/// Kept unless the value matches.
fn keep(value: Option<&[u8]>) -> bool {
    !value.is_some_and(|v| pattern().is_match(v))
}

fn span(data: &[u8], start: u32, len: u32) -> Option<&[u8]> {
    data.get(start as usize..start as usize + len as usize)
}

struct Probe;

impl Guest for Probe {
    fn records_null(batch: Vec<Event>) -> Vec<bool> {
        vec![true; batch.len()]
    }

    fn records_filter(batch: Vec<Event>) -> Vec<bool> {
        batch.iter().map(|e| keep(e.value.as_deref())).collect()
    }

    fn flat_null(batch: Flat) -> Vec<bool> {
        vec![true; batch.events.len()]
    }

    fn flat_filter(batch: Flat) -> Vec<bool> {
        batch
            .events
            .iter()
            .map(|e| keep(e.value.and_then(|s| span(&batch.data, s.start, s.len))))
            .collect()
    }

    fn columns_null(batch: Columns) -> Vec<bool> {
        vec![true; batch.offsets.len()]
    }

    fn columns_filter(batch: Columns) -> Vec<bool> {
        let mut start = 0;
        batch
            .value_ends
            .iter()
            .map(|&end| {
                let value = batch.data.get(start as usize..end as usize);
                start = end;
                keep(value)
            })
            .collect()
    }

    fn lazy_null(batch: &Batch) -> Vec<bool> {
        vec![true; batch.len() as usize]
    }

    fn lazy_filter(batch: &Batch) -> Vec<bool> {
        (0..batch.len())
            .map(|i| keep(batch.value(i).as_deref()))
            .collect()
    }
}

export!(Probe);

//! What the shape of a batch costs at the crossing into a guest: the same
//! 1000-byte events handed over in four layouts (`benches/layout/probe.wit`),
//! to a guest that does nothing and to one that runs the benchmark's filter.
//!
//! `cargo bench -p flumen --bench batch_layout` (build the guests first with
//! `guests/build.sh rust`). The layouts:
//! - `records`: the record worlds' `list<event>`, one record per event with
//!   its own lists;
//! - `flat`: one byte buffer for the batch plus a small record per event;
//! - `columns`: lists of plain numbers plus one byte buffer (what the
//!   columnar worlds of contract 0.2.2 adopted, with keys and headers too);
//! - `lazy`: the batch stays on the host; the guest calls for each value.
//!
//! The batch is built once, outside the timed calls: the consumer would
//! build any of these from librdkafka's messages with the one copy it makes
//! today (`build/*` times that copy for `records` and `flat`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The probe's bindings, in a module of their own: their root module is
/// named `flumen`, like this crate.
mod probe {
    wasmtime::component::bindgen!({ path: "benches/layout", world: "probe" });
}

use probe::exports::flumen::layout_probe::calls::{Columns, Event, Flat, FlatEvent, Span};
use probe::flumen::layout_probe::lazy::{Batch, Host, HostBatch};
use probe::Probe;

const BATCH_SIZES: [usize; 2] = [100, 1000];
const VALUE_BYTES: usize = 1000;

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The values the `lazy` layout's batch hands out.
    values: Vec<Vec<u8>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for State {}

impl HostBatch for State {
    fn len(&mut self, _: Resource<Batch>) -> u32 {
        self.values.len() as u32
    }

    fn offset(&mut self, _: Resource<Batch>, i: u32) -> i64 {
        i64::from(i)
    }

    fn value(&mut self, _: Resource<Batch>, i: u32) -> Option<Vec<u8>> {
        self.values.get(i as usize).cloned()
    }

    fn drop(&mut self, _: Resource<Batch>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// The benchmark's values: one in ten matches the filter.
fn values(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let level = if i % 10 == 0 { "debug" } else { "info" };
            let mut value = format!("level={level} id={i} ").into_bytes();
            value.resize(VALUE_BYTES, b'x');
            value
        })
        .collect()
}

fn records(values: &[Vec<u8>]) -> Vec<Event> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Event {
            offset: i as i64,
            timestamp: Some(1_700_000_000_000),
            key: None,
            value: Some(v.clone()),
            headers: Vec::new(),
        })
        .collect()
}

fn flat(values: &[Vec<u8>]) -> Flat {
    let mut data = Vec::with_capacity(values.iter().map(Vec::len).sum());
    let events = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let start = data.len() as u32;
            data.extend_from_slice(v);
            FlatEvent {
                offset: i as i64,
                timestamp: Some(1_700_000_000_000),
                key: None,
                value: Some(Span {
                    start,
                    len: v.len() as u32,
                }),
                headers: Span { start: 0, len: 0 },
            }
        })
        .collect();
    Flat {
        data,
        events,
        headers: Vec::new(),
    }
}

fn columns(values: &[Vec<u8>]) -> Columns {
    let mut data = Vec::with_capacity(values.iter().map(Vec::len).sum());
    let value_ends = values
        .iter()
        .map(|v| {
            data.extend_from_slice(v);
            data.len() as u32
        })
        .collect();
    Columns {
        offsets: (0..values.len() as i64).collect(),
        timestamps: vec![1_700_000_000_000; values.len()],
        data,
        value_ends,
    }
}

fn batch_layout(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/target/wasm32-wasip2/release/layout_probe.wasm");
    assert!(
        path.exists(),
        "{} is missing: run guests/build.sh rust first",
        path.display()
    );
    let engine = Engine::new(&Config::new()).expect("engine");
    let component = Component::from_file(&engine, &path).expect("probe component");
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    Probe::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).expect("lazy batch");
    let mut store = Store::new(
        &engine,
        State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            values: Vec::new(),
        },
    );
    let probe = Probe::instantiate(&mut store, &component, &linker).expect("instance");
    let calls = probe.flumen_layout_probe_calls();
    for n in BATCH_SIZES {
        let vals = values(n);
        let (recs, fl, cols) = (records(&vals), flat(&vals), columns(&vals));
        store.data_mut().values = vals.clone();
        let mut group = c.benchmark_group(format!("layout-{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("build/records", n), |b| {
            b.iter(|| records(black_box(&vals)))
        });
        group.bench_function(BenchmarkId::new("build/flat", n), |b| {
            b.iter(|| flat(black_box(&vals)))
        });
        // Every call must answer one verdict per event, and the filter
        // must drop exactly the tenth that matches: a layout that loses
        // or misreads events would otherwise look fast.
        let check = |kept: Vec<bool>, filtered: bool| {
            assert_eq!(kept.len(), n);
            let dropped = kept.iter().filter(|k| !**k).count();
            assert_eq!(dropped, if filtered { n.div_ceil(10) } else { 0 });
        };
        macro_rules! case {
            ($name:literal, $filtered:expr, $call:expr) => {
                group.bench_function(BenchmarkId::new($name, n), |b| {
                    b.iter(|| {
                        let kept = $call.expect("call");
                        check(kept, $filtered)
                    })
                });
            };
        }
        case!(
            "records/null",
            false,
            calls.call_records_null(&mut store, &recs)
        );
        case!(
            "records/filter",
            true,
            calls.call_records_filter(&mut store, &recs)
        );
        case!("flat/null", false, calls.call_flat_null(&mut store, &fl));
        case!("flat/filter", true, calls.call_flat_filter(&mut store, &fl));
        case!(
            "columns/null",
            false,
            calls.call_columns_null(&mut store, &cols)
        );
        case!(
            "columns/filter",
            true,
            calls.call_columns_filter(&mut store, &cols)
        );
        case!(
            "lazy/null",
            false,
            calls.call_lazy_null(&mut store, Resource::new_borrow(0))
        );
        case!(
            "lazy/filter",
            true,
            calls.call_lazy_filter(&mut store, Resource::new_borrow(0))
        );
        group.finish();
    }
}

criterion_group!(benches, batch_layout);
criterion_main!(benches);

//! The cost of one guest call, by batch size: how much of a batch's time is
//! crossing into the sandbox (lowering the events into the guest's memory,
//! lifting the verdicts back) rather than the guest's own work.
//!
//! `cargo bench -p flumen --bench guest_call` (build the guests first with
//! `guests/build.sh`). Each case is one call of a real component built from
//! `guests/`, on a live instance, with 1000-byte events:
//! - `null-sink/deliver`: the sink that does nothing, so its time is the
//!   crossing alone;
//! - `filter/process`: the regex filter interceptor of the benchmark, which
//!   reads every value.
//!
//! `host-copy` is the baseline: copying the same batch on the host, the least
//! any design that hands events to a guest has to do.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flumen::config::Config;
use flumen::contract::{Batch, Event, Source};
use flumen::runtime::{GuestTag, InterceptorGuest, Runtime, SinkGuest, Slot};
use std::hint::black_box;
use std::path::{Path, PathBuf};

const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];
const VALUE_BYTES: usize = 1000;

fn guest(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run guests/build.sh first",
        p.display()
    );
    p
}

/// A batch like the benchmark's: one event in ten matches the filter.
fn batch(n: usize) -> Batch {
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let level = if i % 10 == 0 { "debug" } else { "info" };
            let mut value = format!("level={level} id={i} ").into_bytes();
            value.resize(VALUE_BYTES, b'x');
            Event {
                offset: i as i64,
                timestamp: Some(1_700_000_000_000),
                key: None,
                value: Some(value),
                headers: Vec::new(),
            }
        })
        .collect();
    Batch::from_events(&events).expect("a small batch")
}

/// The benchmark's pipeline: the regex filter and the null sink.
fn config() -> Config {
    config_with(&guest("filter"), r#"{ pattern = "level=debug" }"#)
}

/// A pipeline of one interceptor, `interceptor` with `settings` (an inline
/// TOML table), and the null sink.
fn config_with(interceptor: &Path, settings: &str) -> Config {
    let toml = format!(
        r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        [[pipeline]]
        name = "bench"
        topics = ["t"]
        group_id = "g"
        [[pipeline.interceptor]]
        name = "filter"
        component = "{filter}"
        config = {settings}
        [[pipeline.sink]]
        name = "null"
        component = "{null}"
        "#,
        filter = interceptor.display(),
        null = guest("null_sink").display(),
    );
    Config::parse(&toml, Path::new(".")).expect("bench config")
}

fn tag(name: &str) -> GuestTag {
    GuestTag {
        component: name.into(),
        pipeline: "bench".into(),
        partition: None,
    }
}

fn guest_call(c: &mut Criterion) {
    let config = config();
    let runtime = Runtime::for_config(&config).expect("runtime");
    let pipeline = &config.pipelines[0];
    let mut sink = SinkGuest::new(
        Slot::new(runtime.load(&pipeline.sinks[0]).expect("null sink")),
        tag("null"),
    );
    let mut filter = InterceptorGuest::new(
        Slot::new(runtime.load(&pipeline.interceptors[0]).expect("filter")),
        tag("filter"),
    );
    let source = Source {
        topic: "bench-1000".into(),
        partition: 0,
    };
    for n in BATCH_SIZES {
        let events = batch(n);
        let mut group = c.benchmark_group(format!("batch-{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("host-copy", n), |b| {
            b.iter(|| black_box(black_box(&events).clone()))
        });
        group.bench_function(BenchmarkId::new("null-sink/deliver", n), |b| {
            b.iter(|| sink.deliver(&source, black_box(&events)).expect("deliver"))
        });
        group.bench_function(BenchmarkId::new("filter/process", n), |b| {
            b.iter(|| {
                filter
                    .process(&source, black_box(&events))
                    .expect("process")
            })
        });
        group.finish();
    }
}

/// What a fresh instance costs: a partition's first batch, the call after
/// a trap, and every `limits.max_calls_per_instance` calls pay it once.
/// Instantiation and the guest's `init`, for the filter, the null sink and,
/// when built (`guests/build.sh python`), the Python header filter.
fn instantiate(c: &mut Criterion) {
    let config = config();
    let runtime = Runtime::for_config(&config).expect("runtime");
    let pipeline = &config.pipelines[0];
    let null = Slot::new(runtime.load(&pipeline.sinks[0]).expect("null sink"));
    let filter = Slot::new(runtime.load(&pipeline.interceptors[0]).expect("filter"));
    let mut group = c.benchmark_group("instantiate");
    group.bench_function("null-sink", |b| {
        b.iter(|| {
            let mut g = SinkGuest::new(null.clone(), tag("null"));
            g.ensure_live().expect("instantiate");
            g
        })
    });
    group.bench_function("filter", |b| {
        b.iter(|| {
            let mut g = InterceptorGuest::new(filter.clone(), tag("filter"));
            g.ensure_live().expect("instantiate");
            g
        })
    });
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/target/python/drop_header.wasm");
    if python.exists() {
        let config = config_with(&python, r#"{ header = "level", value = "debug" }"#);
        let runtime = Runtime::for_config(&config).expect("runtime");
        let slot = Slot::new(
            runtime
                .load(&config.pipelines[0].interceptors[0])
                .expect("python filter"),
        );
        group.bench_function("python-filter", |b| {
            b.iter(|| {
                let mut g = InterceptorGuest::new(slot.clone(), tag("python"));
                g.ensure_live().expect("instantiate");
                g
            })
        });
    }
    group.finish();
}

criterion_group!(benches, guest_call, instantiate);
criterion_main!(benches);

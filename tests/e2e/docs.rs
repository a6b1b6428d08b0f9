//! The docs against what they describe: every metric `docs/operations.md`
//! lists is served by `/metrics` with the labels it gives (and nothing is
//! served that it does not list), and `docs/layout.md` names every file of
//! `host/src` and no file that is not there.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The metric table of `docs/operations.md`: name → label names. A row's
/// first cell lists names; a name starting with `_` shares the row's first
/// name's first two words (`flumen_events_consumed_total`,
/// `_dropped_total` is `flumen_events_dropped_total`).
fn documented_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let page = std::fs::read_to_string(repo().join("docs/operations.md")).expect("operations.md");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut metrics = BTreeMap::new();
    for row in page.lines().filter(|l| l.starts_with("| `flumen_")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(cells.len() >= 3, "a metric row without labels: {row}");
        let names = ticked(cells[0]);
        let labels: BTreeSet<String> = ticked(cells[1]).into_iter().collect();
        let first = names[0].clone();
        let prefix: String = first.split('_').take(2).collect::<Vec<_>>().join("_");
        for name in names {
            let name = match name.strip_prefix('_') {
                Some(rest) => format!("{prefix}_{rest}"),
                None => name,
            };
            metrics.insert(name, labels.clone());
        }
    }
    assert!(
        metrics.len() > 20,
        "the metric table was not found: {metrics:?}"
    );
    metrics
}

/// What `/metrics` serves: sample name → the label-name sets it is served
/// with. A histogram is listed by its name (its `_count` samples' labels).
fn served_metrics(text: &str) -> BTreeMap<String, BTreeSet<BTreeSet<String>>> {
    let histograms: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .collect();
    let mut served: BTreeMap<String, BTreeSet<BTreeSet<String>>> = BTreeMap::new();
    for sample in flumen::cli::top::parse(text) {
        let name = match sample.name.strip_suffix("_count") {
            Some(h) if histograms.contains(h) => h.to_owned(),
            _ if histograms.iter().any(|h| sample.name.starts_with(h)) => continue,
            _ => sample.name.clone(),
        };
        served
            .entry(name)
            .or_default()
            .insert(sample.labels.keys().cloned().collect());
    }
    served
}

/// A run that makes every documented metric appear, in two pipelines: `e2e`
/// (a filter, a file sink, a Kafka sink, one partition stopped at a record
/// batch that cannot be decoded) and `flood` (a sink over its log budget);
/// then a reload that swaps a component.
#[test]
fn every_metric_in_the_operations_page_is_served_with_its_labels() {
    let broker = Broker::mock();
    let bootstrap = broker.bootstrap();
    for (topic, partitions) in [("docs-in", 2), ("docs-out", 2), ("docs-flood", 1)] {
        broker.create_topic(topic, partitions);
    }
    let produced = produce(&bootstrap, "docs-in", 2, 400, |_| false);
    produce_raw_batch(&bootstrap, "docs-in", 0, 4, 5, b"not zstd");
    produce(&bootstrap, "docs-flood", 1, 10, |_| false);

    let work = Workdir::new();
    let admin = free_port();
    let file_sink_copy = work.path("file_sink.wasm");
    std::fs::copy(guest("file_sink"), &file_sink_copy).expect("copy the file sink");
    let flood = format!(
        r#"
[[pipeline.sink]]
name = "copy"
component = "{kafka_sink}"
config = {{ topic = "docs-out", partition = "same" }}
kafka_produce = ["docs-out"]

[[pipeline]]
name = "flood"
topics = ["docs-flood"]
group_id = "docs-flood"
[[pipeline.sink]]
name = "flooder"
component = "{escape}"
config = {{ attempt = "log-flood", target = "deliver" }}
"#,
        kafka_sink = guest("kafka_sink").display(),
        escape = guest("escape").display(),
    );
    let config = work.config(
        &bootstrap,
        "docs-in",
        "docs",
        format!(
            "{}{}{flood}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[reload]\nwatch = false\n",
            drop_debug(),
            file_sink_at("a", &file_sink_copy, ", sync = false"),
        ),
    );
    let mut flumen = Flumen::run(&config, &work.path("flumen.log"));
    // Partition 1 is read to its end; partition 0 up to the bad batch.
    let end1 = produced.end[&1];
    wait_committed(
        &mut flumen,
        &bootstrap,
        "docs",
        "docs-in",
        2,
        Duration::from_secs(60),
        |c| c.get(&0) == Some(&produced.end[&0]) && c.get(&1) == Some(&end1),
    );

    // A new version of the file sink (a custom section appended), swapped
    // in by a reload.
    let mut bytes = std::fs::read(&file_sink_copy).expect("read component");
    bytes.extend_from_slice(&[0, 5, 4]);
    bytes.extend_from_slice(b"docs");
    std::fs::write(&file_sink_copy, bytes).expect("write component");
    let (status, body) = http(admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");

    let documented = documented_metrics();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (text, served) = loop {
        let (_, text) = http(admin, "GET", "/metrics");
        let served = served_metrics(&text);
        let missing: Vec<&String> = documented
            .keys()
            .filter(|name| !served.contains_key(*name))
            .collect();
        if missing.is_empty() {
            break (text, served);
        }
        assert!(
            Instant::now() < deadline,
            "documented in docs/operations.md but not served: {missing:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for (name, labels) in &documented {
        assert!(
            served[name].contains(labels),
            "docs/operations.md gives {name} the labels {labels:?}; /metrics serves it with \
             {:?}\n{text}",
            served[name]
        );
    }
    let undocumented: Vec<&String> = served
        .keys()
        .filter(|name| !documented.contains_key(*name))
        .collect();
    assert!(
        undocumented.is_empty(),
        "served but not in docs/operations.md's table: {undocumented:?}"
    );
    assert!(flumen.terminate().success());
}

/// The file names `docs/layout.md` gives under `## host/src`, with the
/// folder each is listed in. A file is named at the start of its line
/// (`  mod.rs  …`, or `name.rs, other.rs   …`) or, in a folder's own line,
/// in its description (`config/  the TOML file: mod.rs (…), kafka.rs, …`).
fn layout_names() -> BTreeSet<String> {
    let page = std::fs::read_to_string(repo().join("docs/layout.md")).expect("layout.md");
    let section = page
        .split("## host/src")
        .nth(1)
        .and_then(|s| s.split("```text").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a text block under ## host/src in docs/layout.md");
    section
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/'))
        .filter(|w| w.ends_with(".rs") || (w.ends_with('/') && w.len() > 1))
        .map(|w| w.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn the_layout_page_names_every_file_of_host_src() {
    let named = layout_names();
    let root = repo().join("host/src");
    let mut on_disk = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read host/src") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 name")
                .to_owned();
            if path.is_dir() {
                stack.push(path);
                on_disk.insert(name);
            } else if name.ends_with(".rs") && path.parent() != Some(root.join("bin").as_path()) {
                on_disk.insert(name);
            }
        }
    }
    // The crate's roots are the crate, not a module the page describes.
    for root_file in ["lib.rs", "main.rs", "bin"] {
        on_disk.remove(root_file);
    }
    let missing: Vec<&String> = on_disk.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "docs/layout.md does not name these files or folders of host/src: {missing:?}"
    );
    let stale: Vec<&String> = named.difference(&on_disk).collect();
    assert!(
        stale.is_empty(),
        "docs/layout.md names files or folders host/src does not have: {stale:?}"
    );
}

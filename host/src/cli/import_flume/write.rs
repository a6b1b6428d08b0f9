//! Writing the converted config. Everything goes through `toml_edit`, so
//! that the output parses whatever a Flume value holds (quotes, newlines,
//! `${…}`); a value that cannot be carried over (a number that is not one)
//! becomes a `CHANGE-ME` comment instead of broken TOML.

use std::collections::BTreeMap;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// One guest table: `[[pipeline.interceptor]]` or `[[pipeline.sink]]`.
#[derive(Clone, Debug)]
pub struct GuestTable {
    /// `interceptor` or `sink`.
    pub section: &'static str,
    /// The component's name in the pipeline.
    pub name: String,
    /// The library component's file name, without `.wasm`.
    pub component: String,
    /// Its `config`, all strings (the guests parse their values).
    pub config: Vec<(String, String)>,
    /// Its other keys: grants, limits, batching.
    pub extra: Vec<(&'static str, Value)>,
    /// A comment written above the table.
    pub note: Option<String>,
}

impl GuestTable {
    /// A table with `config` and nothing else.
    pub fn new(section: &'static str, name: &str, component: &str) -> Self {
        Self {
            section,
            name: name.to_owned(),
            component: component.to_owned(),
            config: Vec::new(),
            extra: Vec::new(),
            note: None,
        }
    }

    /// The table, with components found under `guests`.
    fn to_table(&self, guests: &str) -> Table {
        let mut t = Table::new();
        if let Some(note) = &self.note {
            t.decor_mut().set_prefix(format!("\n{}", comment(note)));
        }
        t["name"] = toml_edit::value(&self.name);
        t["component"] = toml_edit::value(format!("{guests}/{}.wasm", self.component));
        if !self.config.is_empty() {
            let mut config = InlineTable::new();
            for (k, v) in &self.config {
                config.insert(k, v.as_str().into());
            }
            t["config"] = toml_edit::value(config);
        }
        for (k, v) in &self.extra {
            t[*k] = Item::Value(v.clone());
        }
        t
    }
}

/// A TOML array of strings.
pub fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(items.into_iter().collect::<Array>())
}

/// An inline table of integers, such as `batch = { max_events = 10 }`.
pub fn integers(pairs: &[(&str, i64)]) -> Value {
    let mut t = InlineTable::new();
    for (k, v) in pairs {
        t.insert(*k, (*v).into());
    }
    Value::InlineTable(t)
}

/// `text` as TOML comment lines, each ending with a newline. A line break
/// inside `text` starts a new comment line rather than ending the comment.
pub fn comment(text: &str) -> String {
    text.lines().map(|l| format!("# {l}\n")).collect()
}

/// One pipeline of the converted config.
pub struct PipelineTable {
    table: Table,
    interceptors: ArrayOfTables,
    sinks: ArrayOfTables,
}

impl PipelineTable {
    /// A pipeline reading `topics` as `group`.
    pub fn new(name: &str, topics: &[String], group: &str) -> Self {
        let mut table = Table::new();
        table["name"] = toml_edit::value(name);
        table["topics"] = toml_edit::value(strings(topics.iter().map(String::as_str)));
        table["group_id"] = toml_edit::value(group);
        Self {
            table,
            interceptors: ArrayOfTables::new(),
            sinks: ArrayOfTables::new(),
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: &str, value: Value) {
        self.table[key] = Item::Value(value);
    }

    /// Adds a comment above the pipeline's header.
    pub fn note(&mut self, text: &str) {
        let before = self
            .table
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("\n")
            .to_owned();
        self.table
            .decor_mut()
            .set_prefix(format!("{before}{}", comment(text)));
    }

    /// Adds a guest, after the others of its section.
    pub fn add(&mut self, guest: &GuestTable, guests: &str) {
        let table = guest.to_table(guests);
        match guest.section {
            "interceptor" => self.interceptors.push(table),
            _ => self.sinks.push(table),
        }
    }

    /// Whether it has a sink.
    pub fn has_sink(&self) -> bool {
        !self.sinks.is_empty()
    }
}

/// The whole config: `[kafka]` with `servers` and `options`, then the
/// pipelines, under `header` (comment lines).
pub fn document(
    header: &str,
    servers: &str,
    options: &BTreeMap<&str, &str>,
    pipelines: Vec<PipelineTable>,
) -> String {
    let mut doc = DocumentMut::new();
    let mut kafka = Table::new();
    kafka["bootstrap_servers"] = toml_edit::value(servers);
    if !options.is_empty() {
        let mut t = Table::new();
        for (k, v) in options {
            t[*k] = toml_edit::value(*v);
        }
        kafka["options"] = Item::Table(t);
    }
    doc["kafka"] = Item::Table(kafka);
    let mut all = ArrayOfTables::new();
    for p in pipelines {
        let PipelineTable {
            mut table,
            interceptors,
            sinks,
        } = p;
        if table.decor().prefix().is_none() {
            table.decor_mut().set_prefix("\n");
        }
        if !interceptors.is_empty() {
            table["interceptor"] = Item::ArrayOfTables(interceptors);
        }
        if !sinks.is_empty() {
            table["sink"] = Item::ArrayOfTables(sinks);
        }
        all.push(table);
    }
    doc["pipeline"] = Item::ArrayOfTables(all);
    format!("{}\n{doc}", comment(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_strings_and_the_output_parses() {
        let mut p = PipelineTable::new("c\"1", &["a\nb".to_owned()], "${GROUP}");
        p.note("batchSize = ${BATCH}\nis not a number");
        let mut g = GuestTable::new("sink", "s]", "http_sink");
        g.config
            .push(("url".into(), "http://x/\"quoted\"\\".into()));
        g.extra.push(("http_allow", strings(["x"])));
        g.extra.push(("batch", integers(&[("max_events", 10)])));
        g.note = Some("line one\nline two".into());
        p.add(&g, "/g");
        let mut options = BTreeMap::new();
        options.insert("a.b", "${X}");
        let out = document("header\nsecond line", "k:9092", &options, vec![p]);
        let parsed: toml::Value = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let pipeline = &parsed["pipeline"][0];
        assert_eq!(pipeline["name"].as_str(), Some("c\"1"));
        assert_eq!(pipeline["topics"][0].as_str(), Some("a\nb"));
        assert_eq!(pipeline["group_id"].as_str(), Some("${GROUP}"));
        let sink = &pipeline["sink"][0];
        assert_eq!(sink["component"].as_str(), Some("/g/http_sink.wasm"));
        assert_eq!(
            sink["config"]["url"].as_str(),
            Some("http://x/\"quoted\"\\")
        );
        assert_eq!(sink["batch"]["max_events"].as_integer(), Some(10));
        assert_eq!(parsed["kafka"]["options"]["a.b"].as_str(), Some("${X}"));
        assert!(out.starts_with("# header\n# second line\n"), "{out}");
        assert!(
            out.contains("# batchSize = ${BATCH}\n# is not a number\n[[pipeline]]"),
            "{out}"
        );
    }
}

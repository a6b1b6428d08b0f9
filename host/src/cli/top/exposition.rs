//! Reading the samples of `/metrics` (the OpenMetrics text flumen serves)
//! for `flumen top` and the tests.
//!
//! Label values are read as the format quotes them: a value may hold a
//! comma, a brace, an equals sign or an escaped quote, backslash or line
//! break (a pipeline named `eu,orders` is one label value). No crate in
//! the lock reads the format, and prometheus-parse 0.2.5 splits label
//! values at commas, the bug this replaces.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as exposed (with `_total`, `_sum`, … suffixes).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// Whether it is a sample of metric `name` whose labels include every
    /// `(key, value)` of `labels`.
    pub fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && labels
                .iter()
                .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// The samples of `text`, in order; comments (`# HELP`, `# TYPE`, `# EOF`)
/// and lines that are not a sample are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(sample)
        .collect()
}

/// One line `name{label="value",…} value [timestamp]`.
fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once('=')?;
            let (value, after) = quoted(after.strip_prefix('"')?)?;
            labels.insert(key.trim().to_owned(), value);
            rest = after;
        }
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().ok()?,
    })
}

/// A label value up to its closing quote, unescaped, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let s = parse(
            "# HELP x y\nflumen_component_swaps_total 3\nflumen_consumer_lag{pipeline=\"p\",topic=\"t\",partition=\"0\"} 12\n# EOF\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "flumen_component_swaps_total");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].labels.get("partition").map(String::as_str), Some("0"));
        assert_eq!(s[1].value, 12.0);
    }

    #[test]
    fn label_values_keep_commas_braces_and_escapes() {
        let s = parse(
            "flumen_events_consumed_total{pipeline=\"eu,orders\",sink=\"a}b=c\"} 7\n\
             flumen_events_consumed_total{pipeline=\"say \\\"hi\\\"\",sink=\"back\\\\slash\\nline\"} 8 1700000000\n",
        );
        assert_eq!(s.len(), 2, "{s:?}");
        let label = |i: usize, k: &str| s[i].labels.get(k).cloned();
        assert_eq!(label(0, "pipeline").as_deref(), Some("eu,orders"));
        assert_eq!(label(0, "sink").as_deref(), Some("a}b=c"));
        assert_eq!(s[0].value, 7.0);
        assert_eq!(label(1, "pipeline").as_deref(), Some("say \"hi\""));
        assert_eq!(label(1, "sink").as_deref(), Some("back\\slash\nline"));
        assert_eq!(s[1].value, 8.0);
    }

    #[test]
    fn a_broken_line_is_skipped() {
        assert!(parse("x{a=\"unterminated} 1\nx{a=b} 2\nx 3 4\n")
            .iter()
            .all(|s| s.name == "x" && s.value == 3.0));
    }
}

//! Reading a Flume agent's properties: Java's properties syntax, one
//! agent's keys, and Flume's names for its component types.

use std::collections::BTreeMap;

/// Reads Java properties: `key = value`, `key: value` or `key value`,
/// `#`/`!` comments, `\` line continuations and escapes.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        insert_entry(&mut out, &std::mem::take(&mut logical));
    }
    // A continuation on the last line ends with the file.
    if !logical.is_empty() {
        insert_entry(&mut out, &logical);
    }
    out
}

/// Adds one logical line's `key`/`value`.
fn insert_entry(out: &mut BTreeMap<String, String>, logical: &str) {
    let (key, value) = split_entry(logical);
    out.insert(unescape(key), unescape(value.trim_start()));
}

/// Splits at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ':' => return (line[..i].trim_end(), &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim_end().to_owned()
}

/// The properties of one agent, with the `agent.` prefix removed.
pub struct Agent<'a> {
    /// Its properties, `agent.` removed.
    pub props: BTreeMap<&'a str, &'a str>,
}

impl<'a> Agent<'a> {
    /// A property, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.props.get(key).copied().filter(|v| !v.is_empty())
    }

    /// A space-separated list.
    pub fn list(&self, key: &str) -> Vec<&'a str> {
        self.get(key)
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// Every `prefix.<rest>` property, as `(rest, value)`.
    pub fn under(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let prefix = format!("{prefix}.");
        self.props
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, *v)))
            .collect()
    }
}

/// Flume's short names and class names of the same component.
pub fn kind_of(type_name: &str) -> &str {
    let t = type_name.trim();
    let short = t.rsplit('.').next().unwrap_or(t);
    let short = short.trim_end_matches("$Builder");
    match short {
        "KafkaSource" => "kafka",
        "KafkaChannel" => "kafka",
        "TimestampInterceptor" => "timestamp",
        "HostInterceptor" => "host",
        "StaticInterceptor" => "static",
        "RegexFilteringInterceptor" => "regex_filter",
        "RegexExtractorInterceptor" => "regex_extractor",
        "SearchAndReplaceInterceptor" => "search_replace",
        "UUIDInterceptor" => "uuid",
        "NullSink" => "null",
        "LoggerSink" => "logger",
        "RollingFileSink" => "file_roll",
        "HttpSink" => "http",
        "HDFSEventSink" => "hdfs",
        "KafkaSink" => "kafka_sink",
        other => other,
    }
}

/// A boolean property: `true` in any case is true, anything else false.
pub fn bool_prop(v: Option<&str>) -> Option<bool> {
    v.map(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_java_properties() {
        let props = parse_properties(
            "# comment\n! also a comment\n\
             a.b = one\n\
             a.c: two\n\
             a.d three\n\
             a.e = con\\\n    tinued\n\
             a\\ key = sp\\u00e9cial\\tvalue  \n\
             a.f = ends with a backslash\\\\\n\
             a.g =\n",
        );
        assert_eq!(props["a.b"], "one");
        assert_eq!(props["a.c"], "two");
        assert_eq!(props["a.d"], "three");
        assert_eq!(props["a.e"], "continued");
        assert_eq!(props["a key"], "sp\u{e9}cial\tvalue");
        assert_eq!(props["a.f"], "ends with a backslash\\");
        assert_eq!(props["a.g"], "");
        assert_eq!(props.len(), 7);
    }

    #[test]
    fn an_agent_reads_its_lists_and_prefixes() {
        let props: BTreeMap<&str, &str> = [
            ("sources", "s1  s2"),
            ("sources.s1.kafka.consumer.x", "1"),
            ("sources.s1.kafka.consumer.y", "2"),
            ("sources.s2.type", ""),
        ]
        .into();
        let a = Agent { props };
        assert_eq!(a.list("sources"), ["s1", "s2"]);
        assert_eq!(a.get("sources.s2.type"), None, "empty is unset");
        assert_eq!(
            a.under("sources.s1.kafka.consumer"),
            [("x", "1"), ("y", "2")]
        );
    }

    #[test]
    fn short_and_class_names_are_one_kind() {
        assert_eq!(
            kind_of("org.apache.flume.sink.kafka.KafkaSink"),
            "kafka_sink"
        );
        assert_eq!(
            kind_of("org.apache.flume.interceptor.TimestampInterceptor$Builder"),
            "timestamp"
        );
        assert_eq!(kind_of(" hbase "), "hbase");
        assert_eq!(bool_prop(Some(" TRUE ")), Some(true));
        assert_eq!(bool_prop(Some("yes")), Some(false));
    }
}

//! Turns the parser's messages into ones a person can act on: a "did you
//! mean" for a misspelt key, value types in user words rather than Rust's
//! (`u64`), and a one-line explanation when the file is not TOML at all.

/// The known name closest to `unknown`, if one is close enough to be a
/// likely typo (`sesion.timeout.ms` → `session.timeout.ms`).
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).clamp(1, 4);
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The TOML parser's message, with a suggestion for an unknown key and with
/// Rust's type names replaced by what they mean.
pub fn humanize(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, words) in [
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected u16", "expected a whole number ≥ 0"),
        ("expected u8", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        (
            "expected a sequence",
            "expected a list, e.g. [\"a\", \"b\"]",
        ),
        (
            "expected a map",
            "expected a table, e.g. { key = \"value\" }",
        ),
    ] {
        out = out.replace(rust, words);
    }
    if let Some(suggestion) = unknown_field_suggestion(message) {
        out.push_str(&suggestion);
    }
    out
}

/// serde's "unknown field `x`, expected one of `a`, `b`" → "did you mean
/// `a`?" when one of them is close.
fn unknown_field_suggestion(message: &str) -> Option<String> {
    let rest = &message[message.find("unknown field `")? + "unknown field `".len()..];
    let unknown = &rest[..rest.find('`')?];
    let expected = &rest[rest.find("expected ")?..];
    let expected = &expected[..expected.find('\n').unwrap_or(expected.len())];
    let names = expected.split('`').skip(1).step_by(2);
    closest(unknown, names).map(|k| format!("\ndid you mean `{k}`?"))
}

/// A one-line explanation when the file is JSON or YAML instead of TOML.
pub fn not_toml(path: &std::path::Path, text: &str) -> Option<String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let start = text.trim_start();
    let json = ext.as_deref() == Some("json") || start.starts_with('{');
    let yaml = matches!(ext.as_deref(), Some("yaml" | "yml")) || start.starts_with("---");
    let format = if json {
        "JSON"
    } else if yaml {
        "YAML"
    } else {
        return None;
    };
    Some(format!(
        "this looks like {format}, but flumen's config is TOML; see config/example.toml, or \
         `flumen new` for a starting point"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let known = ["session.timeout.ms", "group.id", "batch"];
        assert_eq!(
            closest("sesion.timeout.ms", known),
            Some("session.timeout.ms")
        );
        assert_eq!(closest("bach", known), Some("batch"));
        assert_eq!(closest("compression", known), None);
    }

    #[test]
    fn parser_messages_get_user_words_and_a_suggestion() {
        let m = humanize(
            "invalid type: integer `-1`, expected u64\nunknown field `max_event`, expected one \
             of `max_events`, `max_bytes`",
        );
        assert!(
            m.contains("a whole number ≥ 0") && !m.contains("u64"),
            "{m}"
        );
        assert!(m.ends_with("did you mean `max_events`?"), "{m}");
    }

    #[test]
    fn json_and_yaml_are_named() {
        let p = std::path::Path::new;
        assert!(not_toml(p("a.json"), "").unwrap().contains("JSON"));
        assert!(not_toml(p("a.conf"), " {\"kafka\": 1}")
            .unwrap()
            .contains("JSON"));
        assert!(not_toml(p("a.yml"), "kafka:").unwrap().contains("YAML"));
        assert!(not_toml(p("a.toml"), "[kafka]").is_none());
    }
}

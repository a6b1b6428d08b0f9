//! `${VAR}`, `${VAR:-default}` and `${file:/path}` in the config's string
//! values, so that credentials and per-environment settings (brokers,
//! passwords, certificates) come from the environment or from secret files
//! mounted by the orchestrator, not from the TOML in clear text.
//!
//! Interpolation runs on the parsed TOML tree before the schema is applied,
//! so every string value anywhere in the file takes part, and an error can
//! name the key that holds the placeholder. Keys themselves are never
//! interpolated. `$${` writes a literal `${`.

use super::{invalid, ConfigError};
use std::path::Path;

/// Where placeholder values come from; the environment and the file system
/// in a real run, fixed maps in tests.
pub trait Sources {
    /// The value of an environment variable, if it is set.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of a secret file.
    fn file(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and the real file system.
pub struct Environment;

impl Sources for Environment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Replaces every placeholder in every string value of `value`.
pub fn interpolate(value: &mut toml::Value, sources: &dyn Sources) -> Result<(), ConfigError> {
    walk(value, &mut Vec::new(), sources)
}

fn walk(
    value: &mut toml::Value,
    path: &mut Vec<String>,
    sources: &dyn Sources,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains('$') => {
            *s = expand(s, sources).map_err(|message| invalid(None, key_path(path), message))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, sources)?;
                path.pop();
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                path.push(k.clone());
                walk(v, path, sources)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// `kafka.options."sasl.password"` or `pipeline[0].sink[1].config.url`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.starts_with('[') {
            out.push_str(part);
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        if part.contains('.') {
            out.push_str(&format!("\"{part}\""));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// One string with its placeholders replaced; the error says which
/// placeholder could not be filled and how to fix it.
fn expand(text: &str, sources: &dyn Sources) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| {
                format!(
                    "`${{` without a closing `}}` in {text:?}; write `$${{` for a literal `${{`"
                )
            })?;
            out.push_str(&resolve(&tail[..end], sources)?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(inner: &str, sources: &dyn Sources) -> Result<String, String> {
    if let Some(path) = inner.strip_prefix("file:") {
        let contents = sources.file(Path::new(path)).map_err(|e| {
            format!("cannot read the secret file {path} named by `${{{inner}}}`: {e}")
        })?;
        // Secret files written with `echo` end in a newline that is not
        // part of the secret.
        let trimmed = contents.strip_suffix('\n').unwrap_or(&contents);
        return Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned());
    }
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`${{{inner}}}` is not a placeholder flumen knows; use `${{NAME}}`, \
             `${{NAME:-default}}` or `${{file:/path}}` (NAME of letters, digits and _)"
        ));
    }
    match (sources.var(name), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_owned()),
        (None, None) => Err(format!(
            "the environment variable {name} is not set; set it, or give a default with \
             `${{{name}:-default}}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixed(HashMap<&'static str, &'static str>);

    impl Sources for Fixed {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
        fn file(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path.to_str().unwrap_or_default())
                .map(|v| v.to_string())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn run(text: &str) -> Result<toml::Value, String> {
        let sources = Fixed(HashMap::from([
            ("BROKERS", "k1:9093,k2:9093"),
            ("USER", "alice"),
            ("/run/secrets/pw", "s3cret\n"),
        ]));
        let mut v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        interpolate(&mut v, &sources).map_err(|e| e.to_string())?;
        Ok(v)
    }

    #[test]
    fn variables_defaults_and_files_are_filled() {
        let v = run(r#"
            [kafka]
            bootstrap_servers = "${BROKERS}"
            options = { "sasl.username" = "${USER}", "sasl.password" = "${file:/run/secrets/pw}",
                        "client.id" = "${CLIENT:-flumen}-${USER}", "literal" = "$${USER} costs $5" }
        "#)
        .unwrap();
        let k = &v["kafka"];
        assert_eq!(k["bootstrap_servers"].as_str(), Some("k1:9093,k2:9093"));
        assert_eq!(k["options"]["sasl.username"].as_str(), Some("alice"));
        assert_eq!(k["options"]["sasl.password"].as_str(), Some("s3cret"));
        assert_eq!(k["options"]["literal"].as_str(), Some("${USER} costs $5"));
        assert_eq!(k["options"]["client.id"].as_str(), Some("flumen-alice"));
    }

    #[test]
    fn an_unset_variable_names_the_key_and_the_fix() {
        let e =
            run("[kafka]\noptions = { \"sasl.password\" = \"${KAFKA_PASSWORD}\" }").unwrap_err();
        assert!(
            e.contains("`kafka.options.\"sasl.password\"`")
                && e.contains("KAFKA_PASSWORD is not set")
                && e.contains(":-default"),
            "{e}"
        );
        let e = run("[[pipeline]]\n[[pipeline.sink]]\nconfig = { url = \"${NOPE}\" }").unwrap_err();
        assert!(e.contains("`pipeline[0].sink[0].config.url`"), "{e}");
    }

    #[test]
    fn missing_files_and_bad_placeholders_are_explained() {
        let e = run("a = \"${file:/nope}\"").unwrap_err();
        assert!(e.contains("cannot read the secret file /nope"), "{e}");
        let e = run("a = \"${not valid}\"").unwrap_err();
        assert!(e.contains("not a placeholder"), "{e}");
        let e = run("a = \"${OPEN\"").unwrap_err();
        assert!(e.contains("without a closing"), "{e}");
    }
}

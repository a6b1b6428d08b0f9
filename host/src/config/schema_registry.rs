//! `[schema_registry]`: where the Confluent Schema Registry is, and how to
//! reach it. One client per process serves every component granted
//! `schema_registry = true` (see [`crate::registry`]).

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// The Schema Registry section.
///
/// ```toml
/// [schema_registry]
/// urls = ["https://registry.internal:8081"]
/// username = "flumen"
/// password = "${file:/run/secrets/registry-password}"
/// ca_file = "/etc/flumen/registry-ca.pem"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URLs of the registry (`http://` or `https://`), tried in order:
    /// a request that cannot reach one goes to the next.
    pub urls: Vec<String>,
    /// HTTP basic authentication: the user (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP basic authentication: the password (with `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token, instead of basic authentication.
    #[serde(default)]
    pub token: Option<String>,
    /// A PEM file of the CA certificates an `https://` registry's
    /// certificate must chain to, for a private CA. Without it, the public
    /// web roots are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one request may take, connecting included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How many schemas the process keeps; the least recently used one
    /// goes first past it.
    #[serde(default = "default_cache_schemas")]
    pub cache_schemas: usize,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_cache_schemas() -> usize {
    1_000
}

impl SchemaRegistryConfig {
    /// The settings for one registry at `url`, without authentication
    /// (what `flumen test --schema-registry` uses), checked.
    pub fn for_url(url: &str) -> Result<Self, ConfigError> {
        let config = Self {
            urls: vec![url.to_owned()],
            username: None,
            password: None,
            token: None,
            ca_file: None,
            timeout_ms: default_timeout_ms(),
            cache_schemas: default_cache_schemas(),
        };
        config.validate()?;
        Ok(config)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, message: String| Err(invalid(Some("schema_registry".into()), key, message));
        if self.urls.is_empty() {
            return bad(
                "urls",
                "at least one URL is required, e.g. [\"http://localhost:8081\"]".into(),
            );
        }
        for (i, url) in self.urls.iter().enumerate() {
            let parsed: Result<http::Uri, _> = url.parse();
            let ok = parsed.as_ref().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
            });
            if !ok {
                return bad(
                    &format!("urls[{i}]"),
                    format!("`{url}` is not an http:// or https:// URL with a host"),
                );
            }
        }
        if self.username.is_some() != self.password.is_some() {
            return bad(
                "username",
                "basic authentication needs both `username` and `password`".into(),
            );
        }
        if self.token.is_some() && self.username.is_some() {
            return bad(
                "token",
                "set either `token` (bearer) or `username` and `password` (basic), not both".into(),
            );
        }
        if !(100..=super::MAX_WAIT_MS).contains(&self.timeout_ms) {
            return bad(
                "timeout_ms",
                format!("{} is out of range; use 100 to 3600000", self.timeout_ms),
            );
        }
        if self.cache_schemas == 0 {
            return bad("cache_schemas", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    use crate::config::tests::MINIMAL as BASE;

    fn parse(section: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}\n{section}"), Path::new("/base")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_relative_ca() {
        let c =
            parse("[schema_registry]\nurls = [\"http://r:8081\"]\nca_file = \"ca.pem\"").unwrap();
        let r = c.schema_registry.unwrap();
        assert_eq!((r.timeout_ms, r.cache_schemas), (10_000, 1_000));
        assert_eq!(r.ca_file.unwrap(), Path::new("/base/ca.pem"));
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("[schema_registry]\nurls = []").unwrap_err();
        assert!(e.contains("schema_registry: `urls`"), "{e}");
        let e = parse("[schema_registry]\nurls = [\"r:8081\"]").unwrap_err();
        assert!(e.contains("`urls[0]`") && e.contains("not an http"), "{e}");
        let e = parse("[schema_registry]\nurls = [\"http://r\"]\nusername = \"u\"").unwrap_err();
        assert!(e.contains("both `username` and `password`"), "{e}");
        let e = parse("[schema_registry]\nurls = [\"http://r\"]\ntoken = \"t\"\nusername = \"u\"\npassword = \"p\"").unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn a_grant_without_a_registry_is_refused() {
        let text = BASE.replace(
            "component = \"s.wasm\"",
            "component = \"s.wasm\"\nschema_registry = true",
        );
        let e = Config::parse(&text, Path::new("/b"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schema_registry") && e.contains("[schema_registry]"),
            "{e}"
        );
    }
}

//! A configured URL split the way `wasi:http` takes it.

/// Where requests go: the scheme and host of a configured URL, and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `true` for `https://`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// The URL's path (at least `/`), query included.
    pub path: String,
}

impl Endpoint {
    /// Parses `http://host[:port]/path` or `https://…`; `key` names the
    /// config key in the error.
    pub fn parse(key: &str, url: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!(
                "config key `{key}` must start with http:// or https://, got `{url}`"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("config key `{key}` has no host: `{url}`"));
        }
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The host without the port, as a signature or a virtual host needs it.
    pub fn host(&self) -> &str {
        match self.authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.authority,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("url", "http://127.0.0.1:8333/a/b?x=1").expect("valid");
        assert_eq!(
            (e.https, e.authority.as_str(), e.path.as_str(), e.host()),
            (false, "127.0.0.1:8333", "/a/b?x=1", "127.0.0.1")
        );
        let e = Endpoint::parse("url", "https://s3.example.com").expect("valid");
        assert_eq!(
            (e.https, e.path.as_str(), e.host()),
            (true, "/", "s3.example.com")
        );
        assert!(Endpoint::parse("endpoint", "ftp://x")
            .unwrap_err()
            .contains("`endpoint` must start with http://"));
        assert!(Endpoint::parse("url", "http:///x").is_err());
    }
}

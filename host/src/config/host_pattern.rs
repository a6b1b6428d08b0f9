//! One entry of a component's `http_allow` grant, parsed when the config
//! is validated and matched against every outgoing request by the sandbox.

/// One entry of a component's `http_allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-case host name or IP; for `*.example.com`, `.example.com`.
    host: String,
    /// `*.` patterns match subdomains only.
    wildcard: bool,
    /// A port, or any port if `None`.
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port` or `*.domain`; the error says why not.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "{text:?} {why}; expected a host like \"api.example.com\", \"127.0.0.1:8080\" \
                 or \"*.example.com\""
            ))
        };
        if text.contains("://") {
            return bad("is a URL, not a host (leave out the scheme and path)");
        }
        // `[::1]:8080` and `[::1]` are IPv6 literals; otherwise the last
        // colon separates the port.
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                match p.parse::<u16>() {
                    Ok(p) => (h, Some(p)),
                    Err(_) => return bad("has a port that is not a number"),
                }
            }
            _ => (text, None),
        };
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        if host.is_empty()
            || host.contains(['/', '*', '@', ' ', '?', '#'])
            || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']')))
        {
            return bad("is not a host name");
        }
        let host = host.to_ascii_lowercase();
        Ok(Self {
            host: if wildcard { format!(".{host}") } else { host },
            wildcard,
            port,
        })
    }

    /// Whether a request to `host:port` is allowed by this entry.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            host.ends_with(&self.host)
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "",
            "http://x.test",
            "x.test:port",
            "*",
            "a/b",
            "user@x.test",
            ":80",
        ] {
            assert!(HostPattern::parse(p).is_err(), "{p:?} accepted");
        }
    }
}

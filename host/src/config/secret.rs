//! Which settings hold credentials, so that their values are shown as
//! `[redacted]` wherever flumen prints settings or errors about them.

/// What a credential's value is shown as.
pub const REDACTED: &str = "[redacted]";

/// Whether a setting named `key` (a librdkafka option, a guest config key or
/// an environment grant) holds a credential: a password, token, secret, private
/// key or JAAS line. Matching by name errs on the side of hiding.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "jaas",
        "credential",
        "private",
    ]
    .iter()
    .any(|word| key.contains(word))
        || key == "ssl.key.pem"
        || key.ends_with("api_key")
        || key.ends_with("apikey")
        || key.ends_with("access_key")
        || key.ends_with("secret_key")
}

/// `value`, or [`REDACTED`] if `key` holds a credential.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised_by_name() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "sasl.jaas.config",
            "AWS_SECRET_ACCESS_KEY",
            "token",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "sasl.username",
            "ssl.ca.location",
            "bootstrap.servers",
            "path",
        ] {
            assert!(!is_secret(key), "{key}");
        }
        assert_eq!(shown("sasl.password", "hunter2"), REDACTED);
        assert_eq!(shown("sasl.username", "alice"), "alice");
    }
}

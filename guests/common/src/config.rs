//! A guest's configuration, as `init` receives it: lookups that name the
//! key in every error, and refusal of keys the guest does not know.

/// A guest's configuration as the host passes it to `init`: `(key, value)`
/// pairs from the guest's TOML table.
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs and refuses any key not in `known`, so that a typo in
    /// the operator's TOML is an error at start-up rather than a silently
    /// ignored setting.
    pub fn new(entries: Vec<(String, String)>, known: &[&str]) -> Result<Self, String> {
        if let Some((key, _)) = entries.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown config key `{key}`; expected one of: {}",
                known.join(", ")
            ));
        }
        Ok(Self { entries })
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming the missing key.
    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("missing required config key `{key}`"))
    }

    /// The unsigned integer value of `key`, or `default` when unset.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                format!("config key `{key}` must be a non-negative integer, got `{v}`")
            }),
        }
    }

    /// The value of `key`, which must be one of `allowed`; the first of
    /// them when unset.
    pub fn one_of<'a>(&self, key: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
        let value = self.get(key).unwrap_or(allowed[0]);
        allowed
            .iter()
            .copied()
            .find(|a| *a == value)
            .ok_or_else(|| {
                let quoted: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                let (last, rest) = quoted.split_last().expect("at least one allowed value");
                let choices = if rest.is_empty() {
                    last.clone()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                format!("config key `{key}` must be {choices}, got `{value}`")
            })
    }

    /// The boolean value of `key`, or `default` when unset.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "config key `{key}` must be true or false, got `{other}`"
            )),
        }
    }
}

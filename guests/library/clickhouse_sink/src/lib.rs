//! The ClickHouse sink: inserts each call's events into a table over
//! ClickHouse's HTTP interface, as one `INSERT INTO table FORMAT
//! JSONEachRow` per call. A row the server refuses is found (ClickHouse
//! names it, `at row N`; otherwise by halving) and only it is rejected,
//! to the sink's failure policy; the other rows are inserted once.
//!
//! Config keys (see docs/sinks/clickhouse.md):
//! - `url` (required): `http://host:8123` (ClickHouse's HTTP port).
//! - `table` (required): `table` or `database.table`.
//! - `value` (default `string`): `string` puts the value, as text, in the
//!   column `value_column` (default `value`); `json` reads the value as a
//!   JSON object and inserts its fields as columns.
//! - `topic_column`, `partition_column`, `offset_column`,
//!   `timestamp_column`, `key_column`: the columns for the Kafka metadata
//!   (by default `topic`, `partition`, `offset`, `timestamp`, `key`); an
//!   empty name leaves that field out. The timestamp is milliseconds since
//!   the epoch (0 without one); an absent key is empty.
//! - `user_env`, `password_env` (default `CLICKHOUSE_USER`,
//!   `CLICKHOUSE_PASSWORD`): the environment variables holding the
//!   credentials, granted by the host with `env_from_host`. Without the
//!   user variable, ClickHouse's `default` user is used.
//! - `timeout_ms` (default 30000).

mod answer;

use answer::Refusal;
use base64::Engine as _;
use flumen::pipeline::log::{log, Level};
use flumen_guest_common::columns::{Batch, EventRef};
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::http::{self, HttpError, Request};
use flumen_guest_common::{Config, Undelivered};
use serde::ser::{SerializeMap, Serializer};

/// The metadata columns, each `None` when left out.
struct Columns5 {
    topic: Option<String>,
    partition: Option<String>,
    offset: Option<String>,
    timestamp: Option<String>,
    key: Option<String>,
}

flumen_guest_common::sink!(ClickHouseSink);

struct ClickHouseSink {
    endpoint: Endpoint,
    table: String,
    path_and_query: String,
    headers: Vec<(String, String)>,
    timeout_ns: u64,
    /// `None`: the value's fields are columns (`value = "json"`).
    value_column: Option<String>,
    meta: Columns5,
    user: String,
    vars: String,
}

/// What one insert attempt series decided for each row.
#[derive(Default)]
struct Outcome {
    failures: Vec<Undelivered>,
    inserted_any: bool,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').count() <= 2
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !p.as_bytes()[0].is_ascii_digit()
        })
}

/// `%XX`-encodes a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl ClickHouseSink {
    fn from_config(config: &Config) -> Result<Self, String> {
        let endpoint = Endpoint::parse("url", config.required("url")?)?;
        let table = config.required("table")?.to_owned();
        if !is_identifier(&table) {
            return Err(format!(
                "config key `table` must be `table` or `database.table` (letters, digits, _), \
                 got `{table}`"
            ));
        }
        let column = |key: &str, default: &str| -> Result<Option<String>, String> {
            match config.get(key).unwrap_or(default) {
                "" => Ok(None),
                c if is_identifier(c) && !c.contains('.') => Ok(Some(c.to_owned())),
                c => Err(format!(
                    "config key `{key}` must be a column name (letters, digits, _), got `{c}`"
                )),
            }
        };
        let value_column = match config.one_of("value", &["string", "json"])? {
            "string" => Some(
                column("value_column", "value")?
                    .ok_or("config key `value_column` cannot be empty with value = \"string\"")?,
            ),
            _ => None,
        };
        let meta = Columns5 {
            topic: column("topic_column", "topic")?,
            partition: column("partition_column", "partition")?,
            offset: column("offset_column", "offset")?,
            timestamp: column("timestamp_column", "timestamp")?,
            key: column("key_column", "key")?,
        };
        let user_var = config.get("user_env").unwrap_or("CLICKHOUSE_USER");
        let password_var = config.get("password_env").unwrap_or("CLICKHOUSE_PASSWORD");
        let mut headers = vec![("content-type".to_owned(), "application/x-ndjson".to_owned())];
        let granted_user = std::env::var(user_var).ok();
        if let Some(u) = &granted_user {
            let password = std::env::var(password_var).unwrap_or_default();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{password}"));
            headers.push(("authorization".into(), format!("Basic {basic}")));
        }
        // Without a granted user, ClickHouse's own default applies.
        let user = granted_user.unwrap_or_else(|| "default".to_owned());
        let base = endpoint.path.trim_end_matches('/');
        let query = format!("INSERT INTO {table} FORMAT JSONEachRow");
        // A decoded event (`schema_decode`) carries every field of its
        // schema; a table that keeps some of them needs ClickHouse to skip
        // the others, which it refuses by default.
        let skip = if config.bool_or("skip_unknown_fields", false)? {
            "&input_format_skip_unknown_fields=1"
        } else {
            ""
        };
        Ok(ClickHouseSink {
            path_and_query: format!("{base}/?query={}{skip}", url_encode(&query)),
            endpoint,
            table,
            headers,
            timeout_ns: config
                .u64_or("timeout_ms", 30_000)?
                .saturating_mul(1_000_000),
            value_column,
            meta,
            user,
            vars: format!("{user_var} and {password_var} (granted with env_from_host)"),
        })
    }

    /// One event as a JSON row, or why it cannot be one.
    fn row(
        &self,
        e: &EventRef<'_>,
        (topic, partition): (&str, i32),
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let text = |what: &str, bytes: &[u8]| -> Result<String, String> {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| format!("the event's {what} is not UTF-8; JSONEachRow carries text"))
        };
        let start = out.len();
        let mut ser = serde_json::Serializer::new(&mut *out);
        let mut map = ser.serialize_map(None).map_err(|e| e.to_string())?;
        let m = &self.meta;
        let res: Result<(), serde_json::Error> = (|| {
            if let Some(c) = &m.topic {
                map.serialize_entry(c, topic)?;
            }
            if let Some(c) = &m.partition {
                map.serialize_entry(c, &partition)?;
            }
            if let Some(c) = &m.offset {
                map.serialize_entry(c, &e.offset)?;
            }
            if let Some(c) = &m.timestamp {
                map.serialize_entry(c, &e.timestamp.unwrap_or(0))?;
            }
            Ok(())
        })();
        res.map_err(|e| e.to_string())?;
        if let Some(c) = &m.key {
            let key = text("key", e.key.unwrap_or_default())?;
            map.serialize_entry(c, &key).map_err(|e| e.to_string())?;
        }
        let value = e.value.unwrap_or_default();
        match &self.value_column {
            Some(c) => {
                let v = text("value", value)?;
                map.serialize_entry(c, &v).map_err(|e| e.to_string())?;
                SerializeMap::end(map).map_err(|e| e.to_string())?;
            }
            None => {
                SerializeMap::end(map).map_err(|e| e.to_string())?;
                // Splice the value's fields in after the metadata.
                let trimmed = value.trim_ascii();
                if !(trimmed.starts_with(b"{") && trimmed.ends_with(b"}")) {
                    out.truncate(start);
                    return Err("the event's value is not a JSON object (value = \"json\")".into());
                }
                if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(trimmed) {
                    out.truncate(start);
                    return Err(format!("the event's value is not valid JSON: {err}"));
                }
                let inner = trimmed[1..trimmed.len() - 1].trim_ascii();
                if !inner.is_empty() {
                    out.pop();
                    if out.len() > start + 1 {
                        out.push(b',');
                    }
                    out.extend_from_slice(inner);
                    out.push(b'}');
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }

    /// Sends the rows `idx` (indices into `rows`) as one insert.
    fn insert(&self, rows: &[Vec<u8>], idx: &[usize]) -> Result<(), Refusal> {
        let mut body = Vec::with_capacity(idx.iter().map(|&i| rows[i].len()).sum());
        for &i in idx {
            body.extend_from_slice(&rows[i]);
        }
        let response = http::send(
            &Request {
                method: "POST",
                endpoint: &self.endpoint,
                authority: None,
                path_and_query: &self.path_and_query,
                headers: &self.headers,
                body: &body,
                timeout_ns: self.timeout_ns,
            },
            64 << 10,
        )
        .map_err(|e| match e {
            HttpError::Transient(m) => Refusal::Transient(m),
            other => Refusal::Fatal(other.to_string()),
        })?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        Err(answer::read(
            response.status,
            &response.text(),
            idx.len(),
            &self.table,
            &self.user,
            &self.vars,
        ))
    }

    /// Inserts the rows `idx`, narrowing a refused insert down to the rows
    /// the server refuses. Rows before a located bad row parsed, so they
    /// are kept aside and inserted together at the end; an unlocated
    /// refusal is halved. A failed insert inserted nothing, so every good
    /// row is inserted once.
    fn settle(&self, rows: &[Vec<u8>], idx: Vec<usize>, o: &mut Outcome) -> Result<(), String> {
        let mut parsed: Vec<usize> = Vec::new();
        let mut trial = idx;
        while !trial.is_empty() {
            match self.insert(rows, &trial) {
                Ok(()) => {
                    o.inserted_any = true;
                    break;
                }
                Err(Refusal::BadRow { index, reason }) => {
                    o.failures.push(Undelivered::reject(trial[index], reason));
                    parsed.extend_from_slice(&trial[..index]);
                    trial.drain(..=index);
                }
                Err(Refusal::Unlocated(reason)) if trial.len() == 1 => {
                    o.failures.push(Undelivered::reject(trial[0], reason));
                    break;
                }
                Err(Refusal::Unlocated(_)) => {
                    let second = trial.split_off(trial.len() / 2);
                    self.settle(rows, trial, o)?;
                    self.settle(rows, second, o)?;
                    break;
                }
                Err(Refusal::Transient(reason)) => {
                    retry_all(&trial, &reason, o);
                    break;
                }
                // Nothing inserted yet: the call fails and is retried whole.
                Err(Refusal::Fatal(reason)) if !o.inserted_any => return Err(reason),
                // Some rows are in: failing the call would insert them
                // again, so only the rest are retried.
                Err(Refusal::Fatal(reason)) => {
                    log(Level::Error, &reason);
                    retry_all(&trial, &reason, o);
                    break;
                }
            }
        }
        if !parsed.is_empty() {
            self.settle(rows, parsed, o)?;
        }
        Ok(())
    }
}

fn retry_all(idx: &[usize], reason: &str, o: &mut Outcome) {
    o.failures
        .extend(idx.iter().map(|&i| Undelivered::retry(i, reason)));
}

impl flumen_guest_common::Sink for ClickHouseSink {
    const KEYS: &'static [&'static str] = &[
        "url",
        "table",
        "value",
        "value_column",
        "topic_column",
        "partition_column",
        "offset_column",
        "timestamp_column",
        "key_column",
        "user_env",
        "password_env",
        "timeout_ms",
        "skip_unknown_fields",
    ];

    fn new(config: &Config) -> Result<Self, String> {
        ClickHouseSink::from_config(config)
    }

    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        let mut o = Outcome::default();
        let mut rows = Vec::with_capacity(batch.len());
        let mut sendable = Vec::with_capacity(batch.len());
        for (i, e) in batch.iter().enumerate() {
            let mut row = Vec::with_capacity(e.value.map_or(0, <[u8]>::len) + 96);
            match self.row(&e, (topic, partition), &mut row) {
                Ok(()) => sendable.push(i),
                Err(reason) => o.failures.push(Undelivered::reject(i, reason)),
            }
            rows.push(row);
        }
        self.settle(&rows, sendable, &mut o)?;
        o.failures.sort_by_key(|f| f.event);
        Ok(o.failures)
    }
}

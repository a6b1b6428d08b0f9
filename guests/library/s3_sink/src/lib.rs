//! The S3 sink: writes each call's events as one object to an S3-compatible
//! object store (AWS S3, SeaweedFS, MinIO, …), over `wasi:http`, signed
//! with AWS Signature V4. An event is delivered only once the store has
//! acknowledged the object that holds it (the PutObject, or the
//! CompleteMultipartUpload of a large one).
//!
//! How large an object gets is the host's sink-side batching: the sink's
//! `batch = { max_events, max_bytes, max_wait_ms }` (Flume's rollCount,
//! rollSize and rollInterval). See docs/sinks/s3.md for every key, the
//! grants it needs and its delivery guarantee.
//!
//! Config keys:
//! - `endpoint` (required): `http://host[:port]` or `https://…`.
//! - `bucket` (required), `region` (default `us-east-1`), `path_style`
//!   (default `true`: `/bucket/key`; `false`: `bucket.host/key`).
//! - `key`: the object key template (see `key.rs`), by default
//!   `%{topic}/%{partition}/%{start_offset}.<extension>`.
//! - `time` (default `event`): the date escapes show the first event's
//!   timestamp, or `now`.
//! - `format` (default `json`): JSON lines, as the file sink writes them,
//!   or `parquet` (one row group per object; see `parquet_file.rs`).
//! - `compression`: for JSON lines `none` (default), `gzip` or `zstd`; for
//!   Parquet `snappy` (default), `gzip` or `none`. `compression_level`
//!   (gzip, 6).
//! - `multipart_bytes` (default 16 MiB): larger objects go up in parts of
//!   `part_bytes` (default 8 MiB, at least 5 MiB as S3 requires).
//! - `access_key_env`, `secret_key_env`, `session_token_env`: which
//!   environment variables hold the credentials (AWS's names by default);
//!   the host grants them with `env_from_host`.
//! - `timeout_ms` (default 10000, below the host's call timeout), `sign_payload` (default: over `http://`
//!   only; HTTPS sends `UNSIGNED-PAYLOAD`, as AWS's SDKs do).
//! - `exactly_once` (default `false`): see `docs/sinks/s3.md`.

wit_bindgen::generate!({ world: "sink", path: "../../../wit" });

mod encode;
mod key;
mod parquet_file;
mod s3;
mod sigv4;

use encode::Compression;
use exports::flumen::pipeline::delivery::{Columns, Failure, FailureKind, Guest, Source};
use flumen::pipeline::log::{log, Level};
use flumen_guest_common::dates::now_millis;
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::{write_json_line, Config};
use key::{KeyFields, KeyTemplate};
use s3::{S3Error, Store};
use sigv4::Credentials;
use std::cell::RefCell;

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 << 20;

/// How an object's events are written.
enum Format {
    /// JSON lines, compressed as given.
    Json(Compression),
    /// A Parquet file with this codec.
    Parquet(parquet::basic::Compression),
}

impl Format {
    fn extension(&self) -> &'static str {
        match self {
            Format::Json(c) => c.extension(),
            Format::Parquet(_) => "parquet",
        }
    }
}

struct Sink {
    store: Store,
    key: KeyTemplate,
    event_time: bool,
    format: Format,
    multipart_bytes: usize,
    part_bytes: usize,
    exactly_once: bool,
    /// Partitions whose leftovers this instance has cleared (exactly_once).
    cleared: Vec<(String, i32)>,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

fn env(var: &str, config_key: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| {
        format!(
            "environment variable {var} is not set for this component: grant it with \
             env_from_host = [\"{var}\", …] in the host config (or name another variable with \
             `{config_key}`)"
        )
    })
}

impl Sink {
    fn from_config(config: Vec<(String, String)>) -> Result<Self, String> {
        let config = Config::new(
            config,
            &[
                "endpoint",
                "bucket",
                "region",
                "path_style",
                "key",
                "time",
                "format",
                "compression",
                "compression_level",
                "multipart_bytes",
                "part_bytes",
                "access_key_env",
                "secret_key_env",
                "session_token_env",
                "timeout_ms",
                "sign_payload",
                "exactly_once",
            ],
        )?;
        let endpoint = Endpoint::parse("endpoint", config.required("endpoint")?)?;
        let https = endpoint.https;
        let bucket = config.required("bucket")?.to_owned();
        if !(3..=63).contains(&bucket.len()) {
            return Err(format!(
                "config key `bucket` must be 3 to 63 characters long (S3's rule), got `{bucket}`"
            ));
        }
        let parquet = config.one_of("format", &["json", "parquet"])? == "parquet";
        let format = match config.get("compression") {
            _ if parquet => Format::Parquet(parquet_file::codec(
                config.get("compression").unwrap_or("snappy"),
            )?),
            Some("snappy") => {
                return Err(
                    "compression = \"snappy\" is for format = \"parquet\"; JSON lines take \
                     none, gzip or zstd"
                        .into(),
                )
            }
            _ => Format::Json(Compression::parse(
                config.one_of("compression", &["none", "gzip", "zstd", "snappy"])?,
                config.u64_or("compression_level", 6)? as u32,
            )),
        };
        let default_key = format!(
            "%{{topic}}/%{{partition}}/%{{start_offset}}.{}",
            format.extension()
        );
        let key = KeyTemplate::parse(config.get("key").unwrap_or(&default_key))?;
        let event_time = config.one_of("time", &["event", "now"])? == "event";
        let exactly_once = config.bool_or("exactly_once", false)?;
        if exactly_once && !key.names_by_start_offset() {
            return Err(format!(
                "exactly_once needs `key` to contain %{{topic}}, %{{partition}} and \
                 %{{start_offset}}, so that an object written again after a crash replaces the \
                 first copy; got `{}`",
                key.source()
            ));
        }
        if exactly_once && key.has_date() && !event_time {
            return Err(
                "exactly_once with date escapes in `key` needs time = \"event\": with \"now\", \
                 an object written again after a crash could land under another date, beside \
                 the first copy"
                    .into(),
            );
        }
        let part_bytes = config.u64_or("part_bytes", 8 << 20)?;
        if part_bytes < MIN_PART {
            return Err(format!(
                "config key `part_bytes` must be at least {MIN_PART} (5 MiB, S3's smallest \
                 part), got {part_bytes}"
            ));
        }
        let multipart_bytes = config.u64_or("multipart_bytes", 16 << 20)?.max(part_bytes);
        let access_var = config.get("access_key_env").unwrap_or("AWS_ACCESS_KEY_ID");
        let secret_var = config
            .get("secret_key_env")
            .unwrap_or("AWS_SECRET_ACCESS_KEY");
        let token_var = config
            .get("session_token_env")
            .unwrap_or("AWS_SESSION_TOKEN");
        let credentials = Credentials {
            access_key: env(access_var, "access_key_env")?,
            secret_key: env(secret_var, "secret_key_env")?,
            session_token: std::env::var(token_var).ok(),
        };
        Ok(Sink {
            store: Store {
                endpoint,
                bucket,
                region: config.get("region").unwrap_or("us-east-1").to_owned(),
                path_style: config.bool_or("path_style", true)?,
                credentials,
                credential_vars: (access_var.to_owned(), secret_var.to_owned()),
                timeout_ns: config
                    .u64_or("timeout_ms", 10_000)?
                    .saturating_mul(1_000_000),
                // As AWS's SDKs do: over HTTPS, TLS protects the body and
                // hashing it costs CPU for nothing; over plain HTTP the
                // signature covers it.
                sign_payload: config.bool_or("sign_payload", !https)?,
            },
            key,
            event_time,
            format,
            multipart_bytes: multipart_bytes as usize,
            part_bytes: part_bytes as usize,
            exactly_once,
            cleared: Vec::new(),
        })
    }

    /// Under `exactly_once`, before this instance's first object of a
    /// partition: deletes the objects of that partition that start at or
    /// after `first`, the first offset it is asked to write. Such objects
    /// were written by a run that stopped (crashed) before committing
    /// their offsets; every event in them is being delivered again from
    /// `first` on, possibly cut into objects at other offsets, so a copy
    /// left behind would duplicate it. Nothing delivered can start there:
    /// with one call in flight per partition (which `check` asks for), an
    /// instance's first call holds the partition's earliest undelivered
    /// event.
    fn clear_leftovers(&mut self, source: &Source, first: i64) -> Result<(), S3Error> {
        let here = (source.topic.clone(), source.partition);
        if !self.exactly_once || self.cleared.contains(&here) {
            return Ok(());
        }
        let prefix = self.key.prefix(&source.topic, source.partition);
        // The partition's older objects are skipped when the keys allow.
        let after = self.key.start_after(&source.topic, source.partition, first);
        let mut removed = 0;
        for key in self.store.list(&prefix, after.as_deref())? {
            let start = self
                .key
                .start_offset_of(&key, &source.topic, source.partition);
            if start.is_some_and(|s| s >= first) {
                self.store.delete(&key)?;
                removed += 1;
            }
        }
        if removed > 0 {
            log(
                Level::Info,
                &format!(
                    "exactly_once: removed {removed} object(s) of {}/{} from offset {first} on, \
                     left by a run that stopped before committing them; they are written again",
                    source.topic, source.partition
                ),
            );
        }
        self.cleared.push(here);
        Ok(())
    }

    fn deliver(&mut self, source: &Source, batch: Columns) -> Result<Vec<Failure>, String> {
        let batch = flumen_guest_common::columns!(batch)?;
        let n = batch.len();
        let (Some(first), Some(last)) = (batch.get(0), n.checked_sub(1).and_then(|i| batch.get(i)))
        else {
            return Ok(Vec::new());
        };
        let millis = first
            .timestamp
            .filter(|_| self.event_time)
            .unwrap_or_else(now_millis);
        let key = self.key.render(&KeyFields {
            topic: &source.topic,
            partition: source.partition,
            start_offset: first.offset,
            end_offset: last.offset,
            millis,
        });
        let (body, headers) = match &self.format {
            Format::Json(compression) => {
                let mut lines = Vec::with_capacity(n * 160);
                for e in batch.iter() {
                    write_json_line(&mut lines, e.fields(&source.topic, source.partition), None);
                }
                (compression.apply(lines)?, compression.content_headers())
            }
            Format::Parquet(codec) => (
                parquet_file::write(&source.topic, source.partition, batch.iter(), *codec)?,
                vec![(
                    "content-type".to_owned(),
                    "application/vnd.apache.parquet".to_owned(),
                )],
            ),
        };
        let stored = self.clear_leftovers(source, first.offset).and_then(|()| {
            if body.len() > self.multipart_bytes {
                self.store
                    .put_multipart(&key, &body, self.part_bytes, &headers)
            } else {
                self.store.put(&key, &body, &headers)
            }
        });
        match stored {
            Ok(()) => {
                log(
                    Level::Debug,
                    &format!("stored {key} ({n} events, {} bytes)", body.len()),
                );
                Ok(Vec::new())
            }
            // One object held the whole call: every event is retried.
            Err(S3Error::Retry(reason)) => Ok((0..n as u32)
                .map(|event| Failure {
                    event,
                    kind: FailureKind::Retry,
                    reason: reason.clone(),
                })
                .collect()),
            Err(refused @ S3Error::Refused { .. }) => Err(refused.to_string()),
        }
    }
}

struct S3Sink;

impl Guest for S3Sink {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let sink = Sink::from_config(config)?;
        // Bad credentials or a missing bucket refuse the start, with the
        // cause; an unreachable store does not (it may come back).
        match sink.store.probe() {
            Err(S3Error::Refused { message, .. }) => return Err(message),
            Err(S3Error::Retry(m)) => log(
                Level::Warn,
                &format!("the store did not answer at start ({m}); delivery will retry"),
            ),
            Ok(()) => {}
        }
        SINK.with(|s| *s.borrow_mut() = Some(sink));
        Ok(())
    }

    fn deliver(source: Source, batch: Columns) -> Result<Vec<Failure>, String> {
        SINK.with(|s| {
            let mut s = s.borrow_mut();
            let sink = s.as_mut().ok_or("deliver called before init")?;
            sink.deliver(&source, batch)
        })
    }
}

export!(S3Sink);

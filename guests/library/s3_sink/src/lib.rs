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
//! - `value_columns` (default `bytes`): with `schema`, a Parquet object's
//!   value is typed columns from its Avro schema (see `typed_parquet.rs`).
//! - `exactly_once` (default `false`): see `docs/sinks/s3.md` and
//!   `ledger.rs`; `exactly_once_cell` (default 1,000,000): no object
//!   holds offsets of two cells of this many offsets.

mod config;
mod encode;
mod key;
mod ledger;
mod parquet_file;
mod s3;
mod sigv4;
mod typed_parquet;

use encode::Compression;
use flumen::pipeline::log::{log, Level};
use flumen_guest_common::columns::Batch;
use flumen_guest_common::dates::now_millis;
use flumen_guest_common::{write_json_line, Config, Undelivered};
use key::{KeyFields, KeyTemplate};
use ledger::{Created, Ledger, Objects};
use s3::{S3Error, Store};
use typed_parquet::Layouts;

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 << 20;

/// The user metadata (`x-amz-meta-…`) that carries an object's last
/// offset under `exactly_once`.
const END_OFFSET: &str = "flumen-end-offset";

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

flumen_guest_common::sink!(S3Sink);

/// The partition a batch comes from.
struct Source<'a> {
    topic: &'a str,
    partition: i32,
}

struct S3Sink {
    store: Store,
    key: KeyTemplate,
    event_time: bool,
    format: Format,
    multipart_bytes: usize,
    part_bytes: usize,
    exactly_once: bool,
    /// `exactly_once_cell`: see `ledger.rs`.
    cell: i64,
    /// Whether the store was seen to honour conditional writes and keep
    /// user metadata (exactly_once needs both).
    conditional_checked: bool,
    /// Per partition this instance has written (exactly_once).
    ledgers: Vec<((String, i32), Ledger)>,
    /// With `value_columns = "schema"`: the typed layouts of the schemas
    /// met so far.
    typed: Option<Layouts>,
}

impl S3Sink {
    /// Checks, once per instance, that the store honours `If-None-Match: *`
    /// and keeps user metadata, which `exactly_once` rests on: a scratch
    /// object is created twice (the second must be refused), its metadata
    /// read back, and removed. A store that ignores the condition would let
    /// a late writer replace another's object.
    fn check_conditional_writes(&mut self) -> Result<(), S3Error> {
        if !self.exactly_once || self.conditional_checked {
            return Ok(());
        }
        use std::hash::BuildHasher;
        let tag = std::collections::hash_map::RandomState::new().hash_one(now_millis());
        let key = format!(".flumen/conditional-write-check-{tag:016x}");
        let meta = vec![(format!("x-amz-meta-{END_OFFSET}"), "0".to_owned())];
        let store = &self.store;
        store.put(&key, b"flumen", &meta, true)?;
        let second = store.put(&key, b"flumen", &meta, true);
        let kept = store.metadata(&key, END_OFFSET);
        store.delete(&key)?;
        let refused = |what: &str| S3Error::Refused {
            code: "NotSupported".into(),
            message: format!(
                "the store at {} {what}, which exactly_once needs (AWS S3 has both; so do \
                 SeaweedFS and MinIO): use such a store, or set exactly_once = false",
                store.endpoint.authority
            ),
        };
        match second {
            Err(e) if e.is_precondition_failed() => {}
            Err(e) => return Err(e),
            Ok(()) => {
                return Err(refused(
                    "ignores If-None-Match (S3 conditional writes): a second write of one key \
                     replaced the first",
                ))
            }
        }
        if kept?.as_deref() != Some("0") {
            return Err(refused("does not keep user metadata (x-amz-meta-*)"));
        }
        self.conditional_checked = true;
        Ok(())
    }

    fn deliver_batch(
        &mut self,
        source: &Source,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        let n = batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        if !self.exactly_once {
            let runs = match self.typed {
                Some(_) => Layouts::runs(batch, 0..n),
                None => std::iter::once(0..n).collect(),
            };
            for run in runs {
                let start = run.start;
                if let Err(e) = self.store_object(source, batch, run, false) {
                    return retry_from(start, n, Err(e));
                }
            }
            return Ok(Vec::new());
        }
        if let Err(e) = self.check_conditional_writes() {
            return retry_from(0, n, Err(e));
        }
        let here = (source.topic.to_owned(), source.partition);
        let mut ledger = match self.ledgers.iter().position(|(p, _)| *p == here) {
            Some(i) => self.ledgers.swap_remove(i).1,
            None => Ledger::new(self.cell),
        };
        let offsets: Vec<i64> = batch.iter().map(|e| e.offset).collect();
        let d = ledger.deliver(
            &mut Writer {
                sink: self,
                source,
                batch,
            },
            &offsets,
        );
        self.ledgers.push((here, ledger));
        if d.adopted > 0 || d.removed > 0 {
            log(
                Level::Info,
                &format!(
                    "exactly_once: {}/{} offsets {}..={}: {} object(s) found already stored \
                     (by another member, or a run that stopped before committing) and kept; \
                     {} object(s) of an older flumen removed and written again",
                    source.topic,
                    source.partition,
                    offsets[0],
                    offsets[n - 1],
                    d.adopted,
                    d.removed
                ),
            );
        }
        match d.error {
            None => Ok(Vec::new()),
            Some(e) => retry_from(d.delivered, n, Err(e)),
        }
    }

    /// Stores events `range` of `batch` as one object (`once`: only if
    /// no object has its key).
    fn store_object(
        &self,
        source: &Source,
        batch: &flumen_guest_common::columns::Batch<'_>,
        range: std::ops::Range<usize>,
        once: bool,
    ) -> Result<Created, S3Error> {
        let n = range.len();
        let (Some(first), Some(last)) = (batch.get(range.start), batch.get(range.end - 1)) else {
            return Ok(Created::Stored);
        };
        let millis = first
            .timestamp
            .filter(|_| self.event_time)
            .unwrap_or_else(now_millis);
        let key = self.key.render(&KeyFields {
            topic: source.topic,
            partition: source.partition,
            start_offset: first.offset,
            end_offset: last.offset,
            millis,
        });
        let events = || batch.iter().skip(range.start).take(n);
        let (body, mut headers) = match &self.format {
            Format::Json(compression) => {
                let mut lines = Vec::with_capacity(n * 160);
                for e in events() {
                    write_json_line(&mut lines, e.fields(source.topic, source.partition), None);
                }
                (
                    compression.apply(lines).map_err(|e| S3Error::Refused {
                        code: "encode".into(),
                        message: e,
                    })?,
                    compression.content_headers(),
                )
            }
            Format::Parquet(codec) => (
                match &self.typed {
                    Some(layouts) => {
                        layouts
                            .of(&first)?
                            .write(source.topic, source.partition, events(), *codec)
                    }
                    None => parquet_file::write(source.topic, source.partition, events(), *codec),
                }
                .map_err(|e| S3Error::Refused {
                    code: "encode".into(),
                    message: e,
                })?,
                vec![(
                    "content-type".to_owned(),
                    "application/vnd.apache.parquet".to_owned(),
                )],
            ),
        };
        if once {
            headers.push((format!("x-amz-meta-{END_OFFSET}"), last.offset.to_string()));
        }
        let stored = if body.len() > self.multipart_bytes {
            self.store
                .put_multipart(&key, &body, self.part_bytes, &headers, once)
        } else {
            self.store.put(&key, &body, &headers, once)
        };
        match stored {
            Ok(()) => {
                log(
                    Level::Debug,
                    &format!("stored {key} ({n} events, {} bytes)", body.len()),
                );
                Ok(Created::Stored)
            }
            Err(e) if once && e.is_precondition_failed() => Ok(Created::Exists(key)),
            Err(e) => Err(e),
        }
    }
}

/// The verdicts of a call whose first `delivered` events are stored: on a
/// transient error every later event is retried (the host offers them
/// again, in order); a refusal fails the call with the cause.
fn retry_from(
    delivered: usize,
    n: usize,
    stored: Result<(), S3Error>,
) -> Result<Vec<Undelivered>, String> {
    match stored {
        Ok(()) => Ok(Vec::new()),
        Err(S3Error::Retry(reason)) => Ok((delivered..n)
            .map(|event| Undelivered::retry(event, reason.clone()))
            .collect()),
        Err(refused @ S3Error::Refused { .. }) => Err(refused.to_string()),
    }
}

/// The store as one call's ledger sees it: this partition's objects, and
/// the call's events to make them from.
struct Writer<'a> {
    sink: &'a S3Sink,
    source: &'a Source<'a>,
    batch: &'a flumen_guest_common::columns::Batch<'a>,
}

impl Objects for Writer<'_> {
    fn list(&mut self, from: i64) -> Result<Vec<(i64, String)>, S3Error> {
        let (topic, partition) = (&self.source.topic, self.source.partition);
        let key = &self.sink.key;
        // The partition's older objects are skipped when the keys allow.
        let after = key.start_after(topic, partition, from);
        let mut found: Vec<(i64, String)> = self
            .sink
            .store
            .list(&key.prefix(topic, partition), after.as_deref())?
            .into_iter()
            .filter_map(|k| Some((key.start_offset_of(&k, topic, partition)?, k)))
            .filter(|(start, _)| *start >= from)
            .collect();
        found.sort();
        Ok(found)
    }

    fn end_of(&mut self, key: &str) -> Result<Option<i64>, S3Error> {
        Ok(self
            .sink
            .store
            .metadata(key, END_OFFSET)?
            .and_then(|v| v.trim().parse().ok()))
    }

    fn create(&mut self, events: std::ops::Range<usize>) -> Result<Created, S3Error> {
        self.sink
            .store_object(self.source, self.batch, events, true)
    }

    fn remove(&mut self, key: &str) -> Result<(), S3Error> {
        self.sink.store.delete(key)
    }
}

impl flumen_guest_common::Sink for S3Sink {
    const KEYS: &'static [&'static str] = &[
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
        "exactly_once_cell",
        "value_columns",
    ];

    fn new(config: &Config) -> Result<Self, String> {
        let mut sink = S3Sink::from_config(config)?;
        // Bad credentials, a missing bucket or (with exactly_once) a store
        // without conditional writes refuse the start, with the cause; an
        // unreachable store does not (it may come back: the conditional
        // writes are then checked before the first object).
        match sink
            .store
            .probe()
            .and_then(|()| sink.check_conditional_writes())
        {
            Err(S3Error::Refused { message, .. }) => return Err(message),
            Err(S3Error::Retry(m)) => log(
                Level::Warn,
                &format!("the store did not answer at start ({m}); delivery will retry"),
            ),
            Ok(()) => {}
        }
        Ok(sink)
    }

    fn deliver(
        &mut self,
        topic: &str,
        partition: i32,
        batch: &Batch<'_>,
    ) -> Result<Vec<Undelivered>, String> {
        self.deliver_batch(&Source { topic, partition }, batch)
    }
}

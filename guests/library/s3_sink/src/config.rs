//! The sink's configuration: every key of its `config` table, read and
//! checked once at `init` (docs/sinks/s3.md lists them).

use super::encode::Compression;
use super::key::KeyTemplate;
use super::s3::Store;
use super::sigv4::Credentials;
use super::typed_parquet::Layouts;
use super::{parquet_file, Format, S3Sink, END_OFFSET, MIN_PART};
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::Config;

fn env(var: &str, config_key: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| {
        format!(
            "environment variable {var} is not set for this component: grant it with \
             env_from_host = [\"{var}\", …] in the host config (or name another variable with \
             `{config_key}`)"
        )
    })
}

impl S3Sink {
    /// The sink `config` describes, or what is wrong with it.
    pub(super) fn from_config(config: &Config) -> Result<Self, String> {
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
        let typed = config.one_of("value_columns", &["bytes", "schema"])? == "schema";
        if typed && !parquet {
            return Err("value_columns = \"schema\" is for format = \"parquet\"".into());
        }
        if typed && config.bool_or("exactly_once", false)? {
            return Err(
                "value_columns = \"schema\" does not work with exactly_once yet: an object \
                 holds one schema's columns, and exactly_once's objects are cut by offset alone"
                    .into(),
            );
        }
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
        if exactly_once && key.has_end_offset() {
            return Err(format!(
                "exactly_once needs `key` without %{{end_offset}}: objects are named by their \
                 first offset alone, so that two writers cutting the same events differently \
                 collide on one key (and the second adopts the first's object); got `{}`. The \
                 last offset is kept in the object's metadata ({END_OFFSET})",
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
        Ok(S3Sink {
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
            cell: config
                .u64_or("exactly_once_cell", 1_000_000)?
                .clamp(1, i64::MAX as u64) as i64,
            conditional_checked: false,
            ledgers: Vec::new(),
            typed: typed.then(Layouts::default),
        })
    }
}

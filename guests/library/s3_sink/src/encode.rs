//! An object's bytes: its events as JSON lines (the file sink's line
//! format), optionally compressed with gzip or zstd.

use std::io::Write;

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON lines.
    None,
    /// gzip (RFC 1952), at the given level (0–9).
    Gzip(u32),
    /// zstd (RFC 8878), at ruzstd's fastest level.
    Zstd,
}

impl Compression {
    /// From the `compression` config value.
    pub fn parse(name: &str, level: u32) -> Self {
        match name {
            "gzip" => Compression::Gzip(level.min(9)),
            "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The default key's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "jsonl",
            Compression::Gzip(_) => "jsonl.gz",
            Compression::Zstd => "jsonl.zst",
        }
    }

    /// The `content-type` and `content-encoding` the object is stored
    /// with.
    pub fn content_headers(self) -> Vec<(String, String)> {
        let mut h = vec![("content-type".to_owned(), "application/x-ndjson".to_owned())];
        match self {
            Compression::None => {}
            Compression::Gzip(_) => h.push(("content-encoding".into(), "gzip".into())),
            Compression::Zstd => h.push(("content-encoding".into(), "zstd".into())),
        }
        h
    }

    /// Compresses `lines`.
    pub fn apply(self, lines: Vec<u8>) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(lines),
            Compression::Gzip(level) => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(lines.len() / 4),
                    flate2::Compression::new(level),
                );
                gz.write_all(&lines)
                    .and_then(|()| gz.finish())
                    .map_err(|e| format!("gzip: {e}"))
            }
            Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
                lines.as_slice(),
                ruzstd::encoding::CompressionLevel::Fastest,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Compression;
    use std::io::Read;

    #[test]
    fn compresses_readably() {
        let lines = b"{\"a\":1}\n{\"a\":2}\n".repeat(100);
        let gz = Compression::Gzip(6).apply(lines.clone()).expect("gzip");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, lines);
        let zst = Compression::Zstd.apply(lines.clone()).expect("zstd");
        assert!(zst.len() < lines.len() / 4);
        let mut back = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(zst.as_slice())
            .expect("frame")
            .read_to_end(&mut back)
            .expect("unzstd");
        assert_eq!(back, lines);
    }
}

//! The compiled-component cache.
//!
//! Compiling a component to machine code is the slow part of loading it:
//! 50–100 ms for a Rust or C guest, but 30–45 s for a Python or JavaScript
//! guest, which carries a whole interpreter. Without a cache every start and
//! every reload of such a guest would stall its pipeline that long. So the
//! first compile of a file's bytes is written here, and later loads of the
//! same bytes map the compiled code straight from the file.
//!
//! An entry is named by the SHA-256 of the component's bytes together with
//! wasmtime's compatibility hash of the engine's settings (target CPU
//! features, fuel counting, epoch interruption, wasmtime's version). So a
//! changed component, a changed setting or a new flumen build simply misses
//! and compiles afresh; nothing stale is ever loaded.
//!
//! Loading compiled code runs it without wasmtime's validation, so whoever
//! can write the cache directory could run arbitrary code inside flumen. The
//! directory is created private (mode 0700), and a directory that other
//! users can write to is refused with a warning (the cache is then off).

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Entries not used for this long are removed when a cache is opened, so a
/// cache that sees many reloads of a changing guest does not grow forever.
const MAX_UNUSED: Duration = Duration::from_secs(30 * 24 * 3600);

/// File extension of cache entries (wasmtime's own name for compiled code).
const EXT: &str = "cwasm";

/// A directory of compiled components. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
    /// Hex SHA-256 of the engine's compatibility hash, part of every key.
    engine_key: String,
}

/// Where a component came from: the cache, or a fresh compile (then
/// written to the cache if it is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Mapped from a cache entry; no compilation.
    Cached,
    /// Compiled now.
    Compiled,
}

impl CompileCache {
    /// Opens (creating it if needed) the cache in `dir` for `engine`'s
    /// settings, and removes entries unused for 30 days. Fails if the
    /// directory cannot be created or other users can write to it.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the compile cache {}: {e}", dir.display()))?;
        let meta = fs::metadata(dir)
            .map_err(|e| format!("cannot read the compile cache {}: {e}", dir.display()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.permissions().mode() & 0o022 != 0 || meta.uid() != uid {
            return Err(format!(
                "compile cache {} is writable by other users or not owned by this user \
                 (mode {:o}, owner {}); a cached file is run as machine code, so it is not \
                 used. `chmod 700` it, or set `cache.dir` to a private directory",
                dir.display(),
                meta.permissions().mode() & 0o777,
                meta.uid()
            ));
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let cache = Self {
            dir: dir.to_owned(),
            engine_key: hex(&hasher.0.finalize()),
        };
        cache.prune(MAX_UNUSED);
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for `bytes` under this engine.
    pub fn entry(&self, bytes: &[u8]) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.engine_key.as_bytes());
        h.update(bytes);
        self.dir.join(format!("{}.{EXT}", hex(&h.finalize())))
    }

    /// The component compiled from `bytes`: from the cache when an entry
    /// exists and loads, else compiled now and stored. A broken entry (a
    /// truncated file, say) is logged, compiled over and replaced. A
    /// failure to store is logged and otherwise ignored: the cache only
    /// saves time.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Origin)> {
        let entry = self.entry(bytes);
        if entry.exists() {
            // SAFETY: the entry was written by `store` below from wasmtime's
            // own serialization, into a directory only this user can write
            // (checked in `open`); wasmtime still checks that the file's
            // header matches this engine before mapping it.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(c) => {
                    // Marks the entry as used, for `prune`.
                    let _ = fs::File::open(&entry).and_then(|f| f.set_modified(SystemTime::now()));
                    return Ok((c, Origin::Cached));
                }
                Err(e) => tracing::warn!(entry = %entry.display(), error = %format!("{e:#}"),
                    "compile cache entry unusable; compiling again"),
            }
        }
        let component = super::compile::compile(engine, bytes)?;
        if let Err(e) = self.store(&entry, &component) {
            tracing::warn!(entry = %entry.display(), error = %e,
                "cannot write the compile cache entry; the next start compiles again");
        }
        Ok((component, Origin::Compiled))
    }

    /// Writes `component` to `entry` through a temporary file and a rename,
    /// so that a concurrent reader (another flumen, a `check`) never maps a
    /// half-written file.
    fn store(&self, entry: &Path, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let tmp = entry.with_extension(format!("{EXT}.tmp.{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        let written = f.write_all(&bytes).and_then(|()| f.sync_all());
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, entry)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// Removes entries (and leftover temporary files) not used for `age`.
    fn prune(&self, age: Duration) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        let Some(cutoff) = SystemTime::now().checked_sub(age) else {
            return;
        };
        for e in dir.flatten() {
            let path = e.path();
            let ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(&format!(".{EXT}")));
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if ours && old {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// The default cache directory: `$FLUMEN_CACHE_DIR`, else systemd's
/// `$CACHE_DIRECTORY`, else `$XDG_CACHE_HOME/flumen`, else
/// `$HOME/.cache/flumen`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FLUMEN_CACHE_DIR")
        .or_else(|| var("CACHE_DIRECTORY"))
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("flumen")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("flumen")))
}

/// Feeds `std::hash::Hash` output into SHA-256, so that the engine's
/// compatibility hash gives the same key in every process (std's
/// `DefaultHasher` promises no stability across Rust versions).
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Unused: the digest is read from the inner state.
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

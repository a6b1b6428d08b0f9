//! Shared set-up for the end-to-end tests: real brokers, real components
//! built by guests/build.sh, and the real `flumen` binary in a child process.
//! One file per concern: [`broker`], [`produce`] (and reading back),
//! [`process`] (the `flumen` binary), [`sink_output`], [`workdir`] (configs) and
//! [`http`] (the admin endpoint).

#![allow(dead_code, unused_imports)]

pub mod broker;
pub mod http;
pub mod process;
pub mod produce;
pub mod sink_output;
pub mod workdir;

pub use broker::*;
pub use http::*;
pub use process::*;
pub use produce::*;
pub use sink_output::*;
pub use workdir::*;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A guest component built by guests/build.sh.
pub fn guest(name: &str) -> PathBuf {
    let p = repo().join(format!("guests/target/wasm32-wasip2/release/{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run guests/build.sh first",
        p.display()
    );
    p
}

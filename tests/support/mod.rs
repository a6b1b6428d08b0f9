//! Shared set-up for the end-to-end tests: real brokers, real components
//! built by guests/build.sh, and the real `flumen` binary in a child process.
//! One file per concern: [`broker`], [`durable_broker`] (tansu storing in
//! an object store, surviving a restart), [`produce`] (and reading back),
//! [`raw_batch`] (a batch no producer would write), [`sasl`] (a broker
//! requiring SCRAM), [`schema_registry`] (a test registry and Confluent's
//! serializers),
//! [`process`] (the `flumen` binary), [`sink_output`], [`workdir`] (configs) and
//! [`http`] (the admin endpoint), [`bucket`] (a bucket read back), [`netns`] (network namespaces, links cut), [`slow_link`] (a delaying proxy), [`tls`] (a TLS listener and its test
//! certificates), [`object_store`] (SeaweedFS, an S3 API) and [`clickhouse`].

#![allow(dead_code, unused_imports)]

pub mod broker;
pub mod bucket;
pub mod clickhouse;
pub mod durable_broker;
pub mod http;
pub mod netns;
pub mod object_store;
pub mod process;
pub mod produce;
pub mod raw_batch;
pub mod sasl;
pub mod schema_registry;
pub mod sink_output;
pub mod slow_link;
pub mod tls;
pub mod workdir;

pub use broker::*;
pub use bucket::*;
pub use clickhouse::*;
pub use durable_broker::*;
pub use http::*;
pub use netns::*;
pub use object_store::*;
pub use process::*;
pub use produce::*;
pub use raw_batch::*;
pub use sasl::*;
pub use schema_registry::*;
pub use sink_output::*;
pub use slow_link::*;
pub use tls::*;
pub use workdir::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// librdkafka options the test's own clients need to reach a broker (TLS,
/// SASL), by bootstrap address; a broker that needs none is not listed.
static SECURITY: Mutex<Option<HashMap<String, Options>>> = Mutex::new(None);

/// librdkafka options, as (key, value).
type Options = Vec<(String, String)>;

/// Makes the test's own clients (producing, creating topics, reading
/// commits) connect to `bootstrap` with `options`.
pub fn register_security(bootstrap: &str, options: &[(&str, &str)]) {
    let mut map = SECURITY.lock().expect("lock");
    map.get_or_insert_with(HashMap::new).insert(
        bootstrap.to_owned(),
        options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
}

/// Forgets `bootstrap`'s options, when its broker stops. Its port may be
/// taken next by another test's broker (a mock cluster picks any free
/// port), whose clients must not inherit a deleted CA file or a login (seen
/// once: `ssl.ca.location failed` producing to a mock cluster).
pub fn forget_security(bootstrap: &str) {
    if let Some(map) = SECURITY.lock().expect("lock").as_mut() {
        map.remove(bootstrap);
    }
}

/// Settings for a test client of `bootstrap`, with its security options.
pub fn client(bootstrap: &str) -> rdkafka::ClientConfig {
    let mut cc = rdkafka::ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap);
    if let Some(options) = SECURITY
        .lock()
        .expect("lock")
        .as_ref()
        .and_then(|m| m.get(bootstrap))
    {
        for (k, v) in options {
            cc.set(k, v);
        }
    }
    cc
}

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

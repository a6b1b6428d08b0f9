//! Which release of the `flumen:pipeline` contract a component was built
//! against.
//!
//! A component names the contract's version in every import and export
//! (`flumen:pipeline/delivery@0.2.0`). Without this check, one built
//! against an older release fails to link with wasmtime's "import not
//! defined", which says nothing about what to do; with it, the operator is
//! told which release the component speaks and how to rebuild it.

use wasmtime::component::Component;
use wasmtime::Engine;

/// The release of the contract this host speaks, as `major.minor`: a
/// component built against any `0.4.y` loads (additions bump the patch
/// while at 0.x), one built against another minor does not.
pub const SPOKEN: &str = "0.4";

/// The first `flumen:pipeline` version among the component's imports and
/// exports that this host does not speak, if any.
pub fn unspoken(component: &Component, engine: &Engine) -> Option<String> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    for name in names {
        if let Some(version) = pipeline_version(name) {
            if !speaks(version) {
                return Some(version.to_owned());
            }
        }
    }
    None
}

/// The version in an import or export name of the flumen contract
/// (`flumen:pipeline/log@0.2.0` → `0.2.0`).
fn pipeline_version(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("flumen:pipeline/")?;
    rest.split_once('@').map(|(_, version)| version)
}

/// Whether `version` is `SPOKEN` or a patch of it.
fn speaks(version: &str) -> bool {
    version
        .strip_prefix(SPOKEN)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_of_contract_names_only() {
        assert_eq!(pipeline_version("flumen:pipeline/log@0.2.0"), Some("0.2.0"));
        assert_eq!(pipeline_version("wasi:io/streams@0.2.0"), None);
        assert_eq!(pipeline_version("flumen:pipeline/log"), None);
    }

    #[test]
    fn speaks_every_patch_of_its_minor_and_nothing_else() {
        assert!(speaks("0.4.0"));
        assert!(speaks("0.4.7"));
        assert!(!speaks("0.3.0"));
        assert!(!speaks("0.2.2"));
        assert!(!speaks("0.1.0"));
        assert!(!speaks("0.40.0"));
        assert!(!speaks("1.0.0"));
    }
}

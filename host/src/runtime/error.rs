//! What can go wrong with a guest, from loading it to calling it.

use std::path::PathBuf;

/// Failure to load, check or run a guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The component file could not be read or compiled.
    #[error("component `{name}` ({path}): cannot load: {reason}")]
    Load {
        /// Component name from the config.
        name: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The component does not implement the world it is configured as.
    #[error("component `{name}` ({path}) is not a flumen {world} (it must implement the `flumen:pipeline/{world}` world of wit/): {reason}")]
    WrongWorld {
        /// Component name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// `interceptor` or `sink`.
        world: &'static str,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component was built against a release of the contract this
    /// host does not speak.
    #[error("component `{name}` ({path}) was built against contract flumen:pipeline@{found}, and this flumen speaks flumen:pipeline@{spoken}.x, which passes every batch in columns and takes compact answers; rebuild it against this release's wit/, reading the batch and answering with flumen-guest-common in Rust or the helper in guests/helpers/ in Python, JavaScript and C (docs/guests.md, \"Contract versions\")", spoken = super::contract_version::SPOKEN)]
    OldContract {
        /// Component name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The contract version it names.
        found: String,
    },
    /// A grant could not be given (a directory that cannot be opened, a
    /// variable that is not set).
    #[error("component `{name}`: {reason}")]
    Grant {
        /// Component name.
        name: String,
        /// What and why.
        reason: String,
    },
    /// Instantiation failed (for example a start function trapped).
    #[error("component `{name}`: cannot instantiate: {reason}")]
    Instantiate {
        /// Component name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The guest's `init` refused its configuration.
    #[error("component `{name}` refused its config: {message}")]
    InitRefused {
        /// Component name.
        name: String,
        /// The guest's message.
        message: String,
    },
    /// The call trapped (panic, out-of-bounds, deadline, memory cap).
    #[error("component `{name}` trapped: {reason}")]
    Trap {
        /// Component name.
        name: String,
        /// The trap, with the guest's backtrace when available.
        reason: String,
    },
    /// The guest returned an error for the whole call.
    #[error("component `{name}` failed the batch: {message}")]
    Failed {
        /// Component name.
        name: String,
        /// The guest's message.
        message: String,
    },
    /// The call went over one of the component's budgets
    /// ([`crate::config::Budgets`]): it fails like a trap.
    #[error("component `{name}` went over a budget: {message}")]
    OverBudget {
        /// Component name.
        name: String,
        /// Which budget, by how much, and what happens.
        message: String,
    },
    /// The guest failed the call after the schema registry could not
    /// answer it: an outage, retried until the registry is back, never a
    /// reason to give events up.
    #[error("component `{name}` is waiting for the schema registry: {message}")]
    Unavailable {
        /// Component name.
        name: String,
        /// What the registry did, and the guest's message.
        message: String,
    },
    /// The guest broke the contract: wrong number of verdicts, unknown route.
    #[error("component `{name}` broke the contract: {message}")]
    Contract {
        /// Component name.
        name: String,
        /// What it did.
        message: String,
    },
}

/// Turns a wasmtime error from a call into a guest error, keeping the detail
/// (trap code, deadline, guest backtrace) an operator needs.
pub(crate) fn trap(name: &str, e: wasmtime::Error) -> GuestError {
    GuestError::Trap {
        name: name.to_owned(),
        reason: format!("{e:#}"),
    }
}

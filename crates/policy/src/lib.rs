//! The changegate policy: every rule of the Change Control Policy as data.
//!
//! The seed policy document is encoded in `default-policy.toml`, compiled into this crate and used
//! whenever no user policy is given. A user file overrides it key by key (see [`load`]). Loading
//! happens in two steps, as in cargo-deny: the TOML text is merged and deserialised into the typed
//! [`Policy`] (scalar checks such as durations, times and time zones happen during deserialisation,
//! so they know their path), then [`validate`] checks cross references and collects *every*
//! problem at once. Each problem becomes a [`Diagnostic`] with a stable code, the file, line and
//! column it comes from, and a hint.
//!
//! This crate does no IO beyond what the caller hands it: the loader takes text, not paths.
#![deny(missing_docs)]

mod diag;
pub mod facets;
mod load;
mod model;
mod types;
mod validate;

pub use diag::{CODES, Diagnostic, Location, Severity};
pub use load::{DEFAULT_POLICY_NAME, DEFAULT_POLICY_TOML, LoadError, Loaded, load, load_default};
pub use model::*;
pub use types::*;

/// JSON Schema of the policy file, as a pretty-printed JSON document.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Policy);
    serde_json::to_string_pretty(&schema).expect("a schema always serialises")
}

//! The changegate policy: every rule of the Change Control Policy as data.
//!
//! The seed policy document is encoded in `default-policy.toml`, compiled into this crate and used
//! whenever no user policy is given. A user file overrides it key by key (see [`load`]). Loading
//! happens in steps, as in cargo-deny: the TOML text is merged over the default, a raw pass checks
//! the merged document against the policy's JSON Schema (unknown and missing keys, types,
//! durations, times, zones, dates), the document is deserialised into the typed [`Policy`], and
//! validation checks cross references. Each step collects *every* problem it finds. Each problem
//! becomes a [`Diagnostic`] with a stable [`DiagCode`], the file, line and column it comes from,
//! and a hint.
//!
//! Modules, in the order a policy goes through them: `source` (files, spans, paths → locations),
//! `raw` (the schema pass), `model` (the typed policy, one module per section), `validate`
//! (cross references), `load` (runs them in order); `diag` (diagnostics and their codes),
//! `types` (scalar types), [`facets`] (every facet code the classifier emits).
//!
//! This crate does no IO beyond what the caller hands it: the loader takes text, not paths.
#![deny(missing_docs)]

mod diag;
pub mod facets;
mod load;
mod model;
mod raw;
mod source;
mod suggest;
mod types;
mod validate;

pub use diag::{DiagCode, Diagnostic, Location, Severity};
pub use load::{DEFAULT_POLICY_NAME, DEFAULT_POLICY_TOML, LoadError, Loaded, load, load_default};
pub use model::*;
pub use types::*;

/// JSON Schema of the policy file, as a pretty-printed JSON document.
pub fn json_schema() -> String {
    serde_json::to_string_pretty(raw::schema()).expect("a schema always serialises")
}

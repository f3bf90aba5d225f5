//! One reason of a decision: a stable code, a sentence for people, whether it denies, and the
//! inputs that produced it as JSON (so an auditor can re-check it without re-running the gate).

use serde::{Deserialize, Serialize};

use crate::codes::Code;

/// One rule that applied to a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code.
    pub code: Code,
    /// For people.
    pub message: String,
    /// Whether this reason denies the deploy.
    pub denies: bool,
    /// The inputs of the rule (roles, people, commits, times, policy values).
    pub details: serde_json::Value,
}

impl Reason {
    /// A denying reason.
    pub fn deny(code: Code, message: impl Into<String>, details: serde_json::Value) -> Self {
        Reason {
            code,
            message: message.into(),
            denies: true,
            details,
        }
    }
    /// A reason that does not deny.
    pub fn info(code: Code, message: impl Into<String>, details: serde_json::Value) -> Self {
        Reason {
            code,
            message: message.into(),
            denies: false,
            details,
        }
    }
}

/// Sort reasons into their canonical order: denials first, then by code, message and details
/// (details are serialised only to break ties), so equal inputs give byte-identical output.
pub(crate) fn sort(reasons: &mut [Reason]) {
    reasons.sort_by(|a, b| {
        (!a.denies, a.code.as_str(), a.message.as_str())
            .cmp(&(!b.denies, b.code.as_str(), b.message.as_str()))
            .then_with(|| a.details.to_string().cmp(&b.details.to_string()))
    });
}

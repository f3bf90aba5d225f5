//! One reason of a decision: a stable code, a sentence for people, whether it denies, and the
//! inputs that produced it as JSON (so an auditor can re-check it without re-running the gate).

use serde::Serialize;

use crate::codes::Code;

/// One rule that applied to a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The sort key: denials first, then by code, message and details, so equal inputs give
    /// byte-identical output.
    pub(crate) fn sort_key(&self) -> (bool, &'static str, &str, String) {
        (
            !self.denies,
            self.code.as_str(),
            self.message.as_str(),
            self.details.to_string(),
        )
    }
}

/// Sort reasons into their canonical order.
pub(crate) fn sort(reasons: &mut [Reason]) {
    reasons.sort_by_cached_key(|r| {
        let (a, b, c, d) = r.sort_key();
        (a, b, c.to_string(), d)
    });
}

//! Diagnostics: every problem found in a policy file, with a stable code, where it is, and a hint.

use std::fmt::Write as _;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is rejected.
    Error,
    /// The policy loads, but something is probably not what the author meant.
    Warning,
}

/// Where in a file a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// File name as given to the loader (or `<built-in default policy>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The text of that line.
    #[serde(skip)]
    pub line_text: String,
    /// Length of the marked range on that line, in characters (at least 1).
    #[serde(skip)]
    pub width: usize,
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable kebab-case code, e.g. `unknown-role`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Dotted path of the offending value, e.g. `matrices.api-surface.rows[0].roles[1]`.
    pub path: String,
    /// File, line and column, when the value comes from a file.
    pub location: Option<Location>,
    /// How to fix it.
    pub help: Option<String>,
}

/// Every diagnostic code with its meaning (documented in docs/policy-reference.md).
pub const CODES: &[(&str, &str)] = &[
    ("toml-syntax", "The file is not valid TOML."),
    (
        "invalid-value",
        "A value has the wrong type or format, or a key is unknown.",
    ),
    (
        "unknown-role",
        "A role is used that is not declared under [roles].",
    ),
    (
        "unknown-category",
        "A category level is used that no [categories] entry has.",
    ),
    ("duplicate-category-level", "Two categories share a level."),
    ("unknown-facet", "A facet code the classifier never emits."),
    (
        "facet-mapped-twice",
        "A facet appears in more than one matrix row or rule.",
    ),
    (
        "facet-unmapped",
        "A facet the classifier emits has no rule; it is treated as unclassified.",
    ),
    (
        "window-end-before-start",
        "A window or slot ends at or before its start.",
    ),
    ("empty-days", "A slot lists no days."),
    (
        "bad-occurrence",
        "A maintenance window occurrence is not 1 to 5, or the fallback is not later.",
    ),
    (
        "window-too-short",
        "The maintenance window is shorter than its maximum change duration.",
    ),
    (
        "freeze-end-before-start",
        "A dated freeze ends before it starts.",
    ),
    (
        "unknown-plan",
        "A category names a rollout plan that does not exist.",
    ),
    (
        "bad-plan",
        "A rollout plan has no steps, a weight outside 1-100, decreasing weights, or does not end at 100%.",
    ),
    (
        "trigger-needs-window",
        "A count or sustained trigger has no window.",
    ),
    (
        "bad-threshold",
        "A threshold is negative or a percentage above 100.",
    ),
    (
        "bad-target",
        "A report metric has an op without a target or the reverse.",
    ),
    (
        "unknown-severity",
        "A freeze names an incident severity the emergency section does not list.",
    ),
    (
        "no-emergency-category",
        "No category has kind = \"emergency\" and window = \"emergency\".",
    ),
    ("unused-role", "A declared role is never referenced."),
    (
        "empty-authority",
        "A rollback authority set lists no roles.",
    ),
];

impl Diagnostic {
    /// Render for a terminal, rustc style, without colour.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{sev}[{}]: {}", self.code, self.message);
        if let Some(loc) = &self.location {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            let _ = writeln!(out, "{pad}--> {}:{}:{}", loc.file, loc.line, loc.column);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{num} | {}", loc.line_text);
            let _ = writeln!(
                out,
                "{pad} | {}{}",
                " ".repeat(loc.column.saturating_sub(1)),
                "^".repeat(loc.width.max(1))
            );
        }
        if !self.path.is_empty() {
            let _ = writeln!(out, "  = at: {}", self.path);
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (code, _) in super::CODES {
            assert!(seen.insert(code), "duplicate {code}");
        }
    }
}

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
    /// Stable code, e.g. `unknown-role` (serialised as that string).
    pub code: DiagCode,
    /// What is wrong.
    pub message: String,
    /// Dotted path of the offending value, e.g. `matrices.api-surface.rows[0].roles[1]`.
    pub path: String,
    /// File, line and column, when the value comes from a file.
    pub location: Option<Location>,
    /// How to fix it.
    pub help: Option<String>,
}

changegate_codes::codes! {
    /// Every code a policy diagnostic carries (documented in docs/policy-reference.md). Whether a
    /// code is an error or a warning is [`DiagCode::severity`].
    pub enum DiagCode in "policy-diagnostic" {
        /// The file is not valid TOML.
        TomlSyntax = "toml-syntax",
        /// A key that its table does not accept (a typo, or a key of another table).
        UnknownKey = "unknown-key",
        /// A required key is missing.
        MissingKey = "missing-key",
        /// A value has the wrong type (a string where a number belongs, a number out of range, …).
        WrongType = "wrong-type",
        /// A value is not one of the names its key accepts (a `kind`, `window`, `metric`, weekday, …).
        UnknownValue = "unknown-value",
        /// A duration or calendar period that does not parse, is inexact or is negative.
        BadDuration = "bad-duration",
        /// A local time that is not `HH:MM` between 00:00 and 24:00.
        BadTime = "bad-time",
        /// A date that is not `YYYY-MM-DD`, or a yearly day that is not `MM-DD`.
        BadDate = "bad-date",
        /// A time zone that is not an IANA name in the bundled tz database.
        BadTimezone = "bad-timezone",
        /// A role is used that is not declared under [roles].
        UnknownRole = "unknown-role",
        /// A category level is used that no [categories] entry has.
        UnknownCategory = "unknown-category",
        /// Two categories share a level.
        DuplicateCategoryLevel = "duplicate-category-level",
        /// A facet code the classifier never emits.
        UnknownFacet = "unknown-facet",
        /// A facet appears in more than one matrix row or rule.
        FacetMappedTwice = "facet-mapped-twice",
        /// A facet the classifier emits has no rule; it is treated as unclassified.
        FacetUnmapped = "facet-unmapped",
        /// A window or slot ends at or before its start.
        WindowEndBeforeStart = "window-end-before-start",
        /// A slot lists no days.
        EmptyDays = "empty-days",
        /// A maintenance window occurrence is not 1 to 5, or the fallback is not later.
        BadOccurrence = "bad-occurrence",
        /// The maintenance window is shorter than its maximum change duration.
        WindowTooShort = "window-too-short",
        /// A dated freeze ends before it starts.
        FreezeEndBeforeStart = "freeze-end-before-start",
        /// A category names a rollout plan that does not exist.
        UnknownPlan = "unknown-plan",
        /// A rollout plan has no steps, a weight outside 1-100, decreasing weights, or does not end at 100%.
        BadPlan = "bad-plan",
        /// A count or sustained trigger has no window.
        TriggerNeedsWindow = "trigger-needs-window",
        /// A threshold is negative, a percentage above 100, or a CVSS score outside 0-10.
        BadThreshold = "bad-threshold",
        /// A report metric has an op without a target or the reverse.
        BadTarget = "bad-target",
        /// A freeze or an emergency eligibility names an incident severity the emergency section does not list.
        UnknownSeverity = "unknown-severity",
        /// No category has kind = "emergency" and window = "emergency".
        NoEmergencyCategory = "no-emergency-category",
        /// A declared role is never referenced.
        UnusedRole = "unused-role",
        /// A rollback authority set lists no roles.
        EmptyAuthority = "empty-authority",
        /// An emergency eligibility names an incident kind that `emergency.incident_kinds` does not list.
        UnknownIncidentKind = "unknown-incident-kind",
        /// No incident is eligible for an emergency, or an eligibility entry states no condition (it would match every incident).
        EligibilityUnrestricted = "eligibility-unrestricted",
        /// The audit retention is shorter than the 2-year compliance minimum without an acknowledgement of exactly that period.
        RetentionBelowMinimum = "retention-below-minimum",
        /// A name that refers to another part of the policy (an exception reason, a lead time, a checklist item, an on-call rotation) that it does not declare.
        UnknownReference = "unknown-reference",
        /// An on-call rotation lists no members, or one of its shifts ends at or before its start.
        BadRotation = "bad-rotation",
        /// A verification check names no `[checklist.post]` item, has no limit (`below`, `at_least` or `rollout_weight`), or an empty query.
        BadVerificationCheck = "bad-verification-check",
        /// A `[people]` GitHub login that is not a GitHub login, or one given to two people.
        BadGithubLogin = "bad-github-login",
        /// An `[integrations.github] teams` entry that is not `org/team-slug`, or maps a team no role lists as a `team:NAME` holder.
        BadGithubTeam = "bad-github-team",
        /// A notification route names a channel `[notifications.channels]` does not declare, a channel lacks what its kind needs (an e-mail channel without recipients), or a value is malformed.
        BadNotificationChannel = "bad-notification-channel",
    }
}

impl DiagCode {
    /// Whether a diagnostic with this code rejects the policy or only warns.
    pub fn severity(self) -> Severity {
        use DiagCode as C;
        match self {
            C::FacetUnmapped | C::UnusedRole => Severity::Warning,
            C::TomlSyntax
            | C::UnknownKey
            | C::MissingKey
            | C::WrongType
            | C::UnknownValue
            | C::BadDuration
            | C::BadTime
            | C::BadDate
            | C::BadTimezone
            | C::UnknownRole
            | C::UnknownCategory
            | C::DuplicateCategoryLevel
            | C::UnknownFacet
            | C::FacetMappedTwice
            | C::WindowEndBeforeStart
            | C::EmptyDays
            | C::BadOccurrence
            | C::WindowTooShort
            | C::FreezeEndBeforeStart
            | C::UnknownPlan
            | C::BadPlan
            | C::TriggerNeedsWindow
            | C::BadThreshold
            | C::BadTarget
            | C::UnknownSeverity
            | C::NoEmergencyCategory
            | C::EmptyAuthority
            | C::UnknownIncidentKind
            | C::EligibilityUnrestricted
            | C::RetentionBelowMinimum
            | C::UnknownReference
            | C::BadRotation
            | C::BadVerificationCheck
            | C::BadGithubLogin
            | C::BadGithubTeam
            | C::BadNotificationChannel => Severity::Error,
        }
    }
}

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
    use super::DiagCode;

    #[test]
    fn codes_are_well_formed_and_unique() {
        let entries = <DiagCode as changegate_codes::CodeSet>::entries();
        let problems = changegate_codes::problems(&entries, &[]);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// JSON output (`policy validate --format json`, the API) carries the code as its string.
    #[test]
    fn a_code_serialises_as_its_string() {
        let d = super::Diagnostic {
            severity: DiagCode::UnknownRole.severity(),
            code: DiagCode::UnknownRole,
            message: "unknown role `x`".into(),
            path: "meta.owner".into(),
            location: None,
            help: None,
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["code"], "unknown-role");
        assert_eq!(json["severity"], "error");
    }

    #[test]
    fn only_findings_that_keep_the_policy_usable_are_warnings() {
        let warnings: Vec<&str> = DiagCode::ALL
            .iter()
            .filter(|c| c.severity() == super::Severity::Warning)
            .map(|c| c.as_str())
            .collect();
        assert_eq!(warnings, ["facet-unmapped", "unused-role"]);
    }
}

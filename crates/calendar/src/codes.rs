//! Every reason code the calendar emits, with what it means. Freeze reasons take their code from
//! the freeze's key in the policy (`[freezes.weekend]` → `freeze-weekend`), so a policy that adds
//! a freeze adds a code; [`freeze_code`] builds it.

/// Whether a reason can deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Emitted only with `denies = false`.
    Informs,
    /// Emitted with `denies = true` (or `false` when an exception or emergency overrides it).
    Denies,
}

/// `(code, effect, meaning)` of every fixed reason code.
pub const CODES: &[(&str, Effect, &str)] = &[
    (
        "window-any-time",
        Effect::Informs,
        "the category may ship at any time (any-time window class)",
    ),
    (
        "emergency-override",
        Effect::Informs,
        "emergency category: allowed at any time, overriding every restriction",
    ),
    (
        "window-standard-open",
        Effect::Informs,
        "the whole duration is inside a standard window",
    ),
    (
        "window-closed",
        Effect::Denies,
        "the start is outside every standard window",
    ),
    (
        "window-overrun",
        Effect::Denies,
        "starts inside a standard window but runs past its end",
    ),
    (
        "window-preferred",
        Effect::Informs,
        "the whole duration is inside a preferred window",
    ),
    (
        "window-not-preferred",
        Effect::Informs,
        "allowed or not, the change is not inside a preferred window",
    ),
    (
        "maintenance-open",
        Effect::Informs,
        "the whole duration is inside the maintenance occurrence",
    ),
    (
        "maintenance-closed",
        Effect::Denies,
        "the start is outside the (primary or fallback) maintenance occurrence",
    ),
    (
        "maintenance-overrun",
        Effect::Denies,
        "runs past the maintenance window's end or longer than its max_duration",
    ),
    (
        "maintenance-no-fallback",
        Effect::Denies,
        "fallback requested but the policy has no fallback_nth",
    ),
    (
        "maintenance-announced",
        Effect::Informs,
        "the occurrence was announced at least announce_lead ahead",
    ),
    (
        "maintenance-not-announced",
        Effect::Denies,
        "the occurrence was announced less than announce_lead ahead",
    ),
    (
        "maintenance-announcement-unchecked",
        Effect::Informs,
        "no announcement time was given; it was not checked",
    ),
    (
        "exception-applied",
        Effect::Informs,
        "a valid exception lifts the window and calendar-freeze denials",
    ),
    (
        "exception-not-needed",
        Effect::Informs,
        "a valid exception was carried but nothing needed lifting",
    ),
    (
        "exception-not-applicable",
        Effect::Informs,
        "the policy grants no exceptions for this category",
    ),
    (
        "exception-unknown-reason",
        Effect::Informs,
        "the exception's reason is not in [exceptions.reasons]",
    ),
    (
        "exception-missing-approval",
        Effect::Informs,
        "not every required approver role approved the exception",
    ),
    (
        "incident-remediation",
        Effect::Informs,
        "an incident freeze holds, but this change is the incident's remediation",
    ),
    (
        "category-unknown",
        Effect::Denies,
        "the policy has no category with this level (fail closed)",
    ),
    (
        "duration-invalid",
        Effect::Denies,
        "the duration is negative",
    ),
];

/// The reason code of the freeze with this policy key.
pub fn freeze_code(key: &str) -> String {
    format!("freeze-{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_distinct_from_freeze_codes() {
        let mut seen = std::collections::HashSet::new();
        for (code, _, meaning) in CODES {
            assert!(seen.insert(*code), "duplicate {code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code}"
            );
            assert!(
                !code.starts_with("freeze-"),
                "{code} collides with freeze codes"
            );
            assert!(!meaning.is_empty());
        }
    }
}

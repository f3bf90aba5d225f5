//! Every reason code the calendar emits, with what it means. Freeze reasons take their code from
//! the freeze's key in the policy (`[freezes.weekend]` → `freeze-weekend`), so a policy that adds
//! a freeze adds a code: such a reason's code is [`ReasonCode::Freeze`] with the key, of the
//! family [`Code::Freeze`]; every other reason's is [`ReasonCode::Fixed`].

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

changegate_codes::codes! {
    /// A reason code of the calendar (freezes as one family, [`Code::Freeze`]).
    pub enum Code in "calendar" {
        /// The category may ship at any time (any-time window class).
        WindowAnyTime = "window-any-time",
        /// Emergency category: allowed at any time, overriding every restriction.
        EmergencyOverride = "emergency-override",
        /// The whole duration is inside a standard window.
        WindowStandardOpen = "window-standard-open",
        /// The start is outside every standard window.
        WindowClosed = "window-closed",
        /// The change starts inside a standard window but runs past its end.
        WindowOverrun = "window-overrun",
        /// The whole duration is inside a preferred window.
        WindowPreferred = "window-preferred",
        /// Allowed or not, the change is not inside a preferred window.
        WindowNotPreferred = "window-not-preferred",
        /// The whole duration is inside the maintenance occurrence.
        MaintenanceOpen = "maintenance-open",
        /// The start is outside the (primary or fallback) maintenance occurrence.
        MaintenanceClosed = "maintenance-closed",
        /// The change runs past the maintenance window's end or longer than its max_duration.
        MaintenanceOverrun = "maintenance-overrun",
        /// A fallback was requested but the policy has no fallback_nth.
        MaintenanceNoFallback = "maintenance-no-fallback",
        /// The occurrence was announced at least announce_lead ahead.
        MaintenanceAnnounced = "maintenance-announced",
        /// The occurrence was announced less than announce_lead ahead.
        MaintenanceNotAnnounced = "maintenance-not-announced",
        /// No announcement time was given, so it was not checked.
        MaintenanceAnnouncementUnchecked = "maintenance-announcement-unchecked",
        /// A valid exception lifts the window and calendar-freeze denials.
        ExceptionApplied = "exception-applied",
        /// A valid exception was carried but nothing needed lifting.
        ExceptionNotNeeded = "exception-not-needed",
        /// The policy grants no exceptions for this category.
        ExceptionNotApplicable = "exception-not-applicable",
        /// The exception's reason is not in [exceptions.reasons].
        ExceptionUnknownReason = "exception-unknown-reason",
        /// Not every required approver role approved the exception.
        ExceptionMissingApproval = "exception-missing-approval",
        /// An incident freeze holds, but this change is the incident's remediation.
        IncidentRemediation = "incident-remediation",
        /// The policy has no category with this level (fail closed).
        CategoryUnknown = "category-unknown",
        /// The duration is negative.
        DurationInvalid = "duration-invalid",
        /// The freeze `[freezes.<key>]` overlaps the change, or its incident is active; the reason's code is `freeze-<key>` (`freeze-weekend`, `freeze-holiday`, `freeze-incident` in the seed).
        Freeze = "freeze",
    }
}

/// Whether a reason can deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Emitted only with `denies = false`.
    Informs,
    /// Emitted with `denies = true` (or `false` when an exception or emergency overrides it).
    Denies,
}

impl Code {
    /// Whether a reason with this code can deny.
    pub const fn effect(self) -> Effect {
        use Code as C;
        match self {
            C::WindowClosed
            | C::WindowOverrun
            | C::MaintenanceClosed
            | C::MaintenanceOverrun
            | C::MaintenanceNoFallback
            | C::MaintenanceNotAnnounced
            | C::CategoryUnknown
            | C::DurationInvalid
            | C::Freeze => Effect::Denies,
            C::WindowAnyTime
            | C::EmergencyOverride
            | C::WindowStandardOpen
            | C::WindowPreferred
            | C::WindowNotPreferred
            | C::MaintenanceOpen
            | C::MaintenanceAnnounced
            | C::MaintenanceAnnouncementUnchecked
            | C::ExceptionApplied
            | C::ExceptionNotNeeded
            | C::ExceptionNotApplicable
            | C::ExceptionUnknownReason
            | C::ExceptionMissingApproval
            | C::IncidentRemediation => Effect::Informs,
        }
    }
}

const FREEZE_PREFIX: &str = "freeze-";

/// The code of one calendar reason as it is rendered: a fixed [`Code`], or a freeze named by its
/// policy key. Serializes and prints as the string (`window-closed`, `freeze-weekend`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// A fixed code (any but [`Code::Freeze`], which is rendered through [`ReasonCode::Freeze`]).
    Fixed(Code),
    /// The freeze `[freezes.<key>]`, rendered `freeze-<key>`.
    Freeze(String),
}

impl ReasonCode {
    /// The code of the freeze with this policy key.
    pub fn freeze(key: impl Into<String>) -> Self {
        ReasonCode::Freeze(key.into())
    }

    /// The code's family: the fixed code, or [`Code::Freeze`].
    pub fn code(&self) -> Code {
        match self {
            ReasonCode::Fixed(c) => *c,
            ReasonCode::Freeze(_) => Code::Freeze,
        }
    }

    /// The freeze's policy key, for a freeze reason.
    pub fn freeze_key(&self) -> Option<&str> {
        match self {
            ReasonCode::Freeze(k) => Some(k),
            ReasonCode::Fixed(_) => None,
        }
    }

    /// The rendered code.
    pub fn as_str(&self) -> Cow<'static, str> {
        match self {
            ReasonCode::Fixed(c) => Cow::Borrowed(c.as_str()),
            ReasonCode::Freeze(k) => Cow::Owned(format!("{FREEZE_PREFIX}{k}")),
        }
    }
}

impl From<Code> for ReasonCode {
    fn from(c: Code) -> Self {
        ReasonCode::Fixed(c)
    }
}

impl PartialEq<Code> for ReasonCode {
    fn eq(&self, other: &Code) -> bool {
        matches!(self, ReasonCode::Fixed(c) if c == other)
    }
}

impl PartialEq<str> for ReasonCode {
    fn eq(&self, other: &str) -> bool {
        match self {
            ReasonCode::Fixed(c) => c.as_str() == other,
            ReasonCode::Freeze(k) => other.strip_prefix(FREEZE_PREFIX) == Some(k.as_str()),
        }
    }
}

impl PartialEq<&str> for ReasonCode {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.as_str())
    }
}

impl std::str::FromStr for ReasonCode {
    type Err = changegate_codes::UnknownCode;
    /// A fixed code, else `freeze-<key>` with a non-empty key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match (s.parse::<Code>(), s.strip_prefix(FREEZE_PREFIX)) {
            (Ok(Code::Freeze), _) | (Err(_), None | Some("")) => {
                Err(changegate_codes::UnknownCode {
                    domain: "calendar",
                    given: s.to_string(),
                })
            }
            (Ok(c), _) => Ok(ReasonCode::Fixed(c)),
            (Err(_), Some(key)) => Ok(ReasonCode::Freeze(key.to_string())),
        }
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_codes::CodeSet;

    #[test]
    fn codes_are_unique_kebab_case_documented_and_distinct_from_freeze_codes() {
        let problems = changegate_codes::problems(&Code::entries(), &[]);
        assert!(problems.is_empty(), "{problems:#?}");
        for c in Code::ALL {
            assert!(
                !c.as_str().starts_with(FREEZE_PREFIX),
                "{c} collides with freeze codes"
            );
        }
    }

    #[test]
    fn every_code_is_documented_in_docs_window_md() {
        let doc = include_str!("../../../docs/window.md");
        for c in Code::ALL {
            let row = match c {
                Code::Freeze => "| `freeze-<key>` | yes |".to_string(),
                c => format!(
                    "| `{c}` | {} |",
                    match c.effect() {
                        Effect::Denies => "yes",
                        Effect::Informs => "no",
                    }
                ),
            };
            assert!(
                doc.contains(&row),
                "docs/window.md lacks a row starting {row}"
            );
        }
    }

    #[test]
    fn reason_codes_render_parse_and_compare_as_strings() {
        let weekend = ReasonCode::freeze("weekend");
        assert_eq!(weekend.to_string(), "freeze-weekend");
        assert_eq!(
            serde_json::to_string(&weekend).unwrap(),
            "\"freeze-weekend\""
        );
        assert_eq!("freeze-weekend".parse::<ReasonCode>(), Ok(weekend.clone()));
        assert!(weekend == "freeze-weekend" && weekend != "freeze-holiday");
        assert_eq!(
            (weekend.code(), weekend.freeze_key()),
            (Code::Freeze, Some("weekend"))
        );
        for c in Code::ALL.iter().filter(|c| **c != Code::Freeze) {
            let r = ReasonCode::from(*c);
            assert_eq!(r.to_string().parse::<ReasonCode>(), Ok(r.clone()));
            assert!(r == *c && r == c.as_str() && r.freeze_key().is_none());
        }
        for bad in ["freeze", "freeze-", "windows-closed"] {
            assert!(bad.parse::<ReasonCode>().is_err(), "{bad}");
        }
        assert_eq!(
            format!("[{:<16}]", ReasonCode::from(Code::WindowClosed)),
            "[window-closed   ]"
        );
    }
}

//! Shared helpers for the calendar tests.
#![allow(dead_code)]

use changegate_calendar::{ActiveIncident, ExceptionGrant, MaintenanceSlot, WindowRequest};
use changegate_policy::Policy;
use jiff::{SignedDuration, Timestamp};

pub fn seed() -> Policy {
    changegate_policy::load_default().policy
}

pub fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

pub fn dur(s: &str) -> SignedDuration {
    s.parse::<changegate_policy::Dur>()
        .unwrap_or_else(|e| panic!("{e}"))
        .get()
}

pub fn req(category: u8, at: &str, duration: &str) -> WindowRequest {
    WindowRequest {
        category,
        start: ts(at),
        duration: dur(duration),
        exception: None,
        incidents: Vec::new(),
        maintenance: MaintenanceSlot::Primary,
        announced_at: None,
    }
}

pub fn grant(reason: &str, roles: &[&str]) -> ExceptionGrant {
    ExceptionGrant {
        reason: reason.into(),
        approved_roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

pub fn incident(severity: &str, remediation: bool) -> ActiveIncident {
    ActiveIncident {
        id: "INC-1".into(),
        severity: severity.into(),
        remediated_by_this_change: remediation,
    }
}

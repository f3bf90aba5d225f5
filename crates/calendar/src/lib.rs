//! Change-window calendar: is a change of category N allowed to run from `start` for `duration`,
//! why or why not, and when is the next allowed slot? Pure: every input, including "now", is an
//! argument.
//!
//! API CONTRACT (used by the gate crate; extend, do not break): [`WindowRequest`], [`check`],
//! [`next_slot`], [`WindowDecision`], [`Reason`], [`business_days_between`], [`add_business_days`].
#![deny(missing_docs)]

use changegate_policy::{Level, Policy};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Which maintenance occurrence a category-3 change targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceSlot {
    /// The regular occurrence (first Tuesday in the seed).
    #[default]
    Primary,
    /// The fallback occurrence (second Tuesday), used when the primary window failed.
    Fallback,
}

/// An active incident, as far as the calendar cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveIncident {
    /// Incident id.
    pub id: String,
    /// Severity, e.g. `P1`.
    pub severity: String,
    /// Whether the change being checked is this incident's remediation.
    pub remediated_by_this_change: bool,
}

/// An approved out-of-window exception carried by the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionGrant {
    /// Reason id from `[exceptions.reasons]`, e.g. `security-patch`.
    pub reason: String,
    /// Roles that approved it (checked against `exceptions.approvers`).
    pub approved_roles: Vec<String>,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowRequest {
    /// Category level of the change.
    pub category: Level,
    /// When the deployment would start.
    pub start: Timestamp,
    /// How long it runs; the whole of it must be inside allowed time.
    pub duration: SignedDuration,
    /// Exception carried by the change, if any.
    pub exception: Option<ExceptionGrant>,
    /// Incidents active at `start`.
    pub incidents: Vec<ActiveIncident>,
    /// Category 3: which maintenance occurrence.
    pub maintenance: MaintenanceSlot,
    /// Category 3: when the maintenance window was announced (`None` = not checked).
    pub announced_at: Option<Timestamp>,
}

/// One rule that applied to the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable kebab-case code, e.g. `window-weekend-freeze`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Whether this reason denies.
    pub denies: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDecision {
    /// Allowed for the whole duration.
    pub allowed: bool,
    /// Every rule that applied, allowing and denying.
    pub reasons: Vec<Reason>,
    /// Inside the preferred window (category 2 only).
    pub preferred: Option<bool>,
    /// When denied: the earliest start at which the change fits (within a one-year horizon).
    pub next_slot: Option<Timestamp>,
}

/// Check a request against the policy's windows.
pub fn check(policy: &Policy, req: &WindowRequest) -> WindowDecision {
    let _ = (policy, req);
    unimplemented!("calendar::check is being written")
}

/// The earliest start at or after `req.start` at which the change fits entirely inside allowed
/// time, searching up to `horizon` ahead.
pub fn next_slot(policy: &Policy, req: &WindowRequest, horizon: SignedDuration) -> Option<Timestamp> {
    let _ = (policy, req, horizon);
    unimplemented!("calendar::next_slot is being written")
}

/// Business days from `from` to `to` under the policy's business-day calendar (holidays
/// excluded): the number of business-day starts in `(from, to]`.
pub fn business_days_between(policy: &Policy, from: Timestamp, to: Timestamp) -> i64 {
    let _ = (policy, from, to);
    unimplemented!("calendar::business_days_between is being written")
}

/// `at` moved forward by `days` business days.
pub fn add_business_days(policy: &Policy, at: Timestamp, days: u32) -> Timestamp {
    let _ = (policy, at, days);
    unimplemented!("calendar::add_business_days is being written")
}

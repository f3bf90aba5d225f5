//! Restricted periods and out-of-window exceptions (`[freezes]`, `[exceptions]`).

use super::{DayTime, Level, RoleId};
use crate::types::{Date, MonthDay, Tz};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A restricted period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Freeze {
    /// Every week from `from` to `to` (may wrap over the week end).
    Weekly {
        /// Display name.
        name: String,
        /// Start.
        from: DayTime,
        /// End (exclusive).
        to: DayTime,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
        /// Exception reasons (under `[exceptions.reasons]`) whose approved exception lifts this
        /// freeze; empty: only an emergency does.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lifted_by: Vec<String>,
    },
    /// Every year, whole days from `start` to `end` inclusive (may wrap over the year end).
    Annual {
        /// Display name.
        name: String,
        /// First frozen day.
        start: MonthDay,
        /// Last frozen day (inclusive).
        end: MonthDay,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
        /// Exception reasons (under `[exceptions.reasons]`) whose approved exception lifts this
        /// freeze; empty: only an emergency does.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lifted_by: Vec<String>,
    },
    /// Once, whole days from `start` to `end` inclusive.
    Dates {
        /// Display name.
        name: String,
        /// First frozen day.
        start: Date,
        /// Last frozen day (inclusive).
        end: Date,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
        /// Exception reasons (under `[exceptions.reasons]`) whose approved exception lifts this
        /// freeze; empty: only an emergency does.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lifted_by: Vec<String>,
    },
    /// While an incident of one of these severities is active.
    Incident {
        /// Display name.
        name: String,
        /// Severities that freeze.
        severities: Vec<String>,
        /// Changes marked as the incident's remediation may still ship.
        except_remediation: bool,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Exception reasons (under `[exceptions.reasons]`) whose approved exception lifts this
        /// freeze; empty: only an emergency (or the incident's remediation) does.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lifted_by: Vec<String>,
    },
}

impl Freeze {
    /// Display name.
    pub fn name(&self) -> &str {
        match self {
            Freeze::Weekly { name, .. }
            | Freeze::Annual { name, .. }
            | Freeze::Dates { name, .. }
            | Freeze::Incident { name, .. } => name,
        }
    }
    /// Exception reasons whose approved exception lifts the freeze.
    pub fn lifted_by(&self) -> &[String] {
        match self {
            Freeze::Weekly { lifted_by, .. }
            | Freeze::Annual { lifted_by, .. }
            | Freeze::Dates { lifted_by, .. }
            | Freeze::Incident { lifted_by, .. } => lifted_by,
        }
    }
    /// Category levels the freeze applies to.
    pub fn applies_to(&self) -> &[Level] {
        match self {
            Freeze::Weekly { applies_to, .. }
            | Freeze::Annual { applies_to, .. }
            | Freeze::Dates { applies_to, .. }
            | Freeze::Incident { applies_to, .. } => applies_to,
        }
    }
}

/// Out-of-window exceptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    /// Roles that must all approve an exception.
    pub approvers: Vec<RoleId>,
    /// Category levels exceptions may be granted for.
    pub applies_to: Vec<Level>,
    /// Accepted reasons, keyed by id.
    pub reasons: IndexMap<String, ExceptionReason>,
}

/// A reason for an out-of-window exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionReason {
    /// Description.
    pub description: String,
    /// Minimum severity (`low`, `medium`, `high`, `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
    /// Evidence the exception must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_evidence: Option<String>,
    /// Rollout plans (`[rollout.plans.*]`) an approved exception with this reason may select
    /// instead of the one its category requires: the exception names the plan when it is
    /// requested, so its approvers approve the plan too. Empty (the seed): the category's plan
    /// always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<String>,
}

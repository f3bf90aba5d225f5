//! On-call rotations (`[on_call]`): who is on call at an instant. The incident commander is "the
//! on-call SRE or a Backend Lead" (`emergency.commander_on_call` names the rotations).

use super::DayTime;
use crate::types::{Date, Tz};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// On-call rotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnCall {
    /// Rotations by name (`sre`).
    #[serde(default)]
    pub rotations: IndexMap<String, Rotation>,
}

/// A weekly rotation: members take turns, one week each, in the order listed (a `team:NAME`
/// member expands to the team's members in the order they were set), handing over every week at
/// `handoff` local time. Explicit `shifts` override the turn order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// What the rotation covers.
    #[serde(default)]
    pub description: String,
    /// People (`alice`) or teams (`team:sre`), in turn order.
    pub members: Vec<String>,
    /// Weekly handoff: day and local time.
    pub handoff: DayTime,
    /// Time zone of the handoff; defaults to `windows.timezone`. Handoffs stay at the same local
    /// time across DST transitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// The first member's turn starts at the first handoff on or after this date; before it
    /// nobody is on call through this rotation.
    pub starts: Date,
    /// Explicit shifts (swaps, holidays): each overrides the turn order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<Shift>,
}

/// An explicit shift: `member` is on call from the handoff time on `from` until the handoff time
/// on `to` (exclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// The person on call.
    pub member: String,
    /// First day (the shift starts at the handoff time).
    pub from: Date,
    /// Last day (the shift ends at the handoff time, exclusive).
    pub to: Date,
}

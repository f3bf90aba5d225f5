//! Change windows (`[windows]`): standard and preferred slots, the maintenance window.

use crate::types::{Dur, LocalTime, Tz, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Change windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Default time zone of every window (IANA name).
    pub timezone: Tz,
    /// Standard windows: when category-2 changes may ship.
    pub standard: SlotSet,
    /// Preferred windows: reported, never deny.
    pub preferred: SlotSet,
    /// Planned maintenance window (category 3).
    pub maintenance: Maintenance,
}

/// A weekly set of slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotSet {
    /// Time zone; defaults to `windows.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// Slots.
    pub slots: Vec<Slot>,
}

/// Weekly slot: on these days, from `start` (inclusive) to `end` (exclusive), local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// Days.
    pub days: Vec<Weekday>,
    /// Start, local time.
    pub start: LocalTime,
    /// End (exclusive), local time; `24:00` is the end of the day.
    pub end: LocalTime,
    /// Remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Monthly planned maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Time zone; defaults to `windows.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// Weekday of the window.
    pub weekday: Weekday,
    /// Which occurrence of the weekday in the month (1 = first).
    pub nth: u8,
    /// Start, local time.
    pub start: LocalTime,
    /// End (exclusive), local time.
    pub end: LocalTime,
    /// No change may run longer than this inside the window.
    pub max_duration: Dur,
    /// Occurrence used when the first window failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_nth: Option<u8>,
    /// The window must be announced at least this long before it starts.
    pub announce_lead: Dur,
    /// Announcement channels.
    #[serde(default)]
    pub announce_via: Vec<String>,
    /// Customers must be notified.
    #[serde(default)]
    pub requires_customer_notification: bool,
    /// What the window is for.
    #[serde(default)]
    pub usage: Vec<String>,
}

/// A day and time of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DayTime {
    /// Day.
    pub day: Weekday,
    /// Time.
    pub time: LocalTime,
}

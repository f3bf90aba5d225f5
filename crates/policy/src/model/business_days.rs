//! Business days, lead times and SLAs (`[business_days]`, `[lead_times]`).

use super::Level;
use crate::types::{Holiday, Tz, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Business-day calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessDays {
    /// Working weekdays.
    pub days: Vec<Weekday>,
    /// Time zone in which days are counted.
    pub timezone: Tz,
    /// Non-business dates: `YYYY-MM-DD` once or `MM-DD` every year.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// Whether a lead time precedes a deploy or bounds a review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LeadKind {
    /// Must happen at least N business days before the deploy.
    #[default]
    BeforeDeploy,
    /// Must happen within N business days (a service-level target).
    Sla,
}

/// A lead time or SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadTime {
    /// Description.
    pub description: String,
    /// Business days.
    pub business_days: u32,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Kind.
    #[serde(default)]
    pub kind: LeadKind,
    /// What the document must include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_include: Vec<String>,
}

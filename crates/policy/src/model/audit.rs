//! Audit trail fields and retention (`[audit]`).
//!
//! The retention is a floor: a policy may lengthen it, never shorten it below the built-in
//! compliance minimum ([`MINIMUM_RETENTION`], the seed's "Retention: 2 years") unless it carries
//! an explicit acknowledgement ([`RetentionAcknowledgement`]) of exactly that shorter period.
//! Policy validation reports an unacknowledged short retention as `retention-below-minimum`, and
//! the store refuses to prune under one ([`Audit::below_minimum_at`]).

use crate::types::{CalSpan, Date};
use jiff::{Span, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The built-in compliance minimum of `[audit] retention`, as written in the seed policy
/// ("Retention: 2 years (compliance requirement)").
pub const MINIMUM_RETENTION: &str = "2y";

/// [`MINIMUM_RETENTION`] as a span.
pub fn minimum_retention() -> Span {
    Span::new().years(2)
}

/// Audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Retention period: records younger than this are never pruned. At least the compliance
    /// minimum of 2 years (`2y`, `24mo`, `731d`, …); a shorter period is refused unless
    /// `retention_below_minimum_acknowledged` acknowledges exactly that period.
    pub retention: CalSpan,
    /// An explicit acknowledgement that `retention` is shorter than the 2-year compliance
    /// minimum: which period, who decided, why and when. Every `audit.pruned` event that relies
    /// on it records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_below_minimum_acknowledged: Option<RetentionAcknowledgement>,
    /// Logged fields by question.
    pub fields: AuditFields,
}

/// An acknowledgement of a retention period below the compliance minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionAcknowledgement {
    /// The shorter period acknowledged; must equal `[audit] retention`, so a later edit of the
    /// retention is not covered by an old acknowledgement.
    pub retention: CalSpan,
    /// Who acknowledged it (a person, e.g. the compliance officer).
    pub by: String,
    /// Why the shorter period is acceptable.
    pub reason: String,
    /// When it was acknowledged (`YYYY-MM-DD`).
    pub date: Date,
}

impl RetentionAcknowledgement {
    /// Whether it names someone and a reason.
    pub fn is_complete(&self) -> bool {
        !self.by.trim().is_empty() && !self.reason.trim().is_empty()
    }
}

/// Whether retention `span` keeps less than `minimum` at `now`: `now - span` is later than
/// `now - minimum` (UTC calendar arithmetic). A span too long to subtract keeps everything.
pub fn shorter_at(span: Span, minimum: Span, now: Timestamp) -> bool {
    let z = now.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    match (z.checked_sub(span), z.checked_sub(minimum)) {
        (Ok(h), Ok(m)) => h.timestamp() > m.timestamp(),
        (Err(_), _) => false,
        (Ok(_), Err(_)) => true,
    }
}

/// Whether `span` keeps less than `minimum` on some day of a 4-year leap cycle, so `730d` is
/// shorter than `2y` (two years spanning a 29 February have 731 days) while `24mo` is not.
pub fn shorter_somewhere(span: Span, minimum: Span) -> bool {
    let start = jiff::civil::date(2024, 1, 1)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .expect("valid date");
    (0..1461).any(|day| {
        start
            .checked_add(Span::new().days(day))
            .is_ok_and(|z| shorter_at(span, minimum, z.timestamp()))
    })
}

impl Audit {
    /// Whether `retention` is shorter than the compliance minimum (on some day).
    pub fn below_minimum(&self) -> bool {
        shorter_somewhere(self.retention.get(), minimum_retention())
    }

    /// Whether `retention` keeps less than the compliance minimum at `now`.
    pub fn below_minimum_at(&self, now: Timestamp) -> bool {
        shorter_at(self.retention.get(), minimum_retention(), now)
    }

    /// The acknowledgement, when it is complete and covers exactly the configured retention.
    pub fn acknowledgement(&self) -> Option<&RetentionAcknowledgement> {
        self.retention_below_minimum_acknowledged
            .as_ref()
            .filter(|a| a.retention == self.retention && a.is_complete())
    }
}

/// Audit fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFields {
    /// What changed.
    pub what: Vec<String>,
    /// Who.
    pub who: Vec<String>,
    /// When.
    pub when: Vec<String>,
    /// Why.
    pub why: Vec<String>,
    /// Outcome.
    pub outcome: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: &str) -> Span {
        s.parse::<CalSpan>().unwrap().get()
    }

    #[test]
    fn the_floor_is_two_years_on_every_day() {
        let min = minimum_retention();
        for ok in ["2y", "24mo", "731d", "3y", "1y 12mo", "105w", "17544h"] {
            assert!(
                !shorter_somewhere(span(ok), min),
                "{ok} is at least 2 years"
            );
        }
        for short in ["60s", "1y", "23mo", "730d", "104w", "1y 364d", "17520h"] {
            assert!(shorter_somewhere(span(short), min), "{short} is shorter");
        }
        assert_eq!(span(MINIMUM_RETENTION).fieldwise(), min.fieldwise());
    }

    #[test]
    fn shorter_at_compares_horizons() {
        let min = minimum_retention();
        // 2024-03-01 .. 2026-03-01 holds no 29 February: 730 days are two years there.
        let now: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        assert!(!shorter_at(span("730d"), min, now));
        let leap: Timestamp = "2024-03-01T00:00:00Z".parse().unwrap();
        assert!(shorter_at(span("730d"), min, leap));
        assert!(shorter_at(span("60s"), min, now));
        assert!(!shorter_at(span("2y"), min, now));
    }
}

//! Month views: what the calendar holds on each day of a month, as bands of time, for people
//! (the CLI renders them as text, HTML or SVG; the server can render the same data).
//!
//! The view comes from the same interval generators that decide [`crate::check`], so what a
//! person reads is what the gate enforces.

use changegate_policy::{Level, Policy};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::codes::ReasonCode;
use crate::ivs::{self, Iv, clip, date_of, next_day};
use crate::{Calendar, MaintenanceSlot, WindowRequest};

/// What a band shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BandKind {
    /// Allowed time for the requested category (freezes subtracted).
    Allowed,
    /// A standard window.
    Standard,
    /// A preferred window.
    Preferred,
    /// The planned maintenance window.
    Maintenance,
    /// The fallback maintenance window.
    MaintenanceFallback,
    /// A freeze (time-based).
    Freeze,
}

/// A stretch of time on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Band {
    /// What it is.
    pub kind: BandKind,
    /// For freezes, the reason code (`freeze-weekend`); else the kind's name.
    pub code: String,
    /// Display name.
    pub label: String,
    /// Start (clipped to the day).
    pub start: Timestamp,
    /// End, exclusive (clipped to the day).
    pub end: Timestamp,
}

/// One day of the month (a local day in the view's zone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayView {
    /// The date.
    pub date: Date,
    /// Its first instant.
    pub start: Timestamp,
    /// The next day's first instant.
    pub end: Timestamp,
    /// Bands, grouped by kind in [`BandKind`] order.
    pub bands: Vec<Band>,
}

/// A month of the calendar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthView {
    /// Year.
    pub year: i16,
    /// Month 1-12.
    pub month: i8,
    /// Zone the days are shown in.
    pub zone: String,
    /// Category whose allowed time is shown, if any.
    pub category: Option<Level>,
    /// Each day.
    pub days: Vec<DayView>,
    /// Freezes that have no fixed time (incident freezes), by code and name.
    pub conditional_freezes: Vec<(ReasonCode, String)>,
}

/// Why a month view could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not a valid year and month.
    #[error("invalid month {year}-{month:02}")]
    InvalidMonth {
        /// Year.
        year: i16,
        /// Month.
        month: i8,
    },
    /// The policy has no such category.
    #[error("the policy has no category with level {0}")]
    UnknownCategory(Level),
}

/// The month `year-month` as seen in `tz`, with the allowed time of `category` if given.
pub fn month_view(
    policy: &Policy,
    year: i16,
    month: i8,
    tz: &TimeZone,
    category: Option<Level>,
) -> Result<MonthView, MonthError> {
    let first = Date::new(year, month, 1).map_err(|_| MonthError::InvalidMonth { year, month })?;
    if let Some(level) = category
        && policy.category(level).is_none()
    {
        return Err(MonthError::UnknownCategory(level));
    }
    let cal = Calendar::new(policy);
    let midnight = changegate_policy::LocalTime::new(0, 0).expect("00:00");
    let month_start = ivs::instant(tz, first, midnight);
    let month_end = ivs::instant(tz, next_day(first.last_of_month()), midnight);

    // Everything for the whole month at once, then cut per day.
    let mut all: Vec<Band> = Vec::new();
    let mut push = |kind: BandKind, code: &str, label: &str, v: &[Iv]| {
        for iv in v {
            all.push(Band {
                kind,
                code: code.into(),
                label: label.into(),
                start: iv.s,
                end: iv.e,
            });
        }
    };
    if let Some(level) = category {
        let req = WindowRequest {
            category: level,
            start: month_start,
            duration: jiff::SignedDuration::ZERO,
            exception: None,
            incidents: Vec::new(),
            maintenance: MaintenanceSlot::Primary,
            announced_at: None,
        };
        let allowed: Vec<Iv> = cal
            .allowed_intervals(&req, month_start, month_end)
            .into_iter()
            .map(|(s, e)| Iv { s, e })
            .collect();
        push(
            BandKind::Allowed,
            "allowed",
            &format!("allowed for category {level}"),
            &allowed,
        );
    }
    push(
        BandKind::Standard,
        "standard",
        "standard window",
        &cal.standard.intervals(month_start, month_end),
    );
    push(
        BandKind::Preferred,
        "preferred",
        "preferred window",
        &cal.preferred.intervals(month_start, month_end),
    );
    let m = &policy.windows.maintenance;
    let occ = |nth: u8| -> Vec<Iv> {
        cal.maintenance
            .occurrences(nth, month_start, month_end)
            .into_iter()
            .map(|o| o.iv)
            .collect()
    };
    push(
        BandKind::Maintenance,
        "maintenance",
        "planned maintenance",
        &occ(m.nth),
    );
    if let Some(f) = m.fallback_nth {
        push(
            BandKind::MaintenanceFallback,
            "maintenance-fallback",
            "fallback maintenance",
            &occ(f),
        );
    }
    for f in &cal.freezes {
        if category.is_none_or(|l| f.applies_to.contains(&l)) {
            push(
                BandKind::Freeze,
                &ReasonCode::freeze(f.key.as_str()).to_string(),
                &f.name,
                &f.intervals(month_start, month_end),
            );
        }
    }

    let mut days = Vec::new();
    let mut d = first;
    while d.month() == month {
        let (a, b) = (
            ivs::instant(tz, d, midnight),
            ivs::instant(tz, next_day(d), midnight),
        );
        let mut bands = Vec::new();
        for band in &all {
            for iv in clip(
                &[Iv {
                    s: band.start,
                    e: band.end,
                }],
                a,
                b,
            ) {
                bands.push(Band {
                    start: iv.s,
                    end: iv.e,
                    ..band.clone()
                });
            }
        }
        days.push(DayView {
            date: d,
            start: a,
            end: b,
            bands,
        });
        let n = next_day(d);
        if n == d {
            break;
        }
        d = n;
    }
    debug_assert!(days.iter().all(|day| date_of(tz, day.start) == day.date));

    let conditional_freezes = policy
        .freezes
        .iter()
        .filter(|(_, f)| matches!(f, changegate_policy::Freeze::Incident { .. }))
        .filter(|(_, f)| category.is_none_or(|l| f.applies_to().contains(&l)))
        .map(|(k, f)| (ReasonCode::freeze(k.as_str()), f.name().to_string()))
        .collect();
    Ok(MonthView {
        year,
        month,
        zone: tz.iana_name().unwrap_or("UTC").to_string(),
        category,
        days,
        conditional_freezes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn march_2026_in_utc() {
        let p = changegate_policy::load_default().policy;
        let v = month_view(&p, 2026, 3, &TimeZone::UTC, Some(2)).unwrap();
        assert_eq!(v.days.len(), 31);
        let tue3 = &v.days[2];
        assert_eq!(tue3.date, jiff::civil::date(2026, 3, 3));
        let kinds: Vec<BandKind> = tue3.bands.iter().map(|b| b.kind).collect();
        assert!(kinds.contains(&BandKind::Maintenance));
        assert!(kinds.contains(&BandKind::Preferred));
        let allowed: Vec<&Band> = tue3
            .bands
            .iter()
            .filter(|b| b.kind == BandKind::Allowed)
            .collect();
        assert_eq!(allowed.len(), 1);
        assert_eq!(
            allowed[0].start,
            "2026-03-03T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        // Saturday the 7th: frozen all day, nothing allowed.
        let sat = &v.days[6];
        assert!(
            sat.bands
                .iter()
                .any(|b| b.code == "freeze-weekend" && b.start == sat.start && b.end == sat.end)
        );
        assert!(!sat.bands.iter().any(|b| b.kind == BandKind::Allowed));
        assert_eq!(v.conditional_freezes[0].0, "freeze-incident");
        assert!(month_view(&p, 2026, 13, &TimeZone::UTC, None).is_err());
        assert!(month_view(&p, 2026, 3, &TimeZone::UTC, Some(9)).is_err());
    }
}

//! Report periods: a calendar month or quarter in UTC.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::ReportError;

/// Monthly audit report or quarterly review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// The monthly audit report.
    Monthly,
    /// The quarterly review.
    Quarterly,
}

impl ReportKind {
    /// `monthly` or `quarterly`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Monthly => "monthly",
            ReportKind::Quarterly => "quarterly",
        }
    }
}

/// A month (`2026-11`) or a quarter (`2026-Q4`), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// Year and month 1-12.
    Month(i16, i8),
    /// Year and quarter 1-4.
    Quarter(i16, i8),
}

impl Period {
    /// Monthly or quarterly.
    pub fn kind(&self) -> ReportKind {
        match self {
            Period::Month(..) => ReportKind::Monthly,
            Period::Quarter(..) => ReportKind::Quarterly,
        }
    }

    /// Parse `YYYY-MM` for `Monthly`, `YYYY-Qn` for `Quarterly`.
    pub fn parse_as(kind: ReportKind, s: &str) -> Result<Period, ReportError> {
        let p: Period = s.parse()?;
        if p.kind() != kind {
            return Err(ReportError::Period(format!(
                "`{s}` is not a {} period (expected {})",
                kind.as_str(),
                match kind {
                    ReportKind::Monthly => "YYYY-MM, e.g. 2026-11",
                    ReportKind::Quarterly => "YYYY-Qn, e.g. 2026-Q4",
                }
            )));
        }
        Ok(p)
    }

    fn first_month(&self) -> (i16, i8) {
        match *self {
            Period::Month(y, m) => (y, m),
            Period::Quarter(y, q) => (y, (q - 1) * 3 + 1),
        }
    }

    fn months(&self) -> i8 {
        match self {
            Period::Month(..) => 1,
            Period::Quarter(..) => 3,
        }
    }

    /// First instant (inclusive).
    pub fn start(&self) -> Timestamp {
        let (y, m) = self.first_month();
        utc(y, m)
    }

    /// End instant (exclusive).
    pub fn end(&self) -> Timestamp {
        let (y, m) = self.first_month();
        let total = i32::from(m) - 1 + i32::from(self.months());
        utc(y + (total / 12) as i16, (total % 12) as i8 + 1)
    }

    /// The period before.
    pub fn previous(&self) -> Period {
        match *self {
            Period::Month(y, 1) => Period::Month(y - 1, 12),
            Period::Month(y, m) => Period::Month(y, m - 1),
            Period::Quarter(y, 1) => Period::Quarter(y - 1, 4),
            Period::Quarter(y, q) => Period::Quarter(y, q - 1),
        }
    }

    /// The months of the period (one for a month, three for a quarter).
    pub fn month_list(&self) -> Vec<Period> {
        let (y, m) = self.first_month();
        (0..self.months())
            .map(|i| Period::Month(y, m + i))
            .collect()
    }

    /// Days in the period.
    pub fn days(&self) -> f64 {
        self.end().duration_since(self.start()).as_secs_f64() / 86_400.0
    }

    /// The period that contains `t`, of `kind`.
    pub fn containing(kind: ReportKind, t: Timestamp) -> Period {
        let d = t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        match kind {
            ReportKind::Monthly => Period::Month(d.year(), d.month()),
            ReportKind::Quarterly => Period::Quarter(d.year(), (d.month() - 1) / 3 + 1),
        }
    }

    /// Whether `t` is in the period.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start() <= t && t < self.end()
    }
}

fn utc(y: i16, m: i8) -> Timestamp {
    Date::new(y, m, 1)
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .expect("a first of month in range")
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
        }
    }
}

impl FromStr for Period {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ReportError::Period(format!(
                "`{s}` is neither a month (YYYY-MM, e.g. 2026-11) nor a quarter (YYYY-Qn, e.g. 2026-Q4)"
            ))
        };
        let (y, rest) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 {
            return Err(bad());
        }
        let y: i16 = y.parse().map_err(|_| bad())?;
        if !(1970..=9998).contains(&y) {
            return Err(bad());
        }
        if let Some(q) = rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
            let q: i8 = q.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) || rest.len() != 2 {
                return Err(bad());
            }
            return Ok(Period::Quarter(y, q));
        }
        if rest.len() != 2 {
            return Err(bad());
        }
        let m: i8 = rest.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&m) {
            return Err(bad());
        }
        Ok(Period::Month(y, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bounds() {
        let m: Period = "2026-11".parse().unwrap();
        assert_eq!(m.start().to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(m.end().to_string(), "2026-12-01T00:00:00Z");
        let d: Period = "2026-12".parse().unwrap();
        assert_eq!(d.end().to_string(), "2027-01-01T00:00:00Z");
        let q: Period = "2026-Q4".parse().unwrap();
        assert_eq!(q.start().to_string(), "2026-10-01T00:00:00Z");
        assert_eq!(q.end().to_string(), "2027-01-01T00:00:00Z");
        assert_eq!(q.previous().to_string(), "2026-Q3");
        assert_eq!(Period::Month(2026, 1).previous().to_string(), "2025-12");
        assert_eq!(q.month_list().len(), 3);
        for bad in [
            "2026-13", "2026-Q5", "2026-1", "26-11", "2026/11", "", "2026-Q", "2026-00",
        ] {
            let e = bad.parse::<Period>().unwrap_err();
            assert_eq!(e.code(), crate::Code::PeriodInvalid, "{bad}");
        }
        assert!(Period::parse_as(ReportKind::Monthly, "2026-Q4").is_err());
        assert!(Period::parse_as(ReportKind::Quarterly, "2026-Q4").is_ok());
    }
}

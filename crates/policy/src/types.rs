//! Scalar types of the policy file. Each parses from a string during deserialisation, so a bad
//! value is reported with its path (and so its file, line and column), and serialises back to the
//! text it was read from.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! string_type {
    ($ty:ident, $desc:literal, $pattern:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "description": $desc, "pattern": $pattern })
            }
        }
    };
}

/// A day of the week, written `mon` … `sun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    /// The jiff weekday.
    pub fn to_jiff(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as J;
        match self {
            Weekday::Mon => J::Monday,
            Weekday::Tue => J::Tuesday,
            Weekday::Wed => J::Wednesday,
            Weekday::Thu => J::Thursday,
            Weekday::Fri => J::Friday,
            Weekday::Sat => J::Saturday,
            Weekday::Sun => J::Sunday,
        }
    }
    /// From a jiff weekday.
    pub fn from_jiff(day: jiff::civil::Weekday) -> Self {
        Weekday::ALL[day.to_monday_zero_offset() as usize]
    }
    /// Short lowercase name (`mon`).
    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Weekday {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("invalid weekday `{s}`: expected one of mon, tue, wed, thu, fri, sat, sun")
            })
    }
}
string_type!(
    Weekday,
    "Day of the week",
    "^(mon|tue|wed|thu|fri|sat|sun)$"
);

/// A local time of day `HH:MM`, minute precision; `24:00` is allowed as the end of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalTime {
    minutes: u16,
}

impl LocalTime {
    /// From hours and minutes; `None` when out of range.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        let m = u16::from(hour) * 60 + u16::from(minute);
        (minute < 60 && m <= 24 * 60).then_some(LocalTime { minutes: m })
    }
    /// Minutes since midnight (0..=1440).
    pub fn minutes(self) -> u16 {
        self.minutes
    }
    /// As a jiff civil time; `24:00` has none (it is the next day's midnight).
    pub fn to_jiff(self) -> Option<jiff::civil::Time> {
        (self.minutes < 1440).then(|| {
            jiff::civil::Time::constant((self.minutes / 60) as i8, (self.minutes % 60) as i8, 0, 0)
        })
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl FromStr for LocalTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("invalid time `{s}`: expected HH:MM between 00:00 and 24:00");
        let (h, m) = s.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u8 = h.parse().map_err(|_| err())?;
        let m: u8 = m.parse().map_err(|_| err())?;
        LocalTime::new(h, m).ok_or_else(err)
    }
}
string_type!(
    LocalTime,
    "Local time of day HH:MM (24:00 = end of day)",
    "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
);

/// An exact duration written in jiff's friendly format: `30s`, `15m`, `2h`, `1h 30m`, `14d`
/// (a day is 24 hours here).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dur {
    text: String,
    value: jiff::SignedDuration,
}

impl Dur {
    /// The duration.
    pub fn get(&self) -> jiff::SignedDuration {
        self.value
    }
    /// Whole seconds.
    pub fn as_secs(&self) -> i64 {
        self.value.as_secs()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "expected a duration such as `30s`, `15m`, `2h`, `1h 30m` or `14d`";
        let span: jiff::Span = s
            .trim()
            .parse()
            .map_err(|e| format!("invalid duration `{s}`: {e}; {hint}"))?;
        if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
            return Err(format!(
                "invalid duration `{s}`: years, months and weeks are not exact; use days or hours"
            ));
        }
        let value = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| format!("invalid duration `{s}`: {e}"))?;
        if value.is_negative() {
            return Err(format!("invalid duration `{s}`: must not be negative"));
        }
        Ok(Dur {
            text: s.to_string(),
            value,
        })
    }
}
string_type!(
    Dur,
    "Exact duration, e.g. 30s, 15m, 2h, 1h 30m, 14d",
    "^[0-9].*$"
);

/// A calendar span such as `2y` or `18mo` (for retention periods).
#[derive(Debug, Clone)]
pub struct CalSpan {
    text: String,
    value: jiff::Span,
}

impl CalSpan {
    /// The span.
    pub fn get(&self) -> jiff::Span {
        self.value
    }
}

impl PartialEq for CalSpan {
    fn eq(&self, other: &Self) -> bool {
        self.value.fieldwise() == other.value.fieldwise()
    }
}

impl fmt::Display for CalSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CalSpan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let value: jiff::Span = s.trim().parse().map_err(|e| {
            format!("invalid period `{s}`: {e}; expected e.g. `2y`, `18mo` or `730d`")
        })?;
        if value.is_negative() || value.is_zero() {
            return Err(format!("invalid period `{s}`: must be positive"));
        }
        Ok(CalSpan {
            text: s.to_string(),
            value,
        })
    }
}
string_type!(CalSpan, "Calendar period, e.g. 2y, 18mo, 730d", "^[0-9].*$");

/// An IANA time zone name (`UTC`, `Europe/Berlin`), checked against the bundled tz database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tz {
    name: String,
}

impl Tz {
    /// UTC.
    pub fn utc() -> Self {
        Tz { name: "UTC".into() }
    }
    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The jiff time zone.
    pub fn to_jiff(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.name).expect("validated when parsed")
    }
}

impl Default for Tz {
    fn default() -> Self {
        Tz::utc()
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Tz {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        jiff::tz::TimeZone::get(s).map_err(|_| {
            format!("unknown time zone `{s}`: expected an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`")
        })?;
        Ok(Tz {
            name: s.to_string(),
        })
    }
}
string_type!(Tz, "IANA time zone name", "^[A-Za-z_+\\-/0-9]+$");

/// A month and day `MM-DD`, repeating every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthDay {
    /// Month 1..=12.
    pub month: i8,
    /// Day 1..=31 (valid for the month; 02-29 allowed).
    pub day: i8,
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

impl FromStr for MonthDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("invalid month-day `{s}`: expected MM-DD, e.g. 12-25");
        let (m, d) = s.split_once('-').ok_or_else(err)?;
        if m.len() != 2 || d.len() != 2 {
            return Err(err());
        }
        let month: i8 = m.parse().map_err(|_| err())?;
        let day: i8 = d.parse().map_err(|_| err())?;
        // 2024 is a leap year, so 02-29 is accepted.
        jiff::civil::Date::new(2024, month, day).map_err(|_| err())?;
        Ok(MonthDay { month, day })
    }
}
string_type!(
    MonthDay,
    "Month and day MM-DD, every year",
    "^[0-9]{2}-[0-9]{2}$"
);

/// A calendar date `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(pub jiff::civil::Date);

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 10 {
            return Err(format!("invalid date `{s}`: expected YYYY-MM-DD"));
        }
        s.parse::<jiff::civil::Date>()
            .map(Date)
            .map_err(|e| format!("invalid date `{s}`: {e}; expected YYYY-MM-DD"))
    }
}
string_type!(
    Date,
    "Calendar date YYYY-MM-DD",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
);

/// A holiday: a one-off date `YYYY-MM-DD` or a yearly `MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holiday {
    /// One date.
    Once(Date),
    /// The same day every year.
    Yearly(MonthDay),
}

impl Holiday {
    /// Whether `date` is this holiday.
    pub fn matches(&self, date: jiff::civil::Date) -> bool {
        match self {
            Holiday::Once(d) => d.0 == date,
            Holiday::Yearly(md) => md.month == date.month() && md.day == date.day(),
        }
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holiday::Once(d) => d.fmt(f),
            Holiday::Yearly(md) => md.fmt(f),
        }
    }
}

impl FromStr for Holiday {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() == 5 {
            s.parse().map(Holiday::Yearly)
        } else {
            s.parse().map(Holiday::Once)
        }
        .map_err(|_: String| {
            format!("invalid holiday `{s}`: expected YYYY-MM-DD (once) or MM-DD (every year)")
        })
    }
}
string_type!(
    Holiday,
    "Holiday: YYYY-MM-DD once, or MM-DD every year",
    "^([0-9]{4}-)?[0-9]{2}-[0-9]{2}$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_keep_their_text() {
        let d: Dur = "1h 30m".parse().unwrap();
        assert_eq!(d.as_secs(), 5400);
        assert_eq!(d.to_string(), "1h 30m");
        assert_eq!("14d".parse::<Dur>().unwrap().as_secs(), 14 * 86400);
        assert!("2y".parse::<Dur>().is_err());
        assert!("soon".parse::<Dur>().is_err());
        assert!("-5m".parse::<Dur>().is_err());
    }

    #[test]
    fn local_times() {
        assert_eq!("10:00".parse::<LocalTime>().unwrap().minutes(), 600);
        assert_eq!("24:00".parse::<LocalTime>().unwrap().minutes(), 1440);
        for bad in ["24:01", "9:00", "10:60", "ten", "10-00"] {
            assert!(bad.parse::<LocalTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_and_dates() {
        assert!("Europe/Berlin".parse::<Tz>().is_ok());
        assert!("Mars/Olympus".parse::<Tz>().is_err());
        assert!("02-29".parse::<MonthDay>().is_ok());
        assert!("02-30".parse::<MonthDay>().is_err());
        assert!(matches!("12-25".parse::<Holiday>(), Ok(Holiday::Yearly(_))));
        assert!(matches!(
            "2026-12-24".parse::<Holiday>(),
            Ok(Holiday::Once(_))
        ));
        assert!("2026-13-01".parse::<Holiday>().is_err());
        assert!("2y".parse::<CalSpan>().is_ok());
    }
}

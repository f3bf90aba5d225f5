//! Business days, for lead times ("RFC 5+ business days before") and SLAs ("within 1 business
//! day").
//!
//! A business day *starts* at local midnight of a working weekday that is not a holiday, in the
//! policy's business-day zone. Counting starts (rather than days touched) makes the count of
//! `(from, to]` exact and additive, and makes [`add`] its inverse: `between(at, add(at, n)) == n`.

use changegate_policy::{BusinessDays, Weekday};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::ivs::{date_of, instant, next_day};

fn is_business(cal: &BusinessDays, d: Date) -> bool {
    cal.days.contains(&Weekday::from_jiff(d.weekday()))
        && !cal.holidays.iter().any(|h| h.matches(d))
}

/// Business-day starts in `(from, to]`; negative when `to` is before `from`.
pub(crate) fn between(cal: &BusinessDays, from: Timestamp, to: Timestamp) -> i64 {
    if to < from {
        return -between(cal, to, from);
    }
    let tz = cal.timezone.to_jiff();
    // Local midnight of a date is never after any instant of that date, so the starts in
    // (from, to] are exactly the dates after from's date up to and including to's date.
    let first = next_day(date_of(&tz, from));
    let last = date_of(&tz, to);
    if first > last {
        return 0;
    }
    let span = last.duration_since(first).as_hours() / 24 + 1;
    let (weeks, rest) = (span / 7, span % 7);
    // Whole weeks hold `days.len()` working weekdays each; count the remainder one by one, then
    // take off the holidays that fall on a working weekday inside the range.
    let mut n = weeks * cal.days.len() as i64;
    let mut d = crate::ivs::add_days(first, weeks * 7);
    for _ in 0..rest {
        if cal.days.contains(&Weekday::from_jiff(d.weekday())) {
            n += 1;
        }
        d = next_day(d);
    }
    n - holidays_in(cal, first, last)
}

/// Holidays on working weekdays within `[first, last]`, each date counted once.
fn holidays_in(cal: &BusinessDays, first: Date, last: Date) -> i64 {
    if cal.holidays.is_empty() {
        return 0;
    }
    let mut dates: Vec<Date> = Vec::new();
    for h in &cal.holidays {
        match h {
            changegate_policy::Holiday::Once(d) => dates.push(d.0),
            changegate_policy::Holiday::Yearly(md) => {
                for y in first.year()..=last.year() {
                    if let Ok(d) = Date::new(y, md.month, md.day) {
                        dates.push(d);
                    }
                }
            }
        }
    }
    dates.sort_unstable();
    dates.dedup();
    dates
        .into_iter()
        .filter(|d| {
            first <= *d && *d <= last && cal.days.contains(&Weekday::from_jiff(d.weekday()))
        })
        .count() as i64
}

/// `at` moved forward by `days` business days: the same local time of day on the `days`-th
/// business date after `at`'s date.
pub(crate) fn add(cal: &BusinessDays, at: Timestamp, days: u32) -> Timestamp {
    if days == 0 || cal.days.is_empty() {
        return at;
    }
    let tz = cal.timezone.to_jiff();
    let local = tz.to_datetime(at);
    let mut d = local.date();
    let mut left = days;
    while left > 0 {
        let n = next_day(d);
        if n == d {
            return Timestamp::MAX;
        }
        d = n;
        if is_business(cal, d) {
            left -= 1;
        }
    }
    let t = local.time();
    let dt = d.to_datetime(t);
    let ts = tz
        .to_ambiguous_timestamp(dt)
        .compatible()
        .unwrap_or(Timestamp::MAX);
    // A local time skipped by DST lands later; never earlier than the day's start.
    ts.max(instant(
        &tz,
        d,
        changegate_policy::LocalTime::new(0, 0).expect("00:00"),
    ))
}

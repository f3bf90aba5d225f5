//! Half-open time intervals and the generators that turn the policy's calendar rules into them.
//!
//! Why intervals: every rule of the policy (weekly slots, nth-weekday maintenance windows, weekly,
//! annual and one-off freezes) is a set of `[start, end)` intervals on the time line. Generating
//! them for a bounded range straight from the calendar (one civil date at a time, converted to an
//! instant in the rule's own zone) makes both questions cheap and exact: "is `[s, e)` inside the
//! allowed set?" and "where does the first allowed interval at least `d` long begin?". No minute
//! stepping, and DST is handled once, by jiff, when a local time becomes an instant.

use changegate_policy::{Freeze, LocalTime, MonthDay, Policy, Slot, Weekday};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// `[s, e)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Iv {
    pub s: Timestamp,
    pub e: Timestamp,
}

impl Iv {
    pub fn overlaps(&self, s: Timestamp, e: Timestamp) -> bool {
        self.s < e && s < self.e
    }
    pub fn contains(&self, s: Timestamp, e: Timestamp) -> bool {
        self.s <= s && e <= self.e
    }
}

pub(crate) fn add(ts: Timestamp, d: SignedDuration) -> Timestamp {
    ts.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

pub(crate) fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(d)
}

pub(crate) fn prev_day(d: Date) -> Date {
    d.yesterday().unwrap_or(d)
}

pub(crate) fn add_days(d: Date, n: i64) -> Date {
    d.saturating_add(SignedDuration::from_hours(24 * n))
}

/// The civil date of `ts` in `tz`.
pub(crate) fn date_of(tz: &TimeZone, ts: Timestamp) -> Date {
    tz.to_datetime(ts).date()
}

/// The instant of local time `t` on `d` in `tz`. `24:00` is the next day's midnight. Local times
/// that do not exist (spring-forward gap) move forward by the gap; repeated ones (fall back) take
/// the first occurrence — jiff's "compatible" disambiguation, as RFC 5545 does.
pub(crate) fn instant(tz: &TimeZone, d: Date, t: LocalTime) -> Timestamp {
    let m = t.minutes();
    let (d, m) = if m >= 1440 { (next_day(d), 0) } else { (d, m) };
    let dt = d.at((m / 60) as i8, (m % 60) as i8, 0, 0);
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .unwrap_or(Timestamp::MAX)
}

/// Sort, drop empty intervals, merge overlapping and touching ones.
pub(crate) fn normalize(mut v: Vec<Iv>) -> Vec<Iv> {
    v.retain(|iv| iv.s < iv.e);
    v.sort_by_key(|iv| iv.s);
    let mut out: Vec<Iv> = Vec::with_capacity(v.len());
    for iv in v {
        match out.last_mut() {
            Some(last) if iv.s <= last.e => {
                if iv.e > last.e {
                    last.e = iv.e;
                }
            }
            _ => out.push(iv),
        }
    }
    out
}

/// `base` minus `cut`; both normalized; the result is normalized.
pub(crate) fn subtract(base: &[Iv], cut: &[Iv]) -> Vec<Iv> {
    let mut out = Vec::with_capacity(base.len());
    let mut j = 0;
    for b in base {
        let mut s = b.s;
        while j < cut.len() && cut[j].e <= s {
            j += 1;
        }
        let mut k = j;
        while k < cut.len() && cut[k].s < b.e {
            if cut[k].s > s {
                out.push(Iv { s, e: cut[k].s });
            }
            if cut[k].e > s {
                s = cut[k].e;
            }
            k += 1;
        }
        if s < b.e {
            out.push(Iv { s, e: b.e });
        }
    }
    out
}

/// Clip normalized intervals to `[a, b)`.
pub(crate) fn clip(v: &[Iv], a: Timestamp, b: Timestamp) -> Vec<Iv> {
    v.iter()
        .filter(|iv| iv.s < b && iv.e > a)
        .map(|iv| Iv {
            s: iv.s.max(a),
            e: iv.e.min(b),
        })
        .collect()
}

/// A weekly slot set compiled for fast lookup: per weekday (Monday first), the `(start, end)`
/// local times.
#[derive(Debug, Clone)]
pub(crate) struct WeeklySlots {
    pub tz: TimeZone,
    pub by_day: [Vec<(LocalTime, LocalTime)>; 7],
}

impl WeeklySlots {
    pub fn new(tz: TimeZone, slots: &[Slot]) -> Self {
        let mut by_day: [Vec<(LocalTime, LocalTime)>; 7] = Default::default();
        for slot in slots {
            for d in &slot.days {
                by_day[*d as usize].push((slot.start, slot.end));
            }
        }
        WeeklySlots { tz, by_day }
    }

    /// Every slot occurrence touching `[a, b)`, normalized (not clipped).
    pub fn intervals(&self, a: Timestamp, b: Timestamp) -> Vec<Iv> {
        let mut v = Vec::new();
        let mut d = prev_day(date_of(&self.tz, a));
        let last = next_day(date_of(&self.tz, b));
        while d <= last {
            let wd = Weekday::from_jiff(d.weekday()) as usize;
            for (s, e) in &self.by_day[wd] {
                v.push(Iv {
                    s: instant(&self.tz, d, *s),
                    e: instant(&self.tz, d, *e),
                });
            }
            if d == Date::MAX {
                break;
            }
            d = next_day(d);
        }
        normalize(v)
    }
}

/// One maintenance occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Occurrence {
    pub date: Date,
    pub iv: Iv,
}

/// The monthly maintenance window compiled.
#[derive(Debug, Clone)]
pub(crate) struct MaintenanceRule {
    pub tz: TimeZone,
    pub weekday: jiff::civil::Weekday,
    pub start: LocalTime,
    pub end: LocalTime,
}

impl MaintenanceRule {
    /// Occurrences number `nth` in every month touching `[a, b)`, in order.
    pub fn occurrences(&self, nth: u8, a: Timestamp, b: Timestamp) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let mut m = prev_month(date_of(&self.tz, a).first_of_month());
        let last = date_of(&self.tz, b).first_of_month();
        while m <= last {
            if let Ok(d) = m.nth_weekday_of_month(nth as i8, self.weekday) {
                let iv = Iv {
                    s: instant(&self.tz, d, self.start),
                    e: instant(&self.tz, d, self.end),
                };
                if iv.s < iv.e && iv.e > a && iv.s < b {
                    out.push(Occurrence { date: d, iv });
                }
            }
            let next = add_days(m.last_of_month(), 1);
            if next <= m {
                break;
            }
            m = next;
        }
        out
    }
}

fn prev_month(first: Date) -> Date {
    prev_day(first).first_of_month()
}

/// A time-based freeze compiled: its key, display name, levels and how to list its intervals.
#[derive(Debug, Clone)]
pub(crate) struct CalFreeze {
    pub key: String,
    pub name: String,
    pub applies_to: Vec<u8>,
    /// Exception reasons that lift it.
    pub lifted_by: Vec<String>,
    pub tz: TimeZone,
    pub rule: FreezeRule,
}

#[derive(Debug, Clone)]
pub(crate) enum FreezeRule {
    Weekly {
        from_day: jiff::civil::Weekday,
        from: LocalTime,
        days: i64,
        to: LocalTime,
    },
    Annual {
        start: MonthDay,
        end: MonthDay,
    },
    Dates {
        start: Date,
        end: Date,
    },
}

/// The date of `md` in `year`; 02-29 in a common year is 02-28.
fn month_day(year: i16, md: MonthDay) -> Date {
    Date::new(year, md.month, md.day)
        .or_else(|_| Date::new(year, md.month, 1).map(|d| d.last_of_month()))
        .unwrap_or(Date::MAX)
}

impl CalFreeze {
    /// Compile the time-based freezes of the policy (incident freezes are not time-based).
    pub fn compile(policy: &Policy) -> Vec<CalFreeze> {
        let default_tz = || policy.windows.timezone.to_jiff();
        let mut out = Vec::new();
        for (key, f) in &policy.freezes {
            let (rule, tz) = match f {
                Freeze::Weekly {
                    from, to, timezone, ..
                } => {
                    let mut days = i64::from(from.day.to_jiff().until(to.day.to_jiff()));
                    if days == 0 && to.time <= from.time {
                        days = 7;
                    }
                    (
                        FreezeRule::Weekly {
                            from_day: from.day.to_jiff(),
                            from: from.time,
                            days,
                            to: to.time,
                        },
                        timezone.as_ref().map_or_else(default_tz, |t| t.to_jiff()),
                    )
                }
                Freeze::Annual {
                    start,
                    end,
                    timezone,
                    ..
                } => (
                    FreezeRule::Annual {
                        start: *start,
                        end: *end,
                    },
                    timezone.as_ref().map_or_else(default_tz, |t| t.to_jiff()),
                ),
                Freeze::Dates {
                    start,
                    end,
                    timezone,
                    ..
                } => (
                    FreezeRule::Dates {
                        start: start.0,
                        end: end.0,
                    },
                    timezone.as_ref().map_or_else(default_tz, |t| t.to_jiff()),
                ),
                Freeze::Incident { .. } => continue,
            };
            out.push(CalFreeze {
                key: key.clone(),
                name: f.name().to_string(),
                applies_to: f.applies_to().to_vec(),
                lifted_by: f.lifted_by().to_vec(),
                tz,
                rule,
            });
        }
        out
    }

    /// Every interval of this freeze touching `[a, b)`, normalized (not clipped).
    pub fn intervals(&self, a: Timestamp, b: Timestamp) -> Vec<Iv> {
        let tz = &self.tz;
        let midnight = LocalTime::new(0, 0).expect("00:00");
        let mut v = Vec::new();
        match &self.rule {
            FreezeRule::Weekly {
                from_day,
                from,
                days,
                to,
            } => {
                let first = add_days(date_of(tz, a), -8);
                let mut d = add_days(first, i64::from(first.weekday().until(*from_day)));
                let last = next_day(date_of(tz, b));
                while d <= last {
                    v.push(Iv {
                        s: instant(tz, d, *from),
                        e: instant(tz, add_days(d, *days), *to),
                    });
                    let n = add_days(d, 7);
                    if n <= d {
                        break;
                    }
                    d = n;
                }
            }
            FreezeRule::Annual { start, end } => {
                let y0 = date_of(tz, a).year();
                let y1 = date_of(tz, b).year();
                for y in y0.saturating_sub(1)..=y1 {
                    let s = month_day(y, *start);
                    let ey = if (end.month, end.day) < (start.month, start.day) {
                        y.saturating_add(1)
                    } else {
                        y
                    };
                    let e = next_day(month_day(ey, *end));
                    v.push(Iv {
                        s: instant(tz, s, midnight),
                        e: instant(tz, e, midnight),
                    });
                }
            }
            FreezeRule::Dates { start, end } => {
                v.push(Iv {
                    s: instant(tz, *start, midnight),
                    e: instant(tz, next_day(*end), midnight),
                });
            }
        }
        v.retain(|iv| iv.e > a && iv.s < b);
        normalize(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn subtract_and_normalize() {
        let iv = |a: &str, b: &str| Iv { s: ts(a), e: ts(b) };
        let base = normalize(vec![
            iv("2026-01-01T10:00Z", "2026-01-01T12:00Z"),
            iv("2026-01-01T11:00Z", "2026-01-01T14:00Z"),
        ]);
        assert_eq!(base, vec![iv("2026-01-01T10:00Z", "2026-01-01T14:00Z")]);
        let cut = vec![
            iv("2026-01-01T09:00Z", "2026-01-01T10:30Z"),
            iv("2026-01-01T11:00Z", "2026-01-01T11:30Z"),
        ];
        assert_eq!(
            subtract(&base, &cut),
            vec![
                iv("2026-01-01T10:30Z", "2026-01-01T11:00Z"),
                iv("2026-01-01T11:30Z", "2026-01-01T14:00Z")
            ]
        );
        assert_eq!(
            subtract(&base, &[iv("2026-01-01T00:00Z", "2026-01-02T00:00Z")]),
            vec![]
        );
    }
}

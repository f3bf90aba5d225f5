//! Freeze shapes beyond the seed, written as policy overrides: annual freezes wrapping the year
//! end, one-off dates, freezes in their own zone, freezes for one level only, same-day weekly
//! freezes, and slots that join across midnight.

mod common;

use changegate_calendar::{Calendar, NEXT_SLOT_HORIZON, check};
use changegate_policy::Policy;
use common::{req, seed, ts};

fn with(extra: &str) -> Policy {
    changegate_policy::load(extra, "test.toml")
        .unwrap_or_else(|e| {
            panic!(
                "{:?}",
                e.diagnostics()
                    .iter()
                    .map(|d| d.render())
                    .collect::<Vec<_>>()
            )
        })
        .policy
}

fn codes(p: &Policy, category: u8, at: &str, dur: &str) -> (bool, Vec<String>) {
    let d = check(p, &req(category, at, dur));
    (
        d.allowed,
        d.reasons
            .into_iter()
            .filter(|r| r.denies)
            .map(|r| r.code.to_string())
            .collect(),
    )
}

#[test]
fn annual_freeze_wrapping_the_year_end() {
    let p = with(
        r#"
[freezes.new-year]
kind = "annual"
name = "New year"
start = "12-30"
end = "01-02"
applies_to = [2]
"#,
    );
    // 2026-12-29 (Tue) open; 12-30 .. 2027-01-02 frozen; 2027-01-04 (Mon) open.
    assert_eq!(
        codes(&p, 2, "2026-12-29T12:00:00Z", "30m").1,
        vec!["freeze-holiday"]
    );
    let (ok, c) = codes(&p, 2, "2027-01-01T12:00:00Z", "30m");
    assert!(!ok && c.contains(&"freeze-new-year".to_string()), "{c:?}");
    // 2026-01-02 (Fri) is frozen by the wrap of the previous year's freeze.
    assert!(
        codes(&p, 2, "2026-01-02T11:00:00Z", "30m")
            .1
            .contains(&"freeze-new-year".to_string())
    );
    assert_eq!(codes(&p, 2, "2026-01-05T11:00:00Z", "30m"), (true, vec![]));
    // Level 3 is not listed.
    assert!(
        !codes(&p, 3, "2027-01-01T12:00:00Z", "30m")
            .1
            .contains(&"freeze-new-year".to_string())
    );
}

#[test]
fn one_off_dates_and_a_freeze_in_its_own_zone() {
    let p = with(
        r#"
[freezes.launch]
kind = "dates"
name = "Launch week"
start = "2026-03-10"
end = "2026-03-11"
applies_to = [1, 2]
timezone = "America/New_York"
"#,
    );
    // 2026-03-10 00:00 New York (EDT since 03-08) is 04:00Z; the freeze ends 2026-03-12 04:00Z.
    assert_eq!(codes(&p, 1, "2026-03-10T03:59:00Z", "1m"), (true, vec![]));
    assert_eq!(
        codes(&p, 1, "2026-03-10T04:00:00Z", "1m"),
        (false, vec!["freeze-launch".to_string()])
    );
    assert_eq!(
        codes(&p, 1, "2026-03-12T03:59:00Z", "1m"),
        (false, vec!["freeze-launch".to_string()])
    );
    assert_eq!(codes(&p, 1, "2026-03-12T04:00:00Z", "1m"), (true, vec![]));
    // An any-time category waits for the end of the freeze.
    let d = check(&p, &req(1, "2026-03-11T12:00:00Z", "30m"));
    assert_eq!(d.next_slot, Some(ts("2026-03-12T04:00:00Z")));
}

#[test]
fn same_day_weekly_freeze_splits_a_window() {
    let p = with(
        r#"
[freezes.standup]
kind = "weekly"
name = "Wednesday all-hands"
from = { day = "wed", time = "12:00" }
to = { day = "wed", time = "13:00" }
applies_to = [2]
"#,
    );
    assert_eq!(codes(&p, 2, "2026-03-04T11:30:00Z", "30m"), (true, vec![]));
    assert_eq!(
        codes(&p, 2, "2026-03-04T11:31:00Z", "30m"),
        (false, vec!["freeze-standup".to_string()])
    );
    let d = check(&p, &req(2, "2026-03-04T11:45:00Z", "2h"));
    assert_eq!(d.next_slot, Some(ts("2026-03-04T13:00:00Z")));
}

#[test]
fn slots_that_touch_at_midnight_join() {
    let p = with(
        r#"
[windows.standard]
slots = [
  { days = ["mon"], start = "20:00", end = "24:00" },
  { days = ["tue"], start = "00:00", end = "03:00" },
]
"#,
    );
    assert_eq!(codes(&p, 2, "2026-03-02T23:00:00Z", "3h"), (true, vec![]));
    assert!(codes(&p, 2, "2026-03-02T23:00:00Z", "4h").0);
    assert_eq!(
        codes(&p, 2, "2026-03-02T23:00:00Z", "4h 1m").1,
        vec!["window-overrun"]
    );
    let cal = Calendar::new(&p);
    assert_eq!(
        cal.next_slot(&req(2, "2026-03-02T10:00:00Z", "7h"), NEXT_SLOT_HORIZON),
        Some(ts("2026-03-02T20:00:00Z"))
    );
    assert_eq!(
        cal.next_slot(&req(2, "2026-03-02T10:00:00Z", "7h 1m"), NEXT_SLOT_HORIZON),
        None
    );
}

#[test]
fn fifth_weekday_maintenance_skips_months_without_one() {
    let mut p = seed();
    p.windows.maintenance.nth = 5;
    p.windows.maintenance.fallback_nth = None;
    // Tuesdays in 2026: March has 5 (the 31st); April has 4; June has 5 (the 30th).
    let cal = Calendar::new(&p);
    assert_eq!(
        cal.next_slot(&req(3, "2026-04-01T00:00:00Z", "1h"), NEXT_SLOT_HORIZON),
        Some(ts("2026-06-30T02:00:00Z"))
    );
    let d = cal.check(&req(3, "2026-03-10T02:00:00Z", "1h").clone());
    assert!(
        d.reasons
            .iter()
            .any(|r| r.code == "maintenance-closed" && r.denies)
    );
    let mut f = req(3, "2026-03-31T02:00:00Z", "1h");
    f.maintenance = changegate_calendar::MaintenanceSlot::Fallback;
    assert!(
        cal.check(&f)
            .reasons
            .iter()
            .any(|r| r.code == "maintenance-no-fallback" && r.denies)
    );
}

#[test]
fn a_freeze_for_any_time_categories_binds_them_too() {
    let p = with(
        r#"
[freezes.holiday]
kind = "annual"
name = "Holiday freeze"
start = "12-25"
end = "12-31"
applies_to = [1, 2, 3]
"#,
    );
    assert_eq!(
        codes(&p, 1, "2026-12-26T03:00:00Z", "30m"),
        (false, vec!["freeze-holiday".to_string()])
    );
    // Emergencies still override it.
    assert!(check(&p, &req(4, "2026-12-26T03:00:00Z", "30m")).allowed);
}

#[test]
fn zero_and_negative_durations() {
    let p = seed();
    let mut r = req(2, "2026-03-03T17:59:00Z", "0s");
    assert!(check(&p, &r).allowed, "an instant inside the window");
    r.start = ts("2026-03-03T18:00:00Z");
    assert!(!check(&p, &r).allowed, "the end is exclusive");
    r.duration = jiff::SignedDuration::from_mins(-5);
    let d = check(&p, &r);
    assert!(!d.allowed && d.reasons[0].code == "duration-invalid");
}

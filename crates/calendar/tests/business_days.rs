//! Business-day counting and adding, with weekends, holidays and zones from the policy.

mod common;

use changegate_calendar::{add_business_days, business_days_between};
use common::{seed, ts};

#[test]
fn counts_business_day_starts_in_half_open_range() {
    let p = seed();
    // Mon 2026-03-02 10:00 -> Tue 10:00: Tuesday's start is inside.
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T10:00Z"), ts("2026-03-03T10:00Z")),
        1
    );
    // Fri -> Mon: Sat, Sun are not business days, Monday is.
    assert_eq!(
        business_days_between(&p, ts("2026-03-06T15:00Z"), ts("2026-03-09T09:00Z")),
        1
    );
    // Same day: none.
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T01:00Z"), ts("2026-03-02T23:00Z")),
        0
    );
    // Exactly at midnight: the start at `to` counts, the one at `from` does not.
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T00:00Z"), ts("2026-03-03T00:00Z")),
        1
    );
    // Four whole weeks.
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T12:00Z"), ts("2026-03-30T12:00Z")),
        20
    );
    // Reversed is negative.
    assert_eq!(
        business_days_between(&p, ts("2026-03-03T10:00Z"), ts("2026-03-02T10:00Z")),
        -1
    );
}

#[test]
fn holidays_from_policy_are_skipped() {
    let mut p = seed();
    p.business_days.holidays = vec!["2026-03-03".parse().unwrap(), "12-25".parse().unwrap()];
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T10:00Z"), ts("2026-03-04T10:00Z")),
        1
    );
    // 12-25 every year: 2026-12-25 is a Friday.
    assert_eq!(
        business_days_between(&p, ts("2026-12-24T10:00Z"), ts("2026-12-28T10:00Z")),
        1
    );
    assert_eq!(
        add_business_days(&p, ts("2026-12-24T10:00Z"), 1),
        ts("2026-12-28T10:00Z")
    );
    assert_eq!(
        add_business_days(&p, ts("2026-03-02T10:00Z"), 1),
        ts("2026-03-04T10:00Z")
    );
}

#[test]
fn adds_business_days_keeping_the_time_of_day() {
    let p = seed();
    assert_eq!(
        add_business_days(&p, ts("2026-03-06T15:00Z"), 1),
        ts("2026-03-09T15:00Z")
    );
    assert_eq!(
        add_business_days(&p, ts("2026-03-02T10:00Z"), 5),
        ts("2026-03-09T10:00Z")
    );
    // From a Saturday, the first business day is Monday.
    assert_eq!(
        add_business_days(&p, ts("2026-03-07T10:00Z"), 1),
        ts("2026-03-09T10:00Z")
    );
    assert_eq!(
        add_business_days(&p, ts("2026-03-07T10:00Z"), 0),
        ts("2026-03-07T10:00Z")
    );
}

#[test]
fn counts_in_the_business_zone() {
    let mut p = seed();
    p.business_days.timezone = "America/New_York".parse().unwrap();
    // Mon 2026-03-02 23:00 New York is Tue 04:00Z: in New York, Tuesday has not started yet.
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T12:00Z"), ts("2026-03-03T04:00Z")),
        0
    );
    assert_eq!(
        business_days_between(&p, ts("2026-03-02T12:00Z"), ts("2026-03-03T05:00Z")),
        1
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn add_is_the_inverse_of_between(secs in 1_700_000_000i64..1_900_000_000, n in 0u32..60) {
            let mut p = seed();
            p.business_days.holidays = vec!["12-25".parse().unwrap(), "01-01".parse().unwrap()];
            let at = jiff::Timestamp::from_second(secs).unwrap();
            let later = add_business_days(&p, at, n);
            prop_assert_eq!(business_days_between(&p, at, later), i64::from(n));
        }
    }
}

//! Property tests: the next slot is allowed for its whole duration, and a brute-force minute scan
//! (using the reason-based `evaluate`, an independent code path from the interval search) finds
//! no earlier allowed start.

mod common;

use changegate_calendar::{Calendar, MaintenanceSlot, WindowRequest};
use changegate_policy::Policy;
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn policies() -> &'static [Policy] {
    static POLICIES: std::sync::OnceLock<Vec<Policy>> = std::sync::OnceLock::new();
    POLICIES.get_or_init(build_policies)
}

fn build_policies() -> Vec<Policy> {
    let seed = common::seed();
    let mut berlin = seed.clone();
    berlin.windows.timezone = "Europe/Berlin".parse().unwrap();
    let mut ny = seed.clone();
    ny.windows.timezone = "America/New_York".parse().unwrap();
    ny.windows.maintenance.timezone = Some("Asia/Kolkata".parse().unwrap());
    // Odd shapes: a zone with a 30-minute DST shift, slots joining at midnight, a 5th-weekday
    // maintenance window (missing in some months), an annual freeze wrapping the year end, a
    // same-day weekly freeze, a freeze on an any-time category.
    let exotic = changegate_policy::load(
        r#"
[windows]
timezone = "Australia/Lord_Howe"
[windows.standard]
slots = [
  { days = ["mon", "wed"], start = "20:00", end = "24:00" },
  { days = ["tue", "thu"], start = "00:00", end = "03:00" },
  { days = ["sat"], start = "01:30", end = "02:30" },
]
[windows.maintenance]
weekday = "sun"
nth = 4
fallback_nth = 5
start = "01:00"
end = "05:00"
max_duration = "3h"
announce_lead = "3d"
timezone = "Asia/Kathmandu"
[freezes.new-year]
kind = "annual"
name = "New year"
start = "12-30"
end = "01-02"
applies_to = [1, 2, 3]
[freezes.lunch]
kind = "weekly"
name = "Lunch"
from = { day = "mon", time = "21:00" }
to = { day = "mon", time = "21:30" }
applies_to = [2]
"#,
        "exotic.toml",
    )
    .unwrap()
    .policy;
    vec![seed, berlin, ny, exotic]
}

fn request() -> impl Strategy<Value = (usize, WindowRequest)> {
    (
        0usize..4,
        1u8..=4,
        (2026i16..=2027, 1i8..=12, 1i8..=12, 0i8..24, 0i8..60),
        prop_oneof![
            Just(1i64),
            Just(30),
            Just(60),
            Just(240),
            Just(360),
            Just(480),
            1i64..600
        ],
        any::<bool>(),
        prop::option::of(0i64..40),
        prop::option::weighted(0.2, (any::<bool>(), any::<bool>())),
        prop::option::weighted(0.15, any::<bool>()),
    )
        .prop_map(
            |(
                pi,
                category,
                (y, mo, d, h, mi),
                minutes,
                fallback,
                announced_days,
                incident,
                exception,
            )| {
                // Days 1-12 of the month: first and second Tuesdays come up often.
                let start = date(y, mo, d)
                    .at(h, mi, 0, 0)
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .unwrap()
                    .timestamp();
                let req = WindowRequest {
                    category,
                    start,
                    duration: SignedDuration::from_mins(minutes),
                    exception: exception.map(|both| {
                        common::grant(
                            "security-patch",
                            if both {
                                &["backend-lead", "sre-lead"]
                            } else {
                                &["backend-lead"]
                            },
                        )
                    }),
                    incidents: incident
                        .map(|(p1, rem)| vec![common::incident(if p1 { "P1" } else { "P3" }, rem)])
                        .unwrap_or_default(),
                    maintenance: if fallback {
                        MaintenanceSlot::Fallback
                    } else {
                        MaintenanceSlot::Primary
                    },
                    announced_at: announced_days
                        .map(|n| start - SignedDuration::from_hours(24 * n)),
                };
                (pi, req)
            },
        )
}

fn at(req: &WindowRequest, t: Timestamp) -> WindowRequest {
    WindowRequest {
        start: t,
        ..req.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    #[test]
    fn next_slot_is_allowed_and_earliest((pi, req) in request()) {
        let policies = policies();
        let cal = Calendar::new(&policies[pi]);
        let horizon = SignedDuration::from_hours(36);
        let next = cal.next_slot(&req, horizon);
        if let Some(t) = next {
            prop_assert!(t >= req.start && t <= req.start + horizon);
            let d = cal.evaluate(&at(&req, t));
            prop_assert!(d.allowed, "next slot {t} is not allowed: {:?}", d.reasons);
            prop_assert!(d.reasons.iter().all(|r| !r.denies));
        }
        // Brute force: every minute from the start up to the answer (or the horizon).
        let end = next.unwrap_or(req.start + horizon + SignedDuration::from_mins(1));
        let mut t = req.start;
        while t < end {
            let d = cal.evaluate(&at(&req, t));
            prop_assert!(!d.allowed, "{t} is allowed but next_slot said {next:?}: {:?}", d.reasons);
            t += SignedDuration::from_mins(1);
        }
    }

    #[test]
    fn check_agrees_with_next_slot_at_the_start((pi, req) in request()) {
        let policies = policies();
        let cal = Calendar::new(&policies[pi]);
        let d = cal.check(&req);
        let next = cal.next_slot(&req, changegate_calendar::NEXT_SLOT_HORIZON);
        prop_assert_eq!(d.allowed, next == Some(req.start), "{:?} vs {:?}", d.reasons, next);
        if !d.allowed {
            prop_assert_eq!(d.next_slot, next);
        }
    }
}

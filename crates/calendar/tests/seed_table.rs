//! The decision table derived from the seed policy: window edges at minute precision, weekend and
//! holiday boundaries, the year end, first and second Tuesdays in months starting on every
//! weekday, DST in a non-UTC zone (policy override), incidents and exceptions.
//!
//! `rule_removal_is_detected` removes each seed window rule from the default policy in turn and
//! asserts that some case here then fails — so every rule is pinned by at least one case.

mod common;

use changegate_calendar::{MaintenanceSlot, WindowDecision, check};
use changegate_policy::{Freeze, Policy};
use common::{dur, grant, incident, req, seed, ts};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Seed,
    /// Every window and freeze in Europe/Berlin.
    Berlin,
    /// Berlin, plus a Sunday standard slot 02:00-03:00 and a maintenance window on the 5th/4th
    /// Sunday, to land rules on DST transition days.
    BerlinSunday,
    /// The maintenance window widened to 02:00-08:00, so that `max_duration` (4h) binds.
    LongMaintenance,
}

fn apply(base: &Policy, v: Variant) -> Policy {
    let mut p = base.clone();
    if matches!(v, Variant::Berlin | Variant::BerlinSunday) {
        p.windows.timezone = "Europe/Berlin".parse().unwrap();
    }
    if v == Variant::LongMaintenance {
        p.windows.maintenance.end = "08:00".parse().unwrap();
    }
    if v == Variant::BerlinSunday {
        p.windows.standard.slots.push(changegate_policy::Slot {
            days: vec![changegate_policy::Weekday::Sun],
            start: "02:00".parse().unwrap(),
            end: "03:00".parse().unwrap(),
            note: None,
        });
        p.freezes.shift_remove("weekend");
        p.windows.maintenance.weekday = changegate_policy::Weekday::Sun;
        p.windows.maintenance.nth = 5;
        p.windows.maintenance.fallback_nth = None;
    }
    p
}

struct Case {
    name: &'static str,
    variant: Variant,
    req: changegate_calendar::WindowRequest,
    allowed: bool,
    codes: Vec<&'static str>,
    info: Vec<&'static str>,
    preferred: Option<Option<bool>>,
    next: Option<Option<&'static str>>,
}

fn c(name: &'static str, category: u8, at: &'static str) -> Case {
    Case {
        name,
        variant: Variant::Seed,
        req: req(category, at, "30m"),
        allowed: false,
        codes: vec![],
        info: vec![],
        preferred: None,
        next: None,
    }
}

impl Case {
    /// Expect allowed, with these codes present (not denying).
    fn allow(mut self, codes: &[&'static str]) -> Self {
        self.allowed = true;
        self.info.extend_from_slice(codes);
        self
    }
    /// Expect denied, with these codes present and denying.
    fn deny(mut self, codes: &[&'static str]) -> Self {
        self.allowed = false;
        self.codes.extend_from_slice(codes);
        self
    }
    /// These codes present and not denying.
    fn info(mut self, codes: &[&'static str]) -> Self {
        self.info.extend_from_slice(codes);
        self
    }
    fn dur(mut self, d: &str) -> Self {
        self.req.duration = dur(d);
        self
    }
    fn next(mut self, at: &'static str) -> Self {
        self.next = Some(Some(at));
        self
    }
    fn no_next(mut self) -> Self {
        self.next = Some(None);
        self
    }
    fn preferred(mut self, p: bool) -> Self {
        self.preferred = Some(Some(p));
        self
    }
    fn fallback(mut self) -> Self {
        self.req.maintenance = MaintenanceSlot::Fallback;
        self
    }
    fn announced(mut self, at: &str) -> Self {
        self.req.announced_at = Some(ts(at));
        self
    }
    fn exception(mut self, reason: &str, roles: &[&str]) -> Self {
        self.req.exception = Some(grant(reason, roles));
        self
    }
    fn incident(mut self, severity: &str, remediation: bool) -> Self {
        self.req.incidents.push(incident(severity, remediation));
        self
    }
    fn variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }

    /// `None` when the case passes, else what went wrong.
    fn verify(&self, d: &WindowDecision) -> Option<String> {
        let mut errs = Vec::new();
        if d.allowed != self.allowed {
            errs.push(format!(
                "allowed = {}, expected {}",
                d.allowed, self.allowed
            ));
        }
        for code in &self.codes {
            if !d.reasons.iter().any(|r| r.code == *code && r.denies) {
                errs.push(format!("missing denying reason {code}"));
            }
        }
        for code in &self.info {
            if !d.reasons.iter().any(|r| r.code == *code && !r.denies) {
                errs.push(format!("missing non-denying reason {code}"));
            }
        }
        if let Some(p) = self.preferred
            && d.preferred != p
        {
            errs.push(format!("preferred = {:?}, expected {p:?}", d.preferred));
        }
        if let Some(n) = self.next
            && d.next_slot != n.map(ts)
        {
            errs.push(format!("next_slot = {:?}, expected {n:?}", d.next_slot));
        }
        if d.allowed == d.reasons.iter().any(|r| r.denies) {
            errs.push("allowed disagrees with the denying reasons".into());
        }
        (!errs.is_empty()).then(|| {
            format!(
                "{}: {} (reasons: {:?})",
                self.name,
                errs.join("; "),
                d.reasons
            )
        })
    }
}

const BOTH: &[&str] = &["backend-lead", "sre-lead"];

fn cases() -> Vec<Case> {
    use Variant::*;
    vec![
        // --- Category 2, standard windows (UTC), week of Mon 2026-03-02 ---------------------------
        c(
            "mon 07:59 weekend freeze still on",
            2,
            "2026-03-02T07:59:00Z",
        )
        .dur("1m")
        .deny(&["freeze-weekend", "window-closed"])
        .next("2026-03-02T10:00:00Z"),
        c(
            "mon 08:00 freeze over, window closed",
            2,
            "2026-03-02T08:00:00Z",
        )
        .dur("1m")
        .deny(&["window-closed"])
        .next("2026-03-02T10:00:00Z"),
        c("mon 09:59 closed", 2, "2026-03-02T09:59:00Z")
            .deny(&["window-closed"])
            .next("2026-03-02T10:00:00Z"),
        c("mon 10:00 open", 2, "2026-03-02T10:00:00Z")
            .allow(&["window-standard-open", "window-not-preferred"])
            .preferred(false),
        c("mon 15:30 fits exactly", 2, "2026-03-02T15:30:00Z").allow(&["window-standard-open"]),
        c("mon 15:31 overruns 16:00", 2, "2026-03-02T15:31:00Z")
            .deny(&["window-overrun"])
            .next("2026-03-03T10:00:00Z"),
        c("mon 16:00 closed", 2, "2026-03-02T16:00:00Z")
            .deny(&["window-closed"])
            .next("2026-03-03T10:00:00Z"),
        c("tue 09:59 closed", 2, "2026-03-03T09:59:00Z")
            .deny(&["window-closed"])
            .next("2026-03-03T10:00:00Z"),
        c("tue 10:00 open and preferred", 2, "2026-03-03T10:00:00Z")
            .allow(&["window-standard-open", "window-preferred"])
            .preferred(true),
        c("tue 15:30 preferred to the end", 2, "2026-03-03T15:30:00Z")
            .allow(&["window-preferred"])
            .preferred(true),
        c(
            "tue 15:31 allowed, leaves preferred",
            2,
            "2026-03-03T15:31:00Z",
        )
        .allow(&["window-not-preferred"])
        .preferred(false),
        c("tue 17:30 fits exactly", 2, "2026-03-03T17:30:00Z").allow(&["window-standard-open"]),
        c("tue 17:31 overruns 18:00", 2, "2026-03-03T17:31:00Z")
            .deny(&["window-overrun"])
            .next("2026-03-04T10:00:00Z"),
        c("wed 12:00 preferred", 2, "2026-03-04T12:00:00Z").allow(&["window-preferred"]),
        c("wed 18:00 closed", 2, "2026-03-04T18:00:00Z")
            .deny(&["window-closed"])
            .next("2026-03-05T10:00:00Z"),
        c("thu 17:30 fits", 2, "2026-03-05T17:30:00Z").allow(&["window-standard-open"]),
        c(
            "thu 17:31 overrun, next is friday",
            2,
            "2026-03-05T17:31:00Z",
        )
        .deny(&["window-overrun"])
        .next("2026-03-06T10:00:00Z"),
        c("fri 09:59 closed", 2, "2026-03-06T09:59:00Z")
            .deny(&["window-closed"])
            .next("2026-03-06T10:00:00Z"),
        c("fri 10:00 open, not preferred", 2, "2026-03-06T10:00:00Z")
            .allow(&["window-standard-open"])
            .preferred(false),
        c("fri 13:30 fits", 2, "2026-03-06T13:30:00Z").allow(&["window-standard-open"]),
        c("fri 13:31 overrun, next monday", 2, "2026-03-06T13:31:00Z")
            .deny(&["window-overrun"])
            .next("2026-03-09T10:00:00Z"),
        c("fri 14:00 closed", 2, "2026-03-06T14:00:00Z")
            .deny(&["window-closed"])
            .next("2026-03-09T10:00:00Z"),
        c("fri 15:45 runs into the freeze", 2, "2026-03-06T15:45:00Z")
            .deny(&["window-closed", "freeze-weekend"]),
        c("fri 15:59 1m before the freeze", 2, "2026-03-06T15:59:00Z")
            .dur("1m")
            .deny(&["window-closed"]),
        c("fri 16:00 freeze starts", 2, "2026-03-06T16:00:00Z")
            .deny(&["freeze-weekend"])
            .next("2026-03-09T10:00:00Z"),
        c("sat noon frozen", 2, "2026-03-07T12:00:00Z")
            .deny(&["freeze-weekend"])
            .next("2026-03-09T10:00:00Z"),
        c("sun 23:59 frozen", 2, "2026-03-08T23:59:00Z")
            .dur("1m")
            .deny(&["freeze-weekend"]),
        c("8h fills the tuesday window", 2, "2026-03-03T10:00:00Z")
            .dur("8h")
            .allow(&["window-standard-open"]),
        c("8h on monday waits for tuesday", 2, "2026-03-02T10:00:00Z")
            .dur("8h")
            .deny(&["window-overrun"])
            .next("2026-03-03T10:00:00Z"),
        c("9h change has no slot", 2, "2026-03-03T10:00:00Z")
            .dur("9h")
            .deny(&["window-overrun"])
            .no_next(),
        // --- Holiday freeze and the year end --------------------------------------------------------
        c(
            "thu dec 24 17:00 before the holiday freeze",
            2,
            "2026-12-24T17:00:00Z",
        )
        .allow(&["window-standard-open"]),
        c(
            "thu dec 24 23:45 runs into dec 25",
            2,
            "2026-12-24T23:45:00Z",
        )
        .deny(&["window-closed", "freeze-holiday"]),
        c("fri dec 25 10:00 holiday freeze", 2, "2026-12-25T10:00:00Z")
            .deny(&["freeze-holiday"])
            .info(&["window-standard-open"])
            .next("2027-01-01T10:00:00Z"),
        c("mon dec 28 10:00 holiday freeze", 2, "2026-12-28T10:00:00Z").deny(&["freeze-holiday"]),
        c(
            "thu dec 31 17:00 last frozen day",
            2,
            "2026-12-31T17:00:00Z",
        )
        .deny(&["freeze-holiday"])
        .next("2027-01-01T10:00:00Z"),
        c("fri jan 1 10:00 open again", 2, "2027-01-01T10:00:00Z").allow(&["window-standard-open"]),
        c(
            "overrun on dec 24 jumps the year end",
            2,
            "2026-12-24T17:31:00Z",
        )
        .deny(&["window-overrun"])
        .next("2027-01-01T10:00:00Z"),
        c("wed dec 24 2025 open", 2, "2025-12-24T12:00:00Z").allow(&["window-preferred"]),
        c(
            "tue dec 30 2025 frozen, next thu jan 1",
            2,
            "2025-12-30T12:00:00Z",
        )
        .deny(&["freeze-holiday"])
        .next("2026-01-01T10:00:00Z"),
        // --- Category 1 and 4 -------------------------------------------------------------------
        c("cat 1 saturday 03:00", 1, "2026-03-07T03:00:00Z").allow(&["window-any-time"]),
        c("cat 1 on dec 25", 1, "2026-12-25T03:00:00Z").allow(&["window-any-time"]),
        c("cat 1 during a P0", 1, "2026-03-07T03:00:00Z")
            .incident("P0", false)
            .allow(&["window-any-time"]),
        c("cat 4 saturday noon", 4, "2026-03-07T12:00:00Z").allow(&["emergency-override"]),
        c(
            "cat 4 during a P0, not its remediation",
            4,
            "2026-03-07T12:00:00Z",
        )
        .incident("P0", false)
        .allow(&["emergency-override"]),
        c("unknown category fails closed", 9, "2026-03-03T12:00:00Z")
            .deny(&["category-unknown"])
            .no_next(),
        // --- Incidents ------------------------------------------------------------------------
        c("cat 2 in window during a P1", 2, "2026-03-03T11:00:00Z")
            .incident("P1", false)
            .deny(&["freeze-incident"])
            .no_next(),
        c("cat 2 P0 remediation allowed", 2, "2026-03-03T11:00:00Z")
            .incident("P0", true)
            .allow(&["incident-remediation", "window-standard-open"]),
        c(
            "cat 2 P1 remediation still needs the window",
            2,
            "2026-03-07T11:00:00Z",
        )
        .incident("P1", true)
        .deny(&["freeze-weekend"])
        .info(&["incident-remediation"]),
        c("cat 2 during a P2 is not frozen", 2, "2026-03-03T11:00:00Z")
            .incident("P2", false)
            .allow(&["window-standard-open"]),
        c(
            "cat 2 exception does not lift an incident freeze",
            2,
            "2026-03-07T11:00:00Z",
        )
        .incident("P0", false)
        .exception("security-patch", BOTH)
        .deny(&["freeze-incident"]),
        c(
            "cat 3 in maintenance during a P1",
            3,
            "2026-03-03T02:00:00Z",
        )
        .incident("P1", false)
        .deny(&["freeze-incident"]),
        // --- Exceptions -------------------------------------------------------------------------
        c(
            "weekend security patch with both approvals",
            2,
            "2026-03-07T12:00:00Z",
        )
        .exception("security-patch", BOTH)
        .allow(&["exception-applied", "freeze-weekend", "window-closed"]),
        c("exception missing the SRE lead", 2, "2026-03-07T12:00:00Z")
            .exception("security-patch", &["backend-lead"])
            .deny(&["freeze-weekend"])
            .info(&["exception-missing-approval"])
            .next("2026-03-09T10:00:00Z"),
        c(
            "exception with an unknown reason",
            2,
            "2026-03-07T12:00:00Z",
        )
        .exception("because", BOTH)
        .deny(&["freeze-weekend"])
        .info(&["exception-unknown-reason"]),
        // ADR 0019: the holiday freeze is lifted only by an emergency (its `lifted_by` is empty);
        // the exception still lifts the window closure and the weekend freeze.
        c("critical bugfix on the holiday", 2, "2026-12-25T20:00:00Z")
            .exception("critical-bugfix", BOTH)
            .deny(&["freeze-holiday"])
            .info(&["exception-applied"]),
        c("critical bugfix on a weekend", 2, "2026-03-14T11:00:00Z")
            .exception("critical-bugfix", BOTH)
            .allow(&["exception-applied"]),
        c(
            "performance exception after hours",
            2,
            "2026-03-03T19:00:00Z",
        )
        .exception("performance", BOTH)
        .allow(&["exception-applied"]),
        c(
            "exception inside the window is not needed",
            2,
            "2026-03-03T11:00:00Z",
        )
        .exception("performance", BOTH)
        .allow(&["exception-not-needed"]),
        c("cat 3 emergency by the CTO", 3, "2026-03-04T12:00:00Z")
            .exception("critical-bugfix", &["cto"])
            .allow(&["exception-applied"]),
        c(
            "cat 3 exception by backend+sre is not enough",
            3,
            "2026-03-04T12:00:00Z",
        )
        .exception("critical-bugfix", BOTH)
        .deny(&["maintenance-closed"])
        .info(&["exception-missing-approval"]),
        // --- Category 3: first Tuesday, in months starting on every weekday --------------------
        c(
            "mar 2026 (starts sun): tue 3rd 02:00",
            3,
            "2026-03-03T02:00:00Z",
        )
        .allow(&["maintenance-open", "maintenance-announcement-unchecked"]),
        c(
            "jun 2026 (starts mon): tue 2nd 02:00",
            3,
            "2026-06-02T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "sep 2026 (starts tue): tue 1st 02:00",
            3,
            "2026-09-01T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "apr 2026 (starts wed): tue 7th 02:00",
            3,
            "2026-04-07T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "jan 2026 (starts thu): tue 6th 02:00",
            3,
            "2026-01-06T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "may 2026 (starts fri): tue 5th 02:00",
            3,
            "2026-05-05T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "aug 2026 (starts sat): tue 4th 02:00",
            3,
            "2026-08-04T02:00:00Z",
        )
        .allow(&["maintenance-open"]),
        c(
            "sep 2026: tue 8th is the second tuesday",
            3,
            "2026-09-08T02:00:00Z",
        )
        .deny(&["maintenance-closed"])
        .next("2026-10-06T02:00:00Z"),
        c("sep 2026: fallback on tue 8th", 3, "2026-09-08T02:00:00Z")
            .fallback()
            .allow(&["maintenance-open"]),
        c("aug 2026: fallback on tue 11th", 3, "2026-08-11T05:30:00Z")
            .fallback()
            .allow(&["maintenance-open"]),
        c(
            "aug 2026: fallback is not the first tuesday",
            3,
            "2026-08-04T02:00:00Z",
        )
        .fallback()
        .deny(&["maintenance-closed"])
        .next("2026-08-11T02:00:00Z"),
        c(
            "jun 2026: tue 9th primary closed",
            3,
            "2026-06-09T02:00:00Z",
        )
        .deny(&["maintenance-closed"])
        .next("2026-07-07T02:00:00Z"),
        c(
            "mar 2026: 01:59 before the window",
            3,
            "2026-03-03T01:59:00Z",
        )
        .deny(&["maintenance-closed"])
        .next("2026-03-03T02:00:00Z"),
        c("mar 2026: 05:30 fits", 3, "2026-03-03T05:30:00Z").allow(&["maintenance-open"]),
        c("mar 2026: 05:31 overruns 06:00", 3, "2026-03-03T05:31:00Z")
            .deny(&["maintenance-overrun"])
            .next("2026-04-07T02:00:00Z"),
        c("mar 2026: 4h fills the window", 3, "2026-03-03T02:00:00Z")
            .dur("4h")
            .allow(&["maintenance-open"]),
        c(
            "mar 2026: 4h 1m exceeds the maximum",
            3,
            "2026-03-03T02:00:00Z",
        )
        .dur("4h 1m")
        .deny(&["maintenance-overrun"])
        .no_next(),
        c(
            "cat 3 in the standard window is closed",
            3,
            "2026-03-04T12:00:00Z",
        )
        .deny(&["maintenance-closed"])
        .next("2026-04-07T02:00:00Z"),
        c("announced exactly 14 days ahead", 3, "2026-04-07T02:00:00Z")
            .announced("2026-03-24T02:00:00Z")
            .allow(&["maintenance-announced"]),
        c("announced 1 minute late", 3, "2026-04-07T02:00:00Z")
            .announced("2026-03-24T02:01:00Z")
            .deny(&["maintenance-not-announced"])
            .next("2026-05-05T02:00:00Z"),
        c(
            "fallback announced in time for the 2nd tuesday",
            3,
            "2026-04-14T02:00:00Z",
        )
        .fallback()
        .announced("2026-03-31T02:00:00Z")
        .allow(&["maintenance-announced"]),
        c("wide window: 4h from 03:30 fits", 3, "2026-03-03T03:30:00Z")
            .variant(LongMaintenance)
            .dur("4h")
            .allow(&["maintenance-open"]),
        c(
            "wide window: 5h exceeds max_duration though the window is 6h",
            3,
            "2026-03-03T02:00:00Z",
        )
        .variant(LongMaintenance)
        .dur("5h")
        .deny(&["maintenance-overrun"])
        .no_next(),
        // --- DST: every window in Europe/Berlin (policy override) ----------------------------
        c(
            "berlin tue before DST: 10:00 CET is 09:00Z",
            2,
            "2026-03-24T09:00:00Z",
        )
        .variant(Berlin)
        .allow(&["window-standard-open", "window-preferred"]),
        c(
            "berlin tue before DST: 08:59Z is 09:59 CET",
            2,
            "2026-03-24T08:59:00Z",
        )
        .variant(Berlin)
        .deny(&["window-closed"])
        .next("2026-03-24T09:00:00Z"),
        c(
            "berlin tue after DST: 10:00 CEST is 08:00Z",
            2,
            "2026-03-31T08:00:00Z",
        )
        .variant(Berlin)
        .allow(&["window-standard-open"]),
        c(
            "berlin tue after DST: 07:59Z is 09:59 CEST",
            2,
            "2026-03-31T07:59:00Z",
        )
        .variant(Berlin)
        .deny(&["window-closed"])
        .next("2026-03-31T08:00:00Z"),
        c(
            "berlin fri 16:00 CET freeze is 15:00Z",
            2,
            "2026-03-27T15:00:00Z",
        )
        .variant(Berlin)
        .deny(&["freeze-weekend"])
        .next("2026-03-30T08:00:00Z"),
        c(
            "berlin freeze spanning DST ends mon 08:00 CEST = 06:00Z",
            2,
            "2026-03-30T05:59:00Z",
        )
        .variant(Berlin)
        .dur("1m")
        .deny(&["freeze-weekend"]),
        c(
            "berlin after fall-back: 10:00 CET is 09:00Z",
            2,
            "2026-10-27T09:00:00Z",
        )
        .variant(Berlin)
        .allow(&["window-standard-open"]),
        c(
            "berlin maintenance 02:00 CEST is 00:00Z",
            3,
            "2026-04-07T00:00:00Z",
        )
        .variant(Berlin)
        .allow(&["maintenance-open"]),
        c(
            "berlin holiday freeze starts at local midnight",
            2,
            "2026-12-24T23:00:00Z",
        )
        .variant(Berlin)
        .dur("1m")
        .deny(&["freeze-holiday"]),
        c(
            "spring-forward sunday: the 02:00-03:00 slot does not exist",
            2,
            "2026-03-29T01:00:00Z",
        )
        .variant(BerlinSunday)
        .dur("1m")
        .deny(&["window-closed"])
        .next("2026-03-30T08:00:00Z"),
        c(
            "a normal sunday: the 02:00-03:00 CET slot is 01:00Z",
            2,
            "2026-03-22T01:00:00Z",
        )
        .variant(BerlinSunday)
        .allow(&["window-standard-open"]),
        c(
            "spring-forward sunday: 5th-sunday maintenance opens 01:00Z",
            3,
            "2026-03-29T01:00:00Z",
        )
        .variant(BerlinSunday)
        .dur("3h")
        .allow(&["maintenance-open"]),
        c(
            "spring-forward sunday: the window is only 3h long",
            3,
            "2026-03-29T01:00:00Z",
        )
        .variant(BerlinSunday)
        .dur("3h 1m")
        .deny(&["maintenance-overrun"]),
        c(
            "fall-back sunday: 02:00-03:00 local lasts 2h (00:00Z-02:00Z)",
            2,
            "2026-10-25T01:30:00Z",
        )
        .variant(BerlinSunday)
        .allow(&["window-standard-open"]),
        c(
            "fall-back sunday: 02:00Z is past the window",
            2,
            "2026-10-25T02:00:00Z",
        )
        .variant(BerlinSunday)
        .dur("1m")
        .deny(&["window-closed"]),
    ]
}

fn failures(base: &Policy) -> Vec<String> {
    cases()
        .iter()
        .filter_map(|case| case.verify(&check(&apply(base, case.variant), &case.req)))
        .collect()
}

#[test]
fn seed_table_has_at_least_60_cases() {
    assert!(cases().len() >= 60, "{}", cases().len());
}

#[test]
fn seed_table() {
    let f = failures(&seed());
    assert!(
        f.is_empty(),
        "{} case(s) failed:\n{}",
        f.len(),
        f.join("\n")
    );
}

/// Each seed window rule, removed or weakened in the default policy, must make a case fail.
#[test]
fn rule_removal_is_detected() {
    type Mutant = (&'static str, fn(&mut Policy));
    let mutants: &[Mutant] = &[
        ("standard monday slot", |p| {
            p.windows
                .standard
                .slots
                .retain(|s| !s.days.contains(&changegate_policy::Weekday::Mon))
        }),
        ("standard tue-thu slot", |p| {
            p.windows
                .standard
                .slots
                .retain(|s| !s.days.contains(&changegate_policy::Weekday::Tue))
        }),
        ("standard friday slot", |p| {
            p.windows
                .standard
                .slots
                .retain(|s| !s.days.contains(&changegate_policy::Weekday::Fri))
        }),
        ("preferred slot", |p| p.windows.preferred.slots.clear()),
        ("weekend freeze", |p| {
            p.freezes.shift_remove("weekend");
        }),
        ("holiday freeze", |p| {
            p.freezes.shift_remove("holiday");
        }),
        ("incident freeze", |p| {
            p.freezes.shift_remove("incident");
        }),
        ("incident remediation exception", |p| {
            if let Some(Freeze::Incident {
                except_remediation, ..
            }) = p.freezes.get_mut("incident")
            {
                *except_remediation = false;
            }
        }),
        ("maintenance first tuesday", |p| {
            p.windows.maintenance.nth = 2
        }),
        ("maintenance fallback", |p| {
            p.windows.maintenance.fallback_nth = None
        }),
        ("maintenance max duration", |p| {
            p.windows.maintenance.max_duration = "8h".parse().unwrap()
        }),
        ("maintenance announcement lead", |p| {
            p.windows.maintenance.announce_lead = "0s".parse().unwrap()
        }),
        ("exception approvers", |p| {
            p.exceptions.approvers.retain(|r| r != "sre-lead")
        }),
        ("exception reasons", |p| {
            p.exceptions.reasons.shift_remove("performance");
        }),
        ("cat 3 emergency approver", |p| {
            for c in p.categories.values_mut() {
                if c.level == 3 {
                    c.emergency_approvers.clear();
                }
            }
        }),
        ("cat 1 any time", |p| {
            set_class(p, 1, changegate_policy::WindowClass::Standard)
        }),
        ("cat 2 standard", |p| {
            set_class(p, 2, changegate_policy::WindowClass::AnyTime)
        }),
        ("cat 3 maintenance", |p| {
            set_class(p, 3, changegate_policy::WindowClass::Standard)
        }),
        ("cat 4 emergency", |p| {
            set_class(p, 4, changegate_policy::WindowClass::AnyTime)
        }),
    ];
    for (name, mutate) in mutants {
        let mut p = seed();
        mutate(&mut p);
        assert!(
            !failures(&p).is_empty(),
            "removing the {name} rule went unnoticed by the table"
        );
    }
}

fn set_class(p: &mut Policy, level: u8, class: changegate_policy::WindowClass) {
    for c in p.categories.values_mut() {
        if c.level == level {
            c.window = class;
        }
    }
}

//! Change-window calendar: is a change of category N allowed to run from `start` for `duration`,
//! why or why not, and when is the next allowed slot? Pure: every input, including "now", is an
//! argument.
//!
//! API CONTRACT (used by the gate crate; extend, do not break): [`WindowRequest`], [`check`],
//! [`next_slot`], [`WindowDecision`], [`Reason`] (its code a typed [`ReasonCode`]),
//! [`business_days_between`], [`add_business_days`].
//!
//! Files: this one holds the request and answer types and [`Calendar::evaluate`] (standard and
//! any-time windows, freezes, exceptions lifting denials); `modifiers.rs` evaluates the category,
//! the exception and the incidents of a request, `maintenance.rs` the category-3 maintenance
//! window, `ivs.rs` the interval arithmetic, `business.rs` business days, [`codes`] every reason
//! code and [`month`] month views.
#![deny(missing_docs)]

mod business;
pub mod codes;
mod ivs;
mod maintenance;
mod modifiers;
pub mod month;
mod on_call;

pub use codes::{Code, ReasonCode};
pub use on_call::{OnCallShift, on_call};

use changegate_policy::{Level, Policy, WindowClass};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use ivs::{CalFreeze, Iv, MaintenanceRule, WeeklySlots};
use modifiers::Ctx;

/// Which maintenance occurrence a category-3 change targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceSlot {
    /// The regular occurrence (first Tuesday in the seed).
    #[default]
    Primary,
    /// The fallback occurrence (second Tuesday), used when the primary window failed.
    Fallback,
}

/// An active incident, as far as the calendar cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveIncident {
    /// Incident id.
    pub id: String,
    /// Severity, e.g. `P1`.
    pub severity: String,
    /// Whether the change being checked is this incident's remediation.
    pub remediated_by_this_change: bool,
}

/// An approved out-of-window exception carried by the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionGrant {
    /// Reason id from `[exceptions.reasons]`, e.g. `security-patch`.
    pub reason: String,
    /// Roles that approved it (checked against `exceptions.approvers`).
    pub approved_roles: Vec<String>,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowRequest {
    /// Category level of the change.
    pub category: Level,
    /// When the deployment would start.
    pub start: Timestamp,
    /// How long it runs; the whole of it must be inside allowed time.
    pub duration: SignedDuration,
    /// Exception carried by the change, if any.
    pub exception: Option<ExceptionGrant>,
    /// Incidents active at `start`.
    pub incidents: Vec<ActiveIncident>,
    /// Category 3: which maintenance occurrence.
    pub maintenance: MaintenanceSlot,
    /// Category 3: when the maintenance window was announced (`None` = not checked).
    pub announced_at: Option<Timestamp>,
}

/// One rule that applied to the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable kebab-case code, e.g. `window-closed` or `freeze-weekend`.
    pub code: ReasonCode,
    /// For people.
    pub message: String,
    /// Whether this reason denies.
    pub denies: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDecision {
    /// Allowed for the whole duration.
    pub allowed: bool,
    /// Every rule that applied, allowing and denying.
    pub reasons: Vec<Reason>,
    /// Inside the preferred window (category 2 only).
    pub preferred: Option<bool>,
    /// When denied: the earliest start at which the change fits (within a one-year horizon).
    pub next_slot: Option<Timestamp>,
}

/// How far [`check`] looks for the next slot when it denies: one year and a day, so that a
/// yearly freeze never hides the following slot.
pub const NEXT_SLOT_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 366);

/// Check a request against the policy's windows.
pub fn check(policy: &Policy, req: &WindowRequest) -> WindowDecision {
    Calendar::new(policy).check(req)
}

/// The earliest start at or after `req.start` at which the change fits entirely inside allowed
/// time, searching up to `horizon` ahead.
pub fn next_slot(
    policy: &Policy,
    req: &WindowRequest,
    horizon: SignedDuration,
) -> Option<Timestamp> {
    Calendar::new(policy).next_slot(req, horizon)
}

/// Business days from `from` to `to` under the policy's business-day calendar (holidays
/// excluded): the number of business-day starts in `(from, to]`.
pub fn business_days_between(policy: &Policy, from: Timestamp, to: Timestamp) -> i64 {
    business::between(&policy.business_days, from, to)
}

/// `at` moved forward by `days` business days.
pub fn add_business_days(policy: &Policy, at: Timestamp, days: u32) -> Timestamp {
    business::add(&policy.business_days, at, days)
}

/// The policy's calendar rules compiled once (time zones resolved, slots indexed by weekday), for
/// callers that check many requests against one policy. [`check`] and [`next_slot`] build one per
/// call; building costs a few time-zone lookups.
#[derive(Debug, Clone)]
pub struct Calendar<'p> {
    policy: &'p Policy,
    standard: WeeklySlots,
    preferred: WeeklySlots,
    maintenance: MaintenanceRule,
    freezes: Vec<CalFreeze>,
}

pub(crate) fn reason(
    code: impl Into<ReasonCode>,
    denies: bool,
    message: impl Into<String>,
) -> Reason {
    Reason {
        code: code.into(),
        message: message.into(),
        denies,
    }
}

/// `ts` as local time in `tz`, naming the zone.
pub(crate) fn show(tz: &TimeZone, ts: Timestamp) -> String {
    let dt = tz.to_datetime(ts);
    let name = tz.iana_name().unwrap_or("UTC");
    format!("{} {name}", dt.strftime("%a %Y-%m-%d %H:%M"))
}

const ONE_NS: SignedDuration = SignedDuration::from_nanos(1);

impl<'p> Calendar<'p> {
    /// Compile the calendar rules of `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        let m = &policy.windows.maintenance;
        Calendar {
            policy,
            standard: WeeklySlots::new(
                policy.standard_tz().to_jiff(),
                &policy.windows.standard.slots,
            ),
            preferred: WeeklySlots::new(
                policy.preferred_tz().to_jiff(),
                &policy.windows.preferred.slots,
            ),
            maintenance: MaintenanceRule {
                tz: policy.maintenance_tz().to_jiff(),
                weekday: m.weekday.to_jiff(),
                start: m.start,
                end: m.end,
            },
            freezes: CalFreeze::compile(policy),
        }
    }

    /// The policy this calendar was compiled from.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Allowed time within `[a, b)` for a request with this context, normalized and clipped.
    fn allowed(&self, ctx: &Ctx, a: Timestamp, b: Timestamp) -> Vec<Iv> {
        if ctx.blocked || a >= b {
            return Vec::new();
        }
        if ctx.open {
            return vec![Iv { s: a, e: b }];
        }
        // An approved exception lifts the window closure; the freezes it does not lift still cut.
        let base = match ctx.class {
            _ if ctx.exception.is_some() => vec![Iv { s: a, e: b }],
            WindowClass::AnyTime | WindowClass::Emergency => vec![Iv { s: a, e: b }],
            WindowClass::Standard => self.standard.intervals(a, b),
            WindowClass::Maintenance => match ctx.nth {
                None => Vec::new(),
                Some(n) => self
                    .maintenance
                    .occurrences(n, a, b)
                    .into_iter()
                    .filter(|o| ctx.earliest_occurrence.is_none_or(|t| o.iv.s >= t))
                    .map(|o| o.iv)
                    .collect(),
            },
        };
        let cuts = self.freeze_cuts(ctx, a, b);
        ivs::clip(&ivs::subtract(&base, &cuts), a, b)
    }

    fn freeze_cuts(&self, ctx: &Ctx, a: Timestamp, b: Timestamp) -> Vec<Iv> {
        let mut cuts = Vec::new();
        for f in self
            .freezes
            .iter()
            .filter(|f| f.applies_to.contains(&ctx.level) && !ctx.lifts(&f.lifted_by))
        {
            cuts.extend(f.intervals(a, b));
        }
        ivs::normalize(cuts)
    }

    /// The allowed intervals for a request's category, exception, incidents and maintenance
    /// options within `[a, b)` (its start and duration are ignored). Used by month views.
    pub fn allowed_intervals(
        &self,
        req: &WindowRequest,
        a: Timestamp,
        b: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        match self.modifiers(req, &mut x, &mut y) {
            Some(ctx) => self
                .allowed(&ctx, a, b)
                .into_iter()
                .map(|iv| (iv.s, iv.e))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The earliest start at or after `req.start` (and at most `horizon` later) at which the
    /// whole duration fits inside allowed time.
    pub fn next_slot(&self, req: &WindowRequest, horizon: SignedDuration) -> Option<Timestamp> {
        if req.duration.is_negative() || horizon.is_negative() {
            return None;
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let ctx = self.modifiers(req, &mut x, &mut y)?;
        if ctx.blocked {
            return None;
        }
        if ctx.class == WindowClass::Maintenance
            && !ctx.open
            && ctx.exception.is_none()
            && req.duration > self.policy.windows.maintenance.max_duration.get()
        {
            return None;
        }
        let dur = req.duration.max(ONE_NS);
        let from = req.start;
        let limit = ivs::add(from, horizon);
        let end = ivs::add(limit, dur);
        // Look ahead a week first, then double: most answers are within days, and a wider range
        // costs only the intervals it contains.
        let mut width = SignedDuration::from_hours(24 * 8);
        loop {
            let b = ivs::add(from, width).min(end);
            for iv in self.allowed(&ctx, from, b) {
                let s = iv.s.max(from);
                if s > limit {
                    return None;
                }
                if iv.e.duration_since(s) >= dur {
                    return Some(s);
                }
            }
            if b >= end {
                return None;
            }
            width = width.checked_mul(2).unwrap_or(SignedDuration::MAX);
        }
    }

    /// Check a request: every rule that applies, allowed or not, and the next slot when denied.
    pub fn check(&self, req: &WindowRequest) -> WindowDecision {
        let mut d = self.evaluate(req);
        if !d.allowed {
            d.next_slot = self.next_slot(req, NEXT_SLOT_HORIZON);
        }
        d
    }

    /// [`Calendar::check`] without the next-slot search (`next_slot` is always `None`): the
    /// verdict and its reasons only, for callers that scan many instants.
    pub fn evaluate(&self, req: &WindowRequest) -> WindowDecision {
        let deny = |r: Reason| WindowDecision {
            allowed: false,
            reasons: vec![r],
            preferred: None,
            next_slot: None,
        };
        if req.duration.is_negative() {
            return deny(reason(
                Code::DurationInvalid,
                true,
                format!("duration {} is negative", req.duration),
            ));
        }
        let (mut exc, mut inc) = (Vec::new(), Vec::new());
        let Some(ctx) = self.modifiers(req, &mut exc, &mut inc) else {
            return deny(reason(
                Code::CategoryUnknown,
                true,
                format!(
                    "the policy has no category with level {} (fail closed)",
                    req.category
                ),
            ));
        };
        let p = self.policy;
        let s = req.start;
        let e = ivs::add(s, req.duration.max(ONE_NS));
        let (_, cat) = p.category(req.category).expect("modifiers found it");
        let mut cal: Vec<Reason> = Vec::new();
        let mut preferred = None;

        match ctx.class {
            WindowClass::Emergency => cal.push(reason(
                Code::EmergencyOverride,
                false,
                format!(
                    "category {} ({}) may ship at any time, overriding every restriction",
                    ctx.level, cat.name
                ),
            )),
            WindowClass::AnyTime => cal.push(reason(
                Code::WindowAnyTime,
                false,
                format!("category {} ({}) may ship at any time", ctx.level, cat.name),
            )),
            WindowClass::Standard => {
                let tz = &self.standard.tz;
                let base = self.standard.intervals(s, e);
                match base.iter().find(|iv| iv.s <= s && s < iv.e) {
                    Some(iv) if e <= iv.e => cal.push(reason(
                        Code::WindowStandardOpen,
                        false,
                        format!(
                            "inside the standard window {} to {}",
                            show(tz, iv.s),
                            show(tz, iv.e)
                        ),
                    )),
                    Some(iv) => cal.push(reason(
                        Code::WindowOverrun,
                        true,
                        format!(
                            "would run until {}, past the standard window's end {}",
                            show(tz, e),
                            show(tz, iv.e)
                        ),
                    )),
                    None => cal.push(reason(
                        Code::WindowClosed,
                        true,
                        format!("{} is outside every standard window", show(tz, s)),
                    )),
                }
                let inside = self
                    .preferred
                    .intervals(s, e)
                    .iter()
                    .any(|iv| iv.contains(s, e));
                preferred = Some(inside);
                cal.push(if inside {
                    reason(Code::WindowPreferred, false, "inside the preferred window")
                } else {
                    reason(
                        Code::WindowNotPreferred,
                        false,
                        "outside the preferred window (allowed, not preferred)",
                    )
                });
            }
            WindowClass::Maintenance => self.check_maintenance(req, &ctx, e, &mut cal),
        }

        if ctx.class != WindowClass::Emergency {
            for f in self
                .freezes
                .iter()
                .filter(|f| f.applies_to.contains(&ctx.level))
            {
                if let Some(iv) = f.intervals(s, e).iter().find(|iv| iv.overlaps(s, e)) {
                    cal.push(reason(
                        ReasonCode::freeze(f.key.as_str()),
                        true,
                        format!("{}: {} to {}", f.name, show(&f.tz, iv.s), show(&f.tz, iv.e)),
                    ));
                }
            }
        }

        let exception_applies = exc.iter().any(|r| r.code == Code::ExceptionApplied);
        if exception_applies {
            let mut overridden = 0;
            for r in cal.iter_mut().filter(|r| r.denies) {
                let freeze = r
                    .code
                    .freeze_key()
                    .and_then(|k| self.freezes.iter().find(|f| f.key == k));
                match freeze {
                    Some(f) if !ctx.lifts(&f.lifted_by) => {
                        let by = if f.lifted_by.is_empty() {
                            "only an emergency lifts it".to_string()
                        } else {
                            format!("only {} lift it", f.lifted_by.join(", "))
                        };
                        r.message.push_str(&format!(
                            " (not lifted by the exception `{}`: {by})",
                            ctx.exception.as_deref().unwrap_or_default()
                        ));
                    }
                    _ => {
                        r.denies = false;
                        r.message.push_str(" (overridden by the exception)");
                        overridden += 1;
                    }
                }
            }
            if overridden == 0 {
                for r in exc.iter_mut() {
                    r.code = Code::ExceptionNotNeeded.into();
                    r.message = format!(
                        "{} — not needed, the change is inside allowed time",
                        r.message
                    );
                }
            }
        }

        let mut reasons = cal;
        reasons.extend(exc);
        reasons.extend(inc);
        let allowed = !reasons.iter().any(|r| r.denies);
        let next_slot = if allowed {
            None
        } else {
            self.next_slot(req, NEXT_SLOT_HORIZON)
        };
        WindowDecision {
            allowed,
            reasons,
            preferred,
            next_slot,
        }
    }
}

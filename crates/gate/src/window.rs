//! The window side of the decision: change windows, freezes (weekend, holiday, active P0/P1
//! incidents), out-of-window exceptions and maintenance announcements. The calendar crate owns
//! the time arithmetic; this module assembles its input from the change and the world, and turns
//! its answer into gate reasons.
//!
//! Mapping (on the calendar's typed codes): a denying calendar reason `freeze-<key>` becomes `freeze-active`, the calendar's
//! `maintenance-not-announced` (announced too late) keeps that code, any other denying one becomes
//! `window-closed`; each carries the calendar's own code and the next slot. If the
//! calendar denies without saying why, the gate still denies (`window-closed`): fail closed.
//! An exception is handed to the calendar only when the gate finds it valid (known reason, minimum
//! severity, evidence, every approver role filled by a holder who did not write the change,
//! distinct people unless the policy allows one person many roles).

use changegate_calendar::{
    ActiveIncident, Code as CalCode, ExceptionGrant, MaintenanceSlot, ReasonCode, WindowRequest,
};
use changegate_policy::{LIFT_MAINTENANCE_ANNOUNCEMENT, Level, Policy, WindowClass, WindowHolds};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::codes::Code;
use crate::model::{ChangeState, MaintenanceOccurrence, WorldState};
use crate::people::{canonical, holding, relations};
use crate::reason::Reason;

/// Result of the window check.
pub struct WindowOutcome {
    /// Reasons.
    pub reasons: Vec<Reason>,
    /// The calendar allowed the deploy.
    pub allowed: bool,
    /// Next allowed start, when denied.
    pub next_slot: Option<Timestamp>,
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Validate the change's exception; `Ok(None)` when it has none.
pub fn exception_grant(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    level: Level,
) -> Result<Option<ExceptionGrant>, Vec<String>> {
    let Some(ex) = &state.exception else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let cat = policy.category(level).map(|(_, c)| c);
    let mut roles: Vec<String> = Vec::new();
    if policy.exceptions.applies_to.contains(&level) {
        roles.extend(policy.exceptions.approvers.iter().cloned());
    }
    for r in cat
        .map(|c| c.emergency_approvers.as_slice())
        .unwrap_or_default()
    {
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    if roles.is_empty() {
        problems.push(format!(
            "the policy grants no out-of-window exceptions for category {level}"
        ));
    }
    match policy.exceptions.reasons.get(&ex.reason) {
        None => problems.push(format!(
            "unknown exception reason `{}` (known: {})",
            ex.reason,
            policy
                .exceptions
                .reasons
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(r) => {
            if let Some(min) = &r.min_severity {
                let rank = |s: &str| SEVERITIES.iter().position(|x| *x == s.to_ascii_lowercase());
                let ok = match (ex.severity.as_deref().and_then(rank), rank(min)) {
                    (Some(have), Some(need)) => have >= need,
                    _ => false,
                };
                if !ok {
                    problems.push(format!(
                        "reason `{}` needs severity {min} or higher (given: {})",
                        ex.reason,
                        ex.severity.as_deref().unwrap_or("none")
                    ));
                }
            }
            if let Some(kind) = &r.requires_evidence
                && ex.evidence.as_deref().is_none_or(|e| e.trim().is_empty())
            {
                problems.push(format!("reason `{}` requires evidence ({kind})", ex.reason));
            }
            if let Some(plan) = &ex.plan
                && !r.plans.contains(plan)
            {
                problems.push(format!(
                    "reason `{}` may not select rollout plan `{plan}` (it may select: {})",
                    ex.reason,
                    if r.plans.is_empty() {
                        "none".to_string()
                    } else {
                        r.plans.join(", ")
                    }
                ));
            }
        }
    }
    let mut used: Vec<String> = Vec::new();
    let mut approved = Vec::new();
    for role in &roles {
        let mut ok = false;
        for a in ex.approvals.iter().filter(|a| a.role == *role) {
            let p = canonical(world, &a.person);
            if holding(policy, world, state, &a.person, role).is_none() {
                problems.push(format!("{p} does not hold `{role}`"));
            } else if !policy.separation_of_duties.author_may_approve
                && !relations(world, state, &a.person).is_empty()
            {
                problems.push(format!(
                    "{p} wrote the change and may not approve its exception"
                ));
            } else if !policy.separation_of_duties.one_person_many_roles && used.contains(&p) {
                problems.push(format!(
                    "{p} already approved the exception in another role"
                ));
            } else {
                used.push(p);
                ok = true;
                break;
            }
        }
        if ok {
            approved.push(role.clone());
        } else {
            problems.push(format!("exception not approved by `{role}`"));
        }
    }
    if problems.is_empty() {
        Ok(Some(ExceptionGrant {
            reason: ex.reason.clone(),
            approved_roles: approved,
        }))
    } else {
        Err(problems)
    }
}

/// What an approved emergency exception lifts (the category's `emergency_exception.lifts`), with
/// the exception that lifts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyLift {
    /// Requirements lifted (`maintenance-announcement`, lead-time ids).
    pub lifts: Vec<String>,
    /// The exception's reason.
    pub reason: String,
    /// Roles that approved it (the category's `emergency_approvers`: the CTO).
    pub approved_roles: Vec<String>,
}

impl EmergencyLift {
    /// Whether `what` is lifted.
    pub fn lifts(&self, what: &str) -> bool {
        self.lifts.iter().any(|l| l == what)
    }

    /// The audited reason for lifting `what`, which would otherwise have denied with `would_deny`.
    pub fn reason(&self, level: Level, what: &str, would_deny: Code, message: String) -> Reason {
        Reason::info(
            Code::EmergencyExceptionLift,
            format!(
                "{message}: lifted by the emergency exception `{}` approved by {}",
                self.reason,
                self.approved_roles.join(" + ")
            ),
            json!({ "lift": what, "would_deny": would_deny, "exception_reason": self.reason, "approved_roles": self.approved_roles, "category": level }),
        )
    }
}

/// The emergency lift of the change's exception: `Some` when the exception is valid, every role of
/// the category's `emergency_approvers` approved it and the category has an `emergency_exception`.
/// The change keeps its category (an emergency exception is not an emergency declaration).
pub fn emergency_lift(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    level: Level,
) -> Option<EmergencyLift> {
    let (_, cat) = policy.category(level)?;
    let ex = cat.emergency_exception.as_ref()?;
    let grant = exception_grant(policy, state, world, level).ok()??;
    let all = !cat.emergency_approvers.is_empty()
        && cat
            .emergency_approvers
            .iter()
            .all(|r| grant.approved_roles.contains(r));
    all.then(|| EmergencyLift {
        lifts: ex.lifts.clone(),
        reason: grant.reason.clone(),
        approved_roles: cat.emergency_approvers.clone(),
    })
}

/// How long the change window must hold the deployment, and the rollout-plan reasons. A plan
/// whose `window_holds` is `first-production-step` (the high-risk feature-flag rollout) has the
/// window hold the production deployment up to its first production step — the change's
/// `deploy_duration`, default `default` — while the flag promotions that follow over hours or days
/// are checked against the plan's steps (`rollout-plan-followed` / `rollout-plan-mismatch`), not
/// against the window. A `whole-rollout` plan has the window hold the change's `deploy_duration`
/// (default `default`), as before.
pub fn deploy_span(
    policy: &Policy,
    state: &ChangeState,
    level: Level,
    default: SignedDuration,
) -> (SignedDuration, Vec<Reason>) {
    let mut out = Vec::new();
    let duration = state
        .change
        .deploy_duration
        .as_ref()
        .map(|d| d.get())
        .unwrap_or(default);
    let Some((_, cat)) = policy.category(level) else {
        return (duration, out);
    };
    let Some(plan) = policy.rollout.plans.get(&cat.rollout_plan) else {
        return (duration, out);
    };
    let steps: Vec<&changegate_policy::Step> = plan
        .steps
        .iter()
        .filter(|s| s.environment == "production")
        .collect();
    let expected: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| json!({ "weight": s.weight, "soak": s.soak.as_ref().map(|d| d.to_string()) }))
        .collect();
    let declared = state.flag_rollout.as_ref();
    let mut problems = Vec::new();
    if let Some(d) = declared {
        if d.len() != steps.len() {
            problems.push(format!(
                "{} steps declared, the `{}` plan has {}",
                d.len(),
                cat.rollout_plan,
                steps.len()
            ));
        }
        for (n, (have, want)) in d.iter().zip(&steps).enumerate() {
            if have.weight != want.weight {
                problems.push(format!(
                    "step {}: {} % where the plan has {} %",
                    n + 1,
                    have.weight,
                    want.weight
                ));
            }
            if let Some(min) = &want.soak {
                let got = have.soak.as_ref().map_or(SignedDuration::ZERO, |s| s.get());
                if got < min.get() {
                    problems.push(format!(
                        "step {} ({} %): soak {:#} shorter than the plan's {min}",
                        n + 1,
                        have.weight,
                        got
                    ));
                }
            }
        }
    }
    let first_step = plan.window_holds == WindowHolds::FirstProductionStep;
    let details = json!({
        "plan": cat.rollout_plan, "window_holds": plan.window_holds, "plan_steps": expected,
        "declared": declared, "window_duration_secs": duration.as_secs(),
        "rollout_span_secs": plan.span().as_secs(),
    });
    if !problems.is_empty() {
        out.push(Reason::deny(
            Code::RolloutPlanMismatch,
            format!(
                "the declared flag rollout does not follow the `{}` plan ({}): {}",
                cat.rollout_plan,
                plan.description,
                problems.join("; ")
            ),
            crate::approval::with(details, json!({ "problems": problems })),
        ));
    } else if first_step {
        out.push(Reason::info(
            Code::RolloutPlanFollowed,
            format!(
                "the window holds the production deployment up to its first production step ({duration:#}); the flag rollout follows the `{}` plan over {:#}",
                cat.rollout_plan,
                plan.span()
            ),
            details,
        ));
    }
    (duration, out)
}

/// Whether a calendar reason says a valid-looking exception was not applied (an exception reason
/// other than applied or not needed). Exhaustive, so a new calendar code must be sorted here.
fn is_exception_problem(code: &ReasonCode) -> bool {
    use CalCode as C;
    match code.code() {
        C::ExceptionNotApplicable | C::ExceptionUnknownReason | C::ExceptionMissingApproval => true,
        C::ExceptionApplied
        | C::ExceptionNotNeeded
        | C::WindowAnyTime
        | C::EmergencyOverride
        | C::WindowStandardOpen
        | C::WindowClosed
        | C::WindowOverrun
        | C::WindowPreferred
        | C::WindowNotPreferred
        | C::MaintenanceOpen
        | C::MaintenanceClosed
        | C::MaintenanceOverrun
        | C::MaintenanceNoFallback
        | C::MaintenanceAnnounced
        | C::MaintenanceNotAnnounced
        | C::MaintenanceAnnouncementUnchecked
        | C::IncidentRemediation
        | C::CategoryUnknown
        | C::DurationInvalid
        | C::Freeze => false,
    }
}

/// Check the deploy window at `start` for `duration`; `lift` is the change's emergency lift
/// ([`emergency_lift`]), if any.
pub fn evaluate(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    level: Level,
    start: Timestamp,
    duration: SignedDuration,
    lift: Option<&EmergencyLift>,
) -> WindowOutcome {
    let mut reasons = Vec::new();
    let remediates = |id: &str| {
        state.remediates.iter().any(|r| r == id)
            || state.emergency.as_ref().is_some_and(|e| e.incident == id)
    };
    let incidents: Vec<ActiveIncident> = world
        .incidents
        .iter()
        .filter(|i| i.active_at(start))
        .map(|i| ActiveIncident {
            id: i.id.clone(),
            severity: i.severity.clone(),
            remediated_by_this_change: remediates(&i.id),
        })
        .collect();

    let exception = match exception_grant(policy, state, world, level) {
        Ok(g) => g,
        Err(problems) => {
            reasons.push(Reason::info(
                Code::ExceptionInvalid,
                format!("exception ignored: {}", problems.join("; ")),
                json!({ "reason": state.exception.as_ref().map(|e| &e.reason), "problems": problems }),
            ));
            None
        }
    };

    let maintenance = policy
        .category(level)
        .is_some_and(|(_, c)| c.window == WindowClass::Maintenance);
    let mut announced_at = None;
    let lift_announcement = lift.filter(|l| l.lifts(LIFT_MAINTENANCE_ANNOUNCEMENT));
    let mut announcement = Vec::new();
    if maintenance {
        let end = start.checked_add(duration).unwrap_or(start);
        let ann = world
            .announcements
            .iter()
            .filter(|a| a.window_start <= start && end <= a.window_end)
            .min_by_key(|a| (a.announced_at, a.id.clone()));
        match ann {
            None => announcement.push(Reason::deny(
                Code::MaintenanceNotAnnounced,
                "no maintenance announcement covers the deploy",
                json!({ "deploy_start": start, "deploy_end": end }),
            )),
            Some(a) => {
                // Required as sent: only what changegate sent counts, and the announcement is
                // made when its last required channel accepted it.
                let sent_only = policy
                    .notifications
                    .requires_sent(changegate_policy::SENT_MAINTENANCE_ANNOUNCEMENT);
                let via: Vec<String> = if sent_only {
                    a.sent.iter().map(|s| s.via.clone()).collect()
                } else {
                    a.channels.clone()
                };
                announced_at = Some(if sent_only {
                    policy
                        .windows
                        .maintenance
                        .announce_via
                        .iter()
                        .filter_map(|c| a.sent.iter().filter(|s| &s.via == c).map(|s| s.at).min())
                        .max()
                        .unwrap_or(a.announced_at)
                } else {
                    a.announced_at
                });
                let missing: Vec<&String> = policy
                    .windows
                    .maintenance
                    .announce_via
                    .iter()
                    .filter(|c| !via.contains(c))
                    .collect();
                if !missing.is_empty() {
                    announcement.push(Reason::deny(
                        Code::MaintenanceAnnouncementIncomplete,
                        format!(
                            "announcement {} did not go out via {}{}",
                            a.id,
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            if sent_only { " (sent by changegate)" } else { "" }
                        ),
                        if sent_only {
                            json!({ "announcement": a.id, "channels": a.channels, "missing": missing, "requires_sent": true })
                        } else {
                            json!({ "announcement": a.id, "channels": a.channels, "missing": missing })
                        },
                    ));
                }
            }
        }
    }

    match lift_announcement {
        Some(l) if !announcement.is_empty() => {
            for r in announcement {
                reasons.push(l.reason(level, LIFT_MAINTENANCE_ANNOUNCEMENT, r.code, r.message));
            }
            announced_at = None;
        }
        _ => reasons.extend(announcement),
    }

    let req = WindowRequest {
        category: level,
        start,
        duration,
        exception,
        incidents,
        maintenance: match state.change.maintenance {
            MaintenanceOccurrence::Primary => MaintenanceSlot::Primary,
            MaintenanceOccurrence::Fallback => MaintenanceSlot::Fallback,
        },
        announced_at,
    };
    let grant = req.exception.clone();
    let d = changegate_calendar::check(policy, &req);
    if let Some(g) = grant {
        let details = json!({ "reason": g.reason, "approved_roles": g.approved_roles });
        if d.reasons
            .iter()
            .any(|r| r.code == CalCode::ExceptionApplied)
        {
            reasons.push(Reason::info(
                Code::ExceptionApplied,
                format!(
                    "out-of-window exception `{}` approved by {} lifts the window restrictions",
                    g.reason,
                    g.approved_roles.join(" + ")
                ),
                details,
            ));
        } else if let Some(r) = d.reasons.iter().find(|r| is_exception_problem(&r.code)) {
            reasons.push(Reason::info(
                Code::ExceptionInvalid,
                format!("exception not applied: {}", r.message),
                crate::approval::with(details, json!({ "calendar_code": r.code })),
            ));
        }
    }
    let cal: Vec<_> = d
        .reasons
        .iter()
        .map(|r| json!({ "code": r.code, "message": r.message, "denies": r.denies }))
        .collect();
    let allowed = d.allowed && !d.reasons.iter().any(|r| r.denies);
    if allowed {
        reasons.push(Reason::info(
            Code::WindowOpen,
            format!("deploy at {start} for {duration:#} fits the category-{level} window"),
            json!({ "start": start, "duration_secs": duration.as_secs(), "preferred": d.preferred, "calendar": cal }),
        ));
    } else {
        let mut any = false;
        for r in d.reasons.iter().filter(|r| r.denies) {
            any = true;
            let code = match r.code.code() {
                CalCode::Freeze => Code::FreezeActive,
                CalCode::MaintenanceNotAnnounced => Code::MaintenanceNotAnnounced,
                _ => Code::WindowClosed,
            };
            reasons.push(Reason::deny(
                code,
                r.message.clone(),
                json!({ "calendar_code": r.code, "start": start, "duration_secs": duration.as_secs(), "next_slot": d.next_slot }),
            ));
        }
        if !any {
            reasons.push(Reason::deny(
                Code::WindowClosed,
                "the calendar denied the deploy without a reason (fail closed)",
                json!({ "start": start, "duration_secs": duration.as_secs(), "next_slot": d.next_slot, "calendar": cal }),
            ));
        }
    }
    WindowOutcome {
        reasons,
        allowed,
        next_slot: if allowed { None } else { d.next_slot },
    }
}

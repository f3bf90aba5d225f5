//! The modifiers of a request: its category's window class, the exception it carries and the
//! incidents active at its start. They decide which rules [`Calendar::evaluate`] applies and
//! which time is allowed at all.

use changegate_policy::{Freeze, Level, WindowClass};
use jiff::Timestamp;

use crate::codes::{Code, ReasonCode};
use crate::{Calendar, MaintenanceSlot, Reason, WindowRequest, ivs, reason};

/// What the modifiers (category, exception, incidents) make of a request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) level: Level,
    pub(crate) class: WindowClass,
    /// Which occurrence of the maintenance window (None: the policy has no such occurrence).
    pub(crate) nth: Option<u8>,
    /// A maintenance occurrence must start at or after this instant (announcement lead).
    pub(crate) earliest_occurrence: Option<Timestamp>,
    /// Every calendar restriction is lifted (emergency).
    pub(crate) open: bool,
    /// The reason of an approved exception: it lifts the window closure, and the freezes whose
    /// `lifted_by` lists it.
    pub(crate) exception: Option<String>,
    /// An incident freeze holds for as long as the incident is active.
    pub(crate) blocked: bool,
}

impl Ctx {
    /// Whether the approved exception lifts the freeze `key` (its `lifted_by` lists the reason).
    pub(crate) fn lifts(&self, lifted_by: &[String]) -> bool {
        self.exception
            .as_ref()
            .is_some_and(|r| lifted_by.contains(r))
    }
}

impl Calendar<'_> {
    /// Evaluate category, exception and incidents; push their reasons.
    pub(crate) fn modifiers(
        &self,
        req: &WindowRequest,
        exc: &mut Vec<Reason>,
        inc: &mut Vec<Reason>,
    ) -> Option<Ctx> {
        let p = self.policy;
        let (_, cat) = p.category(req.category)?;
        let m = &p.windows.maintenance;
        let emergency = cat.window == WindowClass::Emergency;
        let mut ctx = Ctx {
            level: req.category,
            class: cat.window,
            nth: match req.maintenance {
                MaintenanceSlot::Primary => Some(m.nth),
                MaintenanceSlot::Fallback => m.fallback_nth,
            },
            earliest_occurrence: req
                .announced_at
                .map(|at| ivs::add(at, m.announce_lead.get())),
            open: emergency,
            exception: None,
            blocked: false,
        };

        if let Some(g) = &req.exception {
            let required: &[String] = if p.exceptions.applies_to.contains(&req.category) {
                &p.exceptions.approvers
            } else {
                &cat.emergency_approvers
            };
            if emergency {
                exc.push(reason(
                    Code::ExceptionNotNeeded,
                    false,
                    "emergency changes need no window exception",
                ));
            } else if required.is_empty() {
                exc.push(reason(
                    Code::ExceptionNotApplicable,
                    false,
                    format!(
                        "the policy grants no out-of-window exceptions for category {}",
                        req.category
                    ),
                ));
            } else if let Some(r) = p.exceptions.reasons.get(&g.reason) {
                let missing: Vec<&str> = required
                    .iter()
                    .filter(|role| !g.approved_roles.contains(role))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    let mut note = String::new();
                    if let Some(sev) = &r.min_severity {
                        note.push_str(&format!("; requires severity {sev} or above"));
                    }
                    if let Some(ev) = &r.requires_evidence {
                        note.push_str(&format!("; requires evidence `{ev}`"));
                    }
                    ctx.exception = Some(g.reason.clone());
                    exc.push(reason(
                        Code::ExceptionApplied,
                        false,
                        format!(
                            "out-of-window exception `{}` ({}) approved by {}{note}",
                            g.reason,
                            r.description,
                            required.join(" + ")
                        ),
                    ));
                } else {
                    exc.push(reason(
                        Code::ExceptionMissingApproval,
                        false,
                        format!(
                            "exception `{}` lacks approval by {}",
                            g.reason,
                            missing.join(", ")
                        ),
                    ));
                }
            } else {
                let known: Vec<&str> = p.exceptions.reasons.keys().map(String::as_str).collect();
                exc.push(reason(
                    Code::ExceptionUnknownReason,
                    false,
                    format!(
                        "exception reason `{}` is not in the policy (known: {})",
                        g.reason,
                        known.join(", ")
                    ),
                ));
            }
        }

        for incident in &req.incidents {
            for (key, f) in &p.freezes {
                let Freeze::Incident {
                    name,
                    severities,
                    except_remediation,
                    applies_to,
                    lifted_by,
                } = f
                else {
                    continue;
                };
                if !applies_to.contains(&req.category)
                    || !severities
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&incident.severity))
                {
                    continue;
                }
                let what = format!(
                    "{name}: incident {} ({}) is active",
                    incident.id, incident.severity
                );
                if emergency {
                    inc.push(reason(
                        ReasonCode::freeze(key.as_str()),
                        false,
                        format!("{what}; overridden by the emergency"),
                    ));
                } else if *except_remediation && incident.remediated_by_this_change {
                    inc.push(reason(
                        Code::IncidentRemediation,
                        false,
                        format!("{what}; this change is its remediation, which the freeze allows"),
                    ));
                } else if let Some(why) = ctx.exception.as_ref().filter(|r| lifted_by.contains(r)) {
                    inc.push(reason(
                        ReasonCode::freeze(key.as_str()),
                        false,
                        format!("{what}; lifted by the approved exception `{why}`"),
                    ));
                } else {
                    ctx.blocked = true;
                    inc.push(reason(
                        ReasonCode::freeze(key.as_str()),
                        true,
                        format!("{what}; changes wait until it is resolved (no next slot while it lasts)"),
                    ));
                }
            }
        }
        Some(ctx)
    }
}

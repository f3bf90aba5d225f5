//! Cross-references added by ADR 0019: freezes lifted by exception reasons, what an emergency
//! exception lifts, the deploy-stage approval's checklist item, on-call rotations and the
//! rotations the incident commander is drawn from.

use super::{Ctx, i, k};
use crate::diag::DiagCode;
use crate::model::LIFT_MAINTENANCE_ANNOUNCEMENT;
use crate::source::Seg;
use crate::suggest::did_you_mean;

fn unknown(cx: &mut Ctx<'_>, what: &str, name: &str, known: &[&str], path: Vec<Seg>) {
    let help = match did_you_mean(name, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => format!("the policy declares no {what}"),
        None => format!("known: {}", known.join(", ")),
    };
    cx.report(
        DiagCode::UnknownReference,
        path,
        format!("unknown {what} `{name}`"),
        Some(help),
    );
}

/// Every reference check of ADR 0019.
pub(super) fn references(cx: &mut Ctx<'_>) {
    let p = cx.policy;
    let reasons: Vec<&str> = p.exceptions.reasons.keys().map(String::as_str).collect();
    for (key, f) in &p.freezes {
        for (n, r) in f.lifted_by().iter().enumerate() {
            if !reasons.contains(&r.as_str()) {
                let path = vec![k("freezes"), k(key), k("lifted_by"), i(n)];
                unknown(cx, "exception reason", r, &reasons, path);
            }
        }
    }
    let plans: Vec<&str> = p.rollout.plans.keys().map(String::as_str).collect();
    for (key, r) in &p.exceptions.reasons {
        for (n, plan) in r.plans.iter().enumerate() {
            if !plans.contains(&plan.as_str()) {
                let path = vec![k("exceptions"), k("reasons"), k(key), k("plans"), i(n)];
                unknown(cx, "rollout plan", plan, &plans, path);
            }
        }
    }
    let mut lifts: Vec<&str> = vec![LIFT_MAINTENANCE_ANNOUNCEMENT];
    lifts.extend(p.lead_times.keys().map(String::as_str));
    let items: Vec<&str> = p.checklist.pre.keys().map(String::as_str).collect();
    for (key, cat) in &p.categories {
        if let Some(ex) = &cat.emergency_exception {
            let base = vec![k("categories"), k(key), k("emergency_exception")];
            if cat.emergency_approvers.is_empty() {
                cx.report(
                    DiagCode::UnknownReference,
                    base.clone(),
                    format!(
                        "category `{key}` has an emergency exception but no emergency_approvers"
                    ),
                    Some(
                        "name the roles that approve it, e.g. emergency_approvers = [\"cto\"]"
                            .into(),
                    ),
                );
            }
            for (n, l) in ex.lifts.iter().enumerate() {
                if !lifts.contains(&l.as_str()) {
                    let path = [base.clone(), vec![k("lifts"), i(n)]].concat();
                    unknown(
                        cx,
                        "lift (maintenance-announcement or a lead time)",
                        l,
                        &lifts,
                        path,
                    );
                }
            }
        }
        if let Some(item) = &cat.deploy_approval_after {
            let path = vec![k("categories"), k(key), k("deploy_approval_after")];
            if !items.contains(&item.as_str()) {
                unknown(cx, "pre-deployment checklist item", item, &items, path);
            } else if cat.deploy_approvers.is_empty() {
                cx.report(
                    DiagCode::UnknownReference,
                    path,
                    format!("category `{key}` has a deploy approval stage but no deploy_approvers"),
                    Some("name the roles that approve the production deployment".into()),
                );
            }
        }
    }
    for (key, r) in &p.on_call.rotations {
        let base = vec![k("on_call"), k("rotations"), k(key)];
        if r.members.is_empty() {
            cx.report(
                DiagCode::BadRotation,
                [base.clone(), vec![k("members")]].concat(),
                format!("rotation `{key}` has no members"),
                Some("list people or teams, e.g. members = [\"team:sre\"]".into()),
            );
        }
        for (n, s) in r.shifts.iter().enumerate() {
            if s.to <= s.from {
                cx.report(
                    DiagCode::BadRotation,
                    [base.clone(), vec![k("shifts"), i(n), k("to")]].concat(),
                    format!(
                        "shift of {} ends {} at or before it starts {}",
                        s.member, s.to, s.from
                    ),
                    Some("a shift runs from the handoff on `from` to the handoff on `to`".into()),
                );
            }
        }
    }
    let rotations: Vec<&str> = p.on_call.rotations.keys().map(String::as_str).collect();
    for (n, r) in p.emergency.commander_on_call.iter().enumerate() {
        if !rotations.contains(&r.as_str()) {
            let path = vec![k("emergency"), k("commander_on_call"), i(n)];
            unknown(cx, "on-call rotation", r, &rotations, path);
        }
    }
}

//! Lead times and the review SLA, counted in business days by the calendar (weekends and the
//! policy's holidays do not count).
//!
//! A `before-deploy` lead time (`rfc`: 5, `stakeholder-notice`: 3 in the seed) needs the item in
//! [`ChangeState::lead_items`] under the same key, published at least N business days before the
//! deploy instant: `business_days_between(published, deploy) >= N`. An `sla` lead time (the
//! review SLA) never denies: it is a finding for the reports, measured from the first entry into
//! `in-review` to the first approval by one of the category's approver roles (or to "now" while
//! the review is still open).

use changegate_policy::{LeadKind, Level, Policy};
use jiff::Timestamp;
use serde_json::json;

use crate::codes::Code;
use crate::model::ChangeState;
use crate::reason::Reason;
use crate::status::Status;
use crate::window::EmergencyLift;

/// The reason code for a before-deploy lead time key.
pub fn code_for(key: &str) -> Code {
    match key {
        "rfc" => Code::LeadTimeRfc,
        "stakeholder-notice" => Code::LeadTimeNotice,
        _ => Code::LeadTimeNotMet,
    }
}

/// Lead-time reasons for a deploy of a `level` change at `deploy_at`.
pub fn evaluate(
    policy: &Policy,
    state: &ChangeState,
    level: Level,
    deploy_at: Timestamp,
) -> Vec<Reason> {
    evaluate_lifted(policy, state, level, deploy_at, None)
}

/// [`evaluate`], with the change's emergency lift: a before-deploy lead time it lifts that is
/// not met is an `emergency-exception-lift` finding instead of a denial.
pub fn evaluate_lifted(
    policy: &Policy,
    state: &ChangeState,
    level: Level,
    deploy_at: Timestamp,
    lift: Option<&EmergencyLift>,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut push = |key: &str, r: Reason| match lift.filter(|l| l.lifts(key)) {
        Some(l) if r.denies => out.push(l.reason(level, key, r.code, r.message)),
        _ => out.push(r),
    };
    for (key, lt) in &policy.lead_times {
        if !lt.applies_to.contains(&level) {
            continue;
        }
        let n = i64::from(lt.business_days);
        match lt.kind {
            LeadKind::BeforeDeploy => {
                let base = json!({ "lead_time": key, "description": lt.description, "required_business_days": n, "deploy_at": deploy_at });
                // A notice the policy requires as sent counts only with changegate's record of
                // sending it, from when the receiver accepted it.
                let required_sent = policy.notifications.requires_sent(key);
                let item = state.lead_items.get(key);
                if required_sent && item.is_some_and(|p| p.sent.is_none()) {
                    push(
                        key.as_str(),
                        Reason::deny(
                            code_for(key),
                            format!(
                                "{}: declared, but not sent by changegate (the policy requires the notice to go out through its notification channels); needed {n} business days before the deploy",
                                lt.description
                            ),
                            crate::approval::with(
                                base,
                                json!({ "published_at": null, "declared_at": item.map(|p| p.at), "requires_sent": true }),
                            ),
                        ),
                    );
                    continue;
                }
                let effective = item.map(|p| {
                    let mut p = p.clone();
                    if required_sent && let Some(s) = &p.sent {
                        p.at = s.at;
                    }
                    p
                });
                match effective.as_ref() {
                    None => push(
                        key.as_str(),
                        Reason::deny(
                            code_for(key),
                            format!(
                                "{}: nothing on record; needed {n} business days before the deploy",
                                lt.description
                            ),
                            crate::approval::with(base, json!({ "published_at": null })),
                        ),
                    ),
                    Some(p) => {
                        let days = if p.at > deploy_at {
                            0
                        } else {
                            changegate_calendar::business_days_between(policy, p.at, deploy_at)
                        };
                        let details = crate::approval::with(
                            base,
                            json!({ "published_at": p.at, "link": p.link, "business_days": days }),
                        );
                        if days >= n {
                            push(
                                key.as_str(),
                                Reason::info(
                                    Code::LeadTimeMet,
                                    format!(
                                        "{}: {days} business days ahead (≥ {n})",
                                        lt.description
                                    ),
                                    details,
                                ),
                            );
                        } else {
                            push(
                                key.as_str(),
                                Reason::deny(
                                    code_for(key),
                                    format!(
                                        "{}: published {days} business days before the deploy, {n} required",
                                        lt.description
                                    ),
                                    details,
                                ),
                            );
                        }
                    }
                }
            }
            LeadKind::Sla => {
                let Some(start) = state.first_entered(Status::InReview) else {
                    continue;
                };
                let approvers = policy
                    .category(level)
                    .map(|(_, c)| c.approvers.clone())
                    .unwrap_or_default();
                let reviewed = state
                    .approvals
                    .iter()
                    .filter(|a| {
                        a.at >= start && (approvers.is_empty() || approvers.contains(&a.role))
                    })
                    .map(|a| a.at)
                    .min();
                let end = reviewed.unwrap_or(deploy_at).max(start);
                let days = changegate_calendar::business_days_between(policy, start, end);
                if days > n {
                    push(
                        key.as_str(),
                        Reason::info(
                            Code::ReviewSlaBreached,
                            format!(
                                "{}: review took {days} business days (SLA {n})",
                                lt.description
                            ),
                            json!({ "lead_time": key, "sla_business_days": n, "review_started_at": start, "reviewed_at": reviewed, "business_days": days, "reviewer_roles": approvers }),
                        ),
                    );
                }
            }
        }
    }
    out
}

//! Routing: the notifications an audit event causes (pure: the event, the policy and the set of
//! active channels in, rows out). The store calls it inside the event's transaction.
//!
//! Each recorded event is read for what it means (`change.state` with a `submit` transition is
//! `change-submitted`, an `incident.recorded` opening a P1 is `incident-opened` and
//! `freeze-started`, a category-3 `deployment.finish` schedules the standby reminders and the
//! daily status updates, …); the policy's routes pick the channels; a channel the server has no
//! endpoint for is skipped. The dedupe key is `subject/event[/occurrence]/channel`: events that
//! happen once per subject (a change deployed, an incident opened) have no occurrence, so
//! however often the event is recorded only one message is queued; events that repeat (an
//! approval, an incident update) carry what distinguishes them (the approver and role, the log
//! position).

use std::collections::BTreeSet;

use changegate_audit::{AuditEvent, kinds};
use changegate_policy::{Freeze, Level, NotifyEvent, Policy};
use changegate_store::NewNotification;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// One notification an event means, before channels are picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Meant {
    /// The notification event.
    pub event: NotifyEvent,
    /// What distinguishes repeats of `event` on one subject (empty: it happens once).
    pub occurrence: String,
    /// Due later (a reminder), relative to the event's time.
    pub after: Option<SignedDuration>,
    /// Facts for the message.
    pub facts: Value,
}

fn meant(event: NotifyEvent, occurrence: impl Into<String>, facts: Value) -> Meant {
    Meant {
        event,
        occurrence: occurrence.into(),
        after: None,
        facts,
    }
}

/// Severities that freeze changes (`[freezes.*] kind = "incident"`).
pub fn freezing(policy: &Policy, severity: &str) -> bool {
    policy.freezes.values().any(|f| match f {
        Freeze::Incident { severities, .. } => severities.iter().any(|s| s == severity),
        _ => false,
    })
}

/// What `e` means, as notifications (before routing).
pub fn meaning(policy: &Policy, e: &AuditEvent, seq: u64) -> Vec<Meant> {
    let op = &e.details["op"];
    let op_name = op["op"].as_str().unwrap_or("");
    let mut out = Vec::new();
    let level: Option<Level> = e.category.as_deref().and_then(|c| c.parse().ok());
    let base = json!({
        "kind": e.kind,
        "actor": e.actor,
        "change": e.change_id,
        "category": level,
    });
    let with = |extra: Value| {
        let mut b = base.clone();
        if let (Some(o), Some(x)) = (b.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                o.insert(k.clone(), v.clone());
            }
        }
        b
    };
    match e.kind.as_str() {
        kinds::CHANGE_STATE => {
            if op_name == "transition" && op["event"] == "submit" {
                out.push(meant(NotifyEvent::ChangeSubmitted, "", with(json!({}))));
            }
            if op_name == "publish" && op["item"] == "stakeholder-notice" {
                out.push(meant(
                    NotifyEvent::StakeholderNotice,
                    "",
                    with(json!({ "link": op["link"] })),
                ));
            }
        }
        kinds::APPROVAL_GRANTED => {
            let who = format!(
                "{}-{}-{}",
                op["person"].as_str().unwrap_or(""),
                op["role"].as_str().unwrap_or(""),
                op["stage"].as_str().unwrap_or("review")
            );
            out.push(meant(
                NotifyEvent::ChangeApproved,
                format!("{who}-{seq}"),
                with(json!({ "person": op["person"], "role": op["role"], "stage": op["stage"] })),
            ));
        }
        kinds::DEPLOYMENT_START => {
            out.push(meant(
                NotifyEvent::DeploymentStarted,
                seq.to_string(),
                with(json!({})),
            ));
        }
        kinds::DEPLOYMENT_FINISH => {
            out.push(meant(NotifyEvent::ChangeDeployed, "", with(json!({}))));
            if let Some((_, cat)) = level.and_then(|l| policy.category(l)) {
                if let Some(standby) = &cat.monitoring.incident_commander_standby {
                    out.push(meant(
                        NotifyEvent::StandbyReminder,
                        "start",
                        with(json!({ "phase": "start", "standby": standby.to_string() })),
                    ));
                    out.push(Meant {
                        after: Some(standby.get()),
                        ..meant(
                            NotifyEvent::StandbyReminder,
                            "end",
                            with(json!({ "phase": "end", "standby": standby.to_string() })),
                        )
                    });
                }
                for day in 1..=cat.monitoring.daily_status_days.unwrap_or(0) {
                    out.push(Meant {
                        after: Some(SignedDuration::from_hours(24 * i64::from(day))),
                        ..meant(
                            NotifyEvent::StatusUpdateDue,
                            format!("day-{day}"),
                            with(json!({ "day": day, "of": cat.monitoring.daily_status_days })),
                        )
                    });
                }
            }
        }
        kinds::ROLLBACK => {
            let request = &e.details["request"];
            let rid = request["id"].as_str().unwrap_or("");
            let occurrence = if rid.is_empty() { "auto" } else { rid };
            out.push(meant(
                NotifyEvent::ChangeRolledBack,
                occurrence,
                with(json!({
                    "request": rid,
                    "reason": request["reason"],
                    "notice": request["incident_notice"]["message"],
                    "result": e.outcome.get("result"),
                    "manual": !rid.is_empty(),
                })),
            ));
            if let Some(due) = request["post_mortem"]["due_at"]
                .as_str()
                .and_then(|d| d.parse::<Timestamp>().ok())
            {
                out.push(Meant {
                    after: None,
                    ..meant(
                        NotifyEvent::PostMortemDue,
                        rid,
                        with(json!({ "request": rid, "due_at": due })),
                    )
                });
                // Due at the deadline: carried as an absolute time.
                if let Some(last) = out.last_mut() {
                    last.facts["due"] = json!(due);
                }
            }
        }
        kinds::INCIDENT => match op_name {
            "open-incident" => {
                let sev = op["severity"].as_str().unwrap_or("");
                let facts = with(json!({
                    "incident": op["id"], "severity": sev, "title": op["title"],
                    "commander": op["commander"], "incident_kind": op["kind"],
                }));
                out.push(meant(NotifyEvent::IncidentOpened, "", facts.clone()));
                if freezing(policy, sev) {
                    out.push(meant(NotifyEvent::FreezeStarted, "", facts.clone()));
                }
                let kind = op["kind"].as_str().unwrap_or("");
                if sev == "P0"
                    || policy
                        .emergency
                        .executive_report_for
                        .iter()
                        .any(|k| k == kind)
                {
                    out.push(Meant {
                        after: Some(policy.emergency.retrospective_within.get()),
                        ..meant(NotifyEvent::ExecutiveReport, "", facts)
                    });
                }
            }
            "update-incident" => out.push(meant(
                NotifyEvent::IncidentUpdated,
                seq.to_string(),
                with(json!({
                    "incident": op["id"], "severity": op["severity"], "title": op["title"],
                    "commander": op["commander"], "reopen": op["reopen"],
                })),
            )),
            "resolve-incident" => out.push(meant(
                NotifyEvent::IncidentResolved,
                seq.to_string(),
                with(json!({ "incident": op["id"] })),
            )),
            "announce" => out.push(meant(
                NotifyEvent::MaintenanceAnnounced,
                "",
                with(json!({
                    "announcement": op["id"],
                    "window_start": op["window_start"],
                    "window_end": op["window_end"],
                })),
            )),
            "declare-emergency" => {
                let facts = with(json!({ "incident": op["incident"], "by": op["by"] }));
                out.push(meant(NotifyEvent::EmergencyDeclared, "", facts.clone()));
                out.push(Meant {
                    after: Some(policy.emergency.retrospective_within.get()),
                    ..meant(NotifyEvent::RetrospectiveDue, "", facts)
                });
            }
            _ => {}
        },
        // The server's scheduled report (crate::reports_schedule): once per report.
        changegate_report::KIND_GENERATED => out.push(meant(
            NotifyEvent::ReportGenerated,
            "",
            json!({
                "report": e.details["report"],
                "kind": e.details["kind"],
                "period": e.details["period"],
                "digest": e.details["digest"],
                "checkpoint": e.details["checkpoint"],
                "reviewers": e.details["reviewers"],
                "deployments": e.details["deployments"],
                "missed": e.details["missed"],
            }),
        )),
        _ => {}
    }
    out
}

/// The subject of a notification: the change, else the incident or announcement.
fn subject(m: &Meant) -> String {
    for key in ["change", "incident", "announcement", "report"] {
        if let Some(s) = m.facts[key].as_str() {
            if key == "change" {
                return s.to_string();
            }
            return format!("{key}:{s}");
        }
    }
    String::new()
}

/// The rows `e` queues: [`meaning`], routed by the policy, to active channels only.
pub fn route(
    policy: &Policy,
    active: &BTreeSet<String>,
    e: &AuditEvent,
    seq: u64,
    at: Timestamp,
) -> Vec<NewNotification> {
    let mut out = Vec::new();
    let n = &policy.notifications;
    for m in meaning(policy, e, seq) {
        let level = m.facts["category"]
            .as_u64()
            .and_then(|l| u8::try_from(l).ok());
        let subject = subject(&m);
        for channel in n.channels_for(m.event, level) {
            if !active.contains(channel) {
                continue;
            }
            let Some(ch) = n.channels.get(channel) else {
                continue;
            };
            let mut due = m.after.and_then(|d| at.checked_add(d).ok());
            if let Some(t) = m.facts["due"].as_str().and_then(|t| t.parse().ok()) {
                due = Some(t);
            }
            let mut push = |occurrence: &str, due: Option<Timestamp>, facts: Value| {
                let mut key = format!("{subject}/{}", m.event.as_str());
                if !occurrence.is_empty() {
                    key.push('/');
                    key.push_str(occurrence);
                }
                key.push('/');
                key.push_str(channel);
                out.push(NewNotification {
                    dedupe_key: key,
                    channel: channel.to_string(),
                    event: m.event.as_str().to_string(),
                    subject: subject.clone(),
                    payload: facts,
                    due,
                });
            };
            push(&m.occurrence, due, m.facts.clone());
            // A status page also hears when the announced window starts and completes.
            if m.event == NotifyEvent::MaintenanceAnnounced
                && ch.kind == changegate_policy::ChannelKind::Statuspage
            {
                for (phase, key) in [("in_progress", "window_start"), ("completed", "window_end")] {
                    let when = m.facts[key].as_str().and_then(|t| t.parse().ok());
                    let mut facts = m.facts.clone();
                    facts["phase"] = json!(phase);
                    push(phase, when, facts);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(policy: &Policy) -> BTreeSet<String> {
        policy.notifications.channels.keys().cloned().collect()
    }

    fn at() -> Timestamp {
        "2026-03-10T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_generated_report_goes_to_its_reviewers_once() {
        let p = changegate_policy::load_default().policy;
        let e = AuditEvent::new(changegate_report::KIND_GENERATED, "changegate").details(json!({
            "report": "monthly:2026-11", "kind": "monthly", "period": "2026-11", "digest": "ab",
        }));
        let rows = route(&p, &all(&p), &e, 9, at());
        let keys: Vec<&str> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
        assert_eq!(keys, ["report:monthly:2026-11/report-generated/reviewers"]);
        assert_eq!(route(&p, &all(&p), &e, 10, at())[0].dedupe_key, keys[0]);
    }

    #[test]
    fn a_deploy_goes_to_deployments_and_category_2_also_to_stakeholders() {
        let p = changegate_policy::load_default().policy;
        let e = AuditEvent::new(kinds::DEPLOYMENT_FINISH, "alice")
            .change("c-1")
            .category("2");
        let rows = route(&p, &all(&p), &e, 7, at());
        let keys: Vec<&str> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "c-1/change-deployed/deployments",
                "c-1/change-deployed/stakeholders"
            ]
        );
        // An inactive channel gets nothing.
        let only = BTreeSet::from(["deployments".to_string()]);
        assert_eq!(route(&p, &only, &e, 7, at()).len(), 1);
    }

    #[test]
    fn a_category_3_deploy_schedules_standby_and_three_daily_updates() {
        let p = changegate_policy::load_default().policy;
        let e = AuditEvent::new(kinds::DEPLOYMENT_FINISH, "alice")
            .change("c-3")
            .category("3");
        let rows = route(&p, &all(&p), &e, 7, at());
        let due: Vec<(String, Option<Timestamp>)> = rows
            .iter()
            .filter(|r| r.event != "change-deployed")
            .map(|r| (r.dedupe_key.clone(), r.due))
            .collect();
        let h = |n: i64| Some(at().checked_add(SignedDuration::from_hours(n)).unwrap());
        assert_eq!(
            due,
            vec![
                ("c-3/standby-reminder/start/deployments".to_string(), None),
                ("c-3/standby-reminder/end/deployments".to_string(), h(4)),
                ("c-3/status-update-due/day-1/deployments".to_string(), h(24)),
                ("c-3/status-update-due/day-2/deployments".to_string(), h(48)),
                ("c-3/status-update-due/day-3/deployments".to_string(), h(72)),
            ]
        );
    }

    #[test]
    fn a_p1_incident_is_announced_in_incidents_and_freezes() {
        let p = changegate_policy::load_default().policy;
        let e = AuditEvent::new(kinds::INCIDENT, "integration:alertmanager").details(json!({
            "op": { "op": "open-incident", "id": "AM-1", "severity": "P1", "title": "down" }
        }));
        let rows = route(&p, &all(&p), &e, 3, at());
        let keys: Vec<&str> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "incident:AM-1/incident-opened/incidents",
                "incident:AM-1/freeze-started/deployments",
                "incident:AM-1/freeze-started/incidents",
            ]
        );
    }

    #[test]
    fn an_announced_window_creates_and_updates_a_scheduled_maintenance() {
        let p = changegate_policy::load_default().policy;
        let e = AuditEvent::new(kinds::INCIDENT, "sre").details(json!({
            "op": { "op": "announce", "id": "mw-1",
                    "window_start": "2026-04-07T02:00:00Z", "window_end": "2026-04-07T06:00:00Z" }
        }));
        let rows = route(&p, &all(&p), &e, 3, at());
        let keys: Vec<(&str, Option<Timestamp>)> = rows
            .iter()
            .map(|r| (r.dedupe_key.as_str(), r.due))
            .collect();
        let t = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        assert_eq!(
            keys,
            [
                ("announcement:mw-1/maintenance-announced/all-teams", None),
                ("announcement:mw-1/maintenance-announced/status-page", None),
                (
                    "announcement:mw-1/maintenance-announced/in_progress/status-page",
                    t("2026-04-07T02:00:00Z")
                ),
                (
                    "announcement:mw-1/maintenance-announced/completed/status-page",
                    t("2026-04-07T06:00:00Z")
                ),
            ]
        );
    }
}

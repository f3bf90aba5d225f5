//! What the log's records say about each production deployment: one fold over the records in
//! log order, no other input (docs/reports.md, "What a deployment carries").

use std::collections::{BTreeMap, HashMap};

use changegate_audit::{Record, kinds};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::view::{Decision, EventView, Obj, Observed, Scalar};

/// An approval as recorded (`approval.granted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRow {
    /// Approver.
    pub person: String,
    /// Role approved in.
    pub role: String,
    /// When the log recorded it.
    pub at: Timestamp,
}

/// How a deployment ended, as of the end of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `deployment.finish` recorded, no rollback.
    Success,
    /// `rollback.triggered` recorded.
    RolledBack,
    /// Neither yet.
    InProgress,
}

impl Outcome {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RolledBack => "rolled-back",
            Outcome::InProgress => "in-progress",
        }
    }
}

/// Which decision a deployment start was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionSeen {
    /// An allowing gate decision for the deployed commit.
    Allowed,
    /// The latest decision for the deployed commit denied.
    Denied,
    /// No decision was recorded for the deployed commit.
    None,
}

/// One production deployment with everything the policy's Change Logging asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Change id.
    pub change_id: String,
    /// Log position of its `deployment.start`.
    pub seq: u64,
    /// Category level (1 low, 2 medium, 3 high, 4 emergency).
    pub category: Option<u8>,
    /// Repository.
    pub repository: Option<String>,
    /// What: commit deployed.
    pub commit: Option<String>,
    /// What: artifact version (`what.artifact-version` of any event of the change).
    pub artifact_version: Option<String>,
    /// What: changed files (`what.changed-files`).
    pub changed_files: Vec<String>,
    /// Who: deployer.
    pub deployer: String,
    /// Who: approvals recorded before the start.
    pub approvals: Vec<ApprovalRow>,
    /// Why: PR link.
    pub pr_link: Option<String>,
    /// Why: ticket.
    pub ticket: Option<String>,
    /// Why: incident reference (emergency or remediation).
    pub incident: Option<String>,
    /// When the change asked for review.
    pub submitted_at: Option<Timestamp>,
    /// When the log first saw the deployed commit (the lead time's start).
    pub commit_seen_at: Option<Timestamp>,
    /// When: start (UTC).
    pub started_at: Timestamp,
    /// When: finish or rollback.
    pub finished_at: Option<Timestamp>,
    /// When: duration, seconds.
    pub duration_s: Option<i64>,
    /// Outcome.
    pub outcome: Outcome,
    /// When the rollback was recorded.
    pub rolled_back_at: Option<Timestamp>,
    /// Outcome: worst error rate the rollout's triggers read.
    pub error_rate: Option<f64>,
    /// Outcome: worst p95 latency the rollout's triggers read.
    pub latency_impact: Option<f64>,
    /// Where it was deployed (`details.environment` of the start: the GitHub deployment's
    /// environment, or the server-run rollout's step environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Outcome: error rate (%) read before the deployment moved traffic (`details.observed` with
    /// `phase = "before"`: the rollout guard's baseline read, or the server's read when GitHub
    /// reported the deployment started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_before: Option<f64>,
    /// Outcome: error rate (%) read after it (`phase = "after"`: the post-deployment
    /// verification, or the server's read when GitHub reported it finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_after: Option<f64>,
    /// Outcome: p95 latency (ms) before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_before_ms: Option<f64>,
    /// Outcome: p95 latency (ms) after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_after_ms: Option<f64>,
    /// An emergency was declared for the change (or it is category 4).
    pub emergency: bool,
    /// A security patch (see docs/reports.md).
    pub security_patch: bool,
    /// Reason id of an approved out-of-window exception.
    pub exception: Option<String>,
    /// The decision it started under.
    pub decision: DecisionSeen,
    /// Approval bypass code, when it is one (docs/reports.md).
    pub bypass: Option<String>,
    /// Started while the decision for its commit said the window was closed.
    pub window_violation: bool,
    /// `emergency-override` or `exception-applied` when the window was lifted.
    pub window_override: Option<String>,
    /// Seconds from the change's first `window-closed` decision to the start.
    pub window_delay_s: Option<i64>,
}

/// An incident as the world events recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// Incident id.
    pub id: String,
    /// Severity.
    pub severity: String,
    /// Kind (`security`, ...).
    pub kind: Option<String>,
    /// CVSS score.
    pub cvss: Option<f64>,
    /// When it was opened (log time).
    pub opened_at: Timestamp,
    /// When it was resolved (log time).
    pub resolved_at: Option<Timestamp>,
}

/// A reviewer's sign-off (`report.signed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOff {
    /// `monthly:2026-11`.
    pub report: String,
    /// Role signed in.
    pub role: String,
    /// Who (the token's person).
    pub person: String,
    /// Report digest signed.
    pub digest: String,
    /// When.
    pub at: Timestamp,
    /// Log position of the sign-off event.
    pub seq: u64,
    /// Tree size of the checkpoint the signed report was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
}

/// A gate decision as recorded (`gate.decision`, or inside a `deployment.start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    /// Change id.
    pub change_id: String,
    /// Commit decided on.
    pub commit: Option<String>,
    /// Allowed.
    pub allowed: bool,
    /// A denying `window-closed` reason.
    pub window_closed: bool,
    /// When recorded.
    pub at: Timestamp,
}

/// Everything the fold found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Deployments in log order.
    pub deployments: Vec<Deployment>,
    /// Incidents by id.
    pub incidents: BTreeMap<String, IncidentRow>,
    /// Changes that asked for review, with submission time and approvals (bottlenecks).
    pub submissions: Vec<(String, Timestamp, Vec<ApprovalRow>)>,
    /// Every recorded gate decision.
    pub decisions: Vec<DecisionRow>,
    /// Emergency declarations: change id and time.
    pub emergencies: Vec<(String, Timestamp)>,
}

#[derive(Default)]
struct Acc {
    category: Option<u8>,
    repository: Option<String>,
    pr_link: Option<String>,
    ticket: Option<String>,
    submitted_at: Option<Timestamp>,
    commit: Option<String>,
    /// When each commit of the change was first seen (a change has one or a few: a list).
    commit_seen: Vec<(String, Timestamp)>,
    approvals: Vec<ApprovalRow>,
    last_decision: Option<(Option<String>, bool, bool, Option<&'static str>)>,
    first_window_closed: Option<Timestamp>,
    emergency: bool,
    incident: Option<String>,
    exception_reason: Option<String>,
    exception_approved: bool,
    artifact_version: Option<String>,
    changed_files: Vec<String>,
    open: Option<usize>,
}

/// A decision as the report reads it: allowed, window closed (denying), window override.
type DecisionRead = (bool, bool, Option<&'static str>);

/// What a decision says: allowed, window closed (denying), window override.
fn read_decision(d: &Decision<'_>) -> Option<DecisionRead> {
    let allowed = d.allowed.as_bool()?;
    let reasons = d.reasons.items();
    let has = |code: &str, denies: Option<bool>| {
        reasons.iter().any(|Obj(r)| {
            r.code.as_str() == Some(code) && denies.is_none_or(|x| r.denies.as_bool() == Some(x))
        })
    };
    let window_closed = has("window-closed", Some(true));
    let ov = if has("emergency-override", None) {
        Some("emergency-override")
    } else if has("exception-applied", None) {
        Some("exception-applied")
    } else {
        None
    };
    Some((allowed, window_closed, ov))
}

/// The sign-off a record is, if it is one.
pub fn signoff_of(e: &EventView<'_>) -> Option<SignOff> {
    if e.kind != crate::KIND_SIGNED {
        return None;
    }
    let d = &e.details;
    Some(SignOff {
        report: d.report.string()?,
        role: d.role.string()?,
        digest: d.digest.string()?,
        person: e.actor.to_string(),
        at: e.recorded_at,
        seq: e.seq,
        checkpoint_size: d.checkpoint.0.size.as_u64(),
    })
}

/// The sign-off events among `records`.
pub fn signoff_events(records: &[Record]) -> Vec<SignOff> {
    records
        .iter()
        .filter(|r| r.event.kind == crate::KIND_SIGNED)
        .filter_map(|r| signoff_of(&EventView::of(r)))
        .collect()
}

/// Fold the records (log order) recorded before `until`.
pub fn fold(records: &[Record], until: Timestamp) -> Facts {
    let mut f = Fold::new(until);
    for r in records {
        f.push(&EventView::of(r));
    }
    f.finish()
}

/// The fold, one record at a time (log order): [`Fold::push`] each, then [`Fold::finish`].
/// Records recorded at or after `until` are skipped.
pub struct Fold {
    until: Timestamp,
    f: Facts,
    /// Change id → index in `acc` (each id is hashed once per record, stored once).
    ids: HashMap<String, usize>,
    acc: Vec<(String, Acc)>,
}

impl Fold {
    /// A fold of the records recorded before `until`.
    pub fn new(until: Timestamp) -> Self {
        Fold {
            until,
            f: Facts::default(),
            ids: HashMap::new(),
            acc: Vec::new(),
        }
    }

    /// Take one record.
    pub fn push(&mut self, e: &EventView<'_>) {
        let at = e.recorded_at;
        if at >= self.until {
            return;
        }
        let Some(id) = e.change_id.as_deref() else {
            world_event(&mut self.f, e);
            return;
        };
        let i = match self.ids.get(id) {
            Some(i) => *i,
            None => {
                let i = self.acc.len();
                self.ids.insert(id.to_string(), i);
                self.acc.push((id.to_string(), Acc::default()));
                i
            }
        };
        let f = &mut self.f;
        let (id, a) = &mut self.acc[i];
        let id: &str = id;
        if let Some(c) = e.category.as_deref().and_then(|c| c.parse::<u8>().ok()) {
            a.category = Some(c);
        }
        if let Some(c) = e.what.commit_sha.text() {
            if !a.commit_seen.iter().any(|(x, _)| x == c) {
                a.commit_seen.push((c.to_string(), at));
            }
            if a.commit.as_deref() != Some(c) {
                a.commit = Some(c.to_string());
                a.last_decision = None;
            }
        }
        if let Some(v) = e.what.artifact_version.text() {
            a.artifact_version = Some(v.to_string());
        }
        if let Some(files) = &e.what.changed_files.0 {
            a.changed_files = files.iter().filter_map(Scalar::string).collect();
        }
        if let Some(v) = e.why.pr_link.text() {
            a.pr_link = Some(v.to_string());
        }
        if let Some(v) = e.why.ticket.text() {
            a.ticket = Some(v.to_string());
        }
        if let Some(v) = e.why.incident.text() {
            a.incident = Some(v.to_string());
        }
        let o = &e.details.op.0;
        let opname = o.op.as_str().unwrap_or("");
        match e.kind.as_ref() {
            kinds::CHANGE_CREATED => {
                a.repository = e.details.repository.string();
                if e.details.status.as_str() == Some("in-review") {
                    a.submitted_at.get_or_insert(at);
                }
            }
            kinds::CHANGE_STATE if opname == "transition" && o.event.as_str() == Some("submit") => {
                a.submitted_at.get_or_insert(at);
            }
            kinds::APPROVAL_GRANTED if opname == "approve" => {
                a.approvals.push(ApprovalRow {
                    person: o.person.string().unwrap_or_else(|| e.actor.to_string()),
                    role: o.role.string().unwrap_or_default(),
                    at,
                });
            }
            kinds::EXCEPTION => match opname {
                "request-exception" => a.exception_reason = o.reason.string(),
                "approve-exception" => a.exception_approved = true,
                _ => {}
            },
            kinds::INCIDENT => match opname {
                "declare-emergency" => {
                    a.emergency = true;
                    a.incident = o.incident.string();
                    f.emergencies.push((id.to_string(), at));
                }
                "remediates" => a.incident = o.incident.string(),
                _ => {}
            },
            kinds::GATE_DECISION => {
                if let Some((allowed, wc, ov)) = read_decision(&e.details.as_decision()) {
                    let commit = e.what.commit_sha.string();
                    if wc {
                        a.first_window_closed.get_or_insert(at);
                    }
                    f.decisions.push(DecisionRow {
                        change_id: id.to_string(),
                        commit: commit.clone(),
                        allowed,
                        window_closed: wc,
                        at,
                    });
                    a.last_decision = Some((commit, allowed, wc, ov));
                }
            }
            kinds::APPROVAL_INVALIDATED => a.last_decision = None,
            kinds::DEPLOYMENT_START if a.open.is_none() => {
                let commit = e.what.commit_sha.string().or(a.commit.clone());
                let inline = read_decision(&e.details.decision.0);
                if let Some((_, wc, _)) = inline
                    && wc
                {
                    a.first_window_closed.get_or_insert(at);
                }
                let used = inline.or_else(|| {
                    a.last_decision
                        .as_ref()
                        .filter(|(c, ..)| c.is_none() || *c == commit)
                        .map(|(_, al, wc, ov)| (*al, *wc, *ov))
                });
                let (decision, wv, ov) = match used {
                    Some((true, wc, ov)) => (DecisionSeen::Allowed, wc, ov),
                    Some((false, wc, ov)) => (DecisionSeen::Denied, wc, ov),
                    None => (DecisionSeen::None, false, None),
                };
                let bypass = match decision {
                    DecisionSeen::Allowed => None,
                    DecisionSeen::Denied => Some("decision-denied".to_string()),
                    DecisionSeen::None => Some("no-decision".to_string()),
                };
                let emergency = a.emergency || a.category == Some(4);
                let incident_kind = a
                    .incident
                    .as_ref()
                    .and_then(|i| f.incidents.get(i))
                    .map(|i| (i.kind.as_deref(), i.cvss));
                let security_patch = a.exception_reason.as_deref() == Some("security-patch")
                    || incident_kind.is_some_and(|(k, c)| k == Some("security") || c.is_some());
                let commit_seen_at = commit
                    .as_ref()
                    .and_then(|c| a.commit_seen.iter().find(|(x, _)| x == c).map(|(_, t)| *t));
                let mut d = Deployment {
                    change_id: id.to_string(),
                    seq: e.seq,
                    category: a.category,
                    repository: a.repository.clone(),
                    commit_seen_at,
                    commit,
                    artifact_version: a.artifact_version.clone(),
                    changed_files: a.changed_files.clone(),
                    deployer: e
                        .who
                        .deployer
                        .string()
                        .unwrap_or_else(|| e.actor.to_string()),
                    approvals: if a.approvals.is_empty() {
                        approvers_of(e, at)
                    } else {
                        a.approvals.clone()
                    },
                    pr_link: a.pr_link.clone(),
                    ticket: a.ticket.clone(),
                    incident: a.incident.clone(),
                    submitted_at: a.submitted_at,
                    started_at: at,
                    finished_at: None,
                    duration_s: None,
                    outcome: Outcome::InProgress,
                    rolled_back_at: None,
                    error_rate: None,
                    latency_impact: None,
                    environment: e.details.environment.string(),
                    error_rate_before: None,
                    error_rate_after: None,
                    latency_before_ms: None,
                    latency_after_ms: None,
                    emergency,
                    security_patch,
                    exception: a.exception_reason.clone().filter(|_| a.exception_approved),
                    decision,
                    bypass,
                    window_violation: wv,
                    window_override: ov.map(str::to_string),
                    window_delay_s: a
                        .first_window_closed
                        .map(|w| at.duration_since(w).as_secs()),
                };
                observed(&mut d, &e.details.observed.0);
                f.deployments.push(d);
                a.open = Some(f.deployments.len() - 1);
            }
            kinds::DEPLOYMENT_STEP | VERIFICATION => {
                if let Some(i) = a.open {
                    observed(&mut f.deployments[i], &e.details.observed.0);
                }
            }
            kinds::DEPLOYMENT_FINISH | kinds::ROLLBACK => {
                if let Some(i) = a.open {
                    let d = &mut f.deployments[i];
                    observed(d, &e.details.observed.0);
                    if let Some(v) = e.outcome.error_rate.as_f64() {
                        d.error_rate = Some(d.error_rate.map_or(v, |x| x.max(v)));
                    }
                    if let Some(v) = e.outcome.latency_impact.as_f64() {
                        d.latency_impact = Some(d.latency_impact.map_or(v, |x| x.max(v)));
                    }
                    if let Some(v) = e.what.artifact_version.string() {
                        d.artifact_version = Some(v);
                    }
                    if !a.changed_files.is_empty() {
                        d.changed_files = a.changed_files.clone();
                    }
                    if e.kind == kinds::ROLLBACK {
                        if d.rolled_back_at.is_none() {
                            d.rolled_back_at = Some(at);
                            d.outcome = Outcome::RolledBack;
                            d.finished_at.get_or_insert(at);
                        }
                    } else if d.outcome == Outcome::InProgress {
                        d.outcome = Outcome::Success;
                        d.finished_at = Some(at);
                    }
                    d.duration_s = d
                        .finished_at
                        .map(|fin| fin.duration_since(d.started_at).as_secs());
                    if let Some(secs) = e.when.duration.as_i64() {
                        d.duration_s = Some(secs);
                    }
                }
            }
            _ => {}
        }
    }

    /// Everything the fold found.
    pub fn finish(self) -> Facts {
        let mut f = self.f;
        for (id, a) in self.acc {
            if let Some(t) = a.submitted_at {
                f.submissions.push((id, t, a.approvals));
            }
        }
        f.submissions
            .sort_by(|x, y| x.1.cmp(&y.1).then(x.0.cmp(&y.0)));
        f
    }
}

/// The approvals a start names (`who.approvers`: the change's record at the start), for a change
/// whose approvals the log holds no `approval.granted` event of (an imported change).
fn approvers_of(e: &EventView<'_>, at: Timestamp) -> Vec<ApprovalRow> {
    e.who
        .approvers
        .items()
        .iter()
        .filter_map(|Obj(a)| {
            Some(ApprovalRow {
                person: a.person.string()?,
                role: a.role.string().unwrap_or_default(),
                at: a.at.as_str().and_then(|t| t.parse().ok()).unwrap_or(at),
            })
        })
        .collect()
}

/// Audit kind of the server-run rollout's post-deployment verification.
pub const VERIFICATION: &str = "deployment.verification";

/// Take a metrics read the server recorded (`details.observed`: `phase` `before` or `after`,
/// `error-rate` in %, `p95-latency` in ms). The first `before` counts (the baseline, before
/// traffic moved); the last `after` counts.
fn observed(d: &mut Deployment, o: &Observed<'_>) {
    let er = o.error_rate.as_f64();
    let lat = o.p95_latency.as_f64();
    match o.phase.as_str() {
        Some("before") if d.error_rate_before.is_none() && d.latency_before_ms.is_none() => {
            d.error_rate_before = er;
            d.latency_before_ms = lat;
        }
        Some("after") if er.is_some() || lat.is_some() => {
            d.error_rate_after = er;
            d.latency_after_ms = lat;
        }
        _ => {}
    }
}

fn world_event(f: &mut Facts, e: &EventView<'_>) {
    if e.kind != kinds::INCIDENT {
        return;
    }
    let o = &e.details.op.0;
    let opname = o.op.as_str().unwrap_or("");
    let Some(id) = o.id.string() else { return };
    match opname {
        "open-incident" => {
            f.incidents.insert(
                id.clone(),
                IncidentRow {
                    id,
                    severity: o.severity.string().unwrap_or_default(),
                    kind: o.kind.string(),
                    cvss: o.cvss.as_f64(),
                    opened_at: e.recorded_at,
                    resolved_at: None,
                },
            );
        }
        "resolve-incident" => {
            if let Some(i) = f.incidents.get_mut(&id) {
                i.resolved_at.get_or_insert(e.recorded_at);
            }
        }
        "update-incident" if o.reopen.as_bool() == Some(true) => {
            if let Some(i) = f.incidents.get_mut(&id) {
                i.resolved_at = None;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_audit::AuditEvent;
    use serde_json::json;

    fn records(events: Vec<AuditEvent>) -> Vec<Record> {
        let t0: Timestamp = "2026-11-10T10:00:00Z".parse().unwrap();
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                v: 1,
                id: format!("e{i}"),
                seq: i as u64,
                recorded_at: t0 + jiff::SignedDuration::from_secs(60 * i as i64),
                event,
            })
            .collect()
    }

    #[test]
    fn before_is_the_first_read_after_the_last_and_the_start_names_the_rest() {
        let ev = |kind: &str| AuditEvent::new(kind, "integration:changegate-rollout").change("c");
        let read = |phase: &str, er: f64, lat: f64| json!({"observed": {"phase": phase, "error-rate": er, "p95-latency": lat}});
        let recs = records(vec![
            AuditEvent::new(kinds::DEPLOYMENT_START, "alice")
                .change("c")
                .what("commit-sha", "abc")
                .what("artifact-version", "chat:abc")
                .who(
                    "approvers",
                    json!([{"person": "bob", "role": "backend-lead", "at": "2026-11-09T10:00:00Z"}]),
                )
                .details(json!({"environment": "production"})),
            ev(kinds::DEPLOYMENT_STEP).details(read("before", 0.1, 40.0)),
            ev(kinds::DEPLOYMENT_STEP).details(read("before", 9.0, 900.0)),
            ev(kinds::DEPLOYMENT_FINISH).when("duration", 120),
            ev(VERIFICATION).details(read("after", 0.2, 45.0)),
            ev(VERIFICATION).details(read("after", 0.3, 46.0)),
        ]);
        let f = fold(&recs, "2026-12-01T00:00:00Z".parse().unwrap());
        let d = &f.deployments[0];
        assert_eq!(d.environment.as_deref(), Some("production"));
        assert_eq!(d.artifact_version.as_deref(), Some("chat:abc"));
        assert_eq!(
            (d.error_rate_before, d.latency_before_ms),
            (Some(0.1), Some(40.0))
        );
        assert_eq!(
            (d.error_rate_after, d.latency_after_ms),
            (Some(0.3), Some(46.0))
        );
        assert_eq!(d.duration_s, Some(120));
        assert_eq!(d.outcome, Outcome::Success);
        assert_eq!(
            d.approvals.len(),
            1,
            "the start's approvers, none granted in the log"
        );
        assert_eq!(d.approvals[0].person, "bob");
        // No read recorded: the fields are absent from the body (digests of old periods stay).
        let plain = fold(&recs[..1], "2026-12-01T00:00:00Z".parse().unwrap());
        let v = serde_json::to_value(&plain.deployments[0]).unwrap();
        assert!(v.get("error_rate_before").is_none(), "{v}");
    }
}

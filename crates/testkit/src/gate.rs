//! Change-request scenarios for the pure gate: the default policy with people in its roles (and
//! nothing else changed, so tests exercise the seed's rules as shipped), a change by `alice`,
//! records added without validation, and a change with everything in place
//! ([`ready`]) from which a test or bench removes exactly one thing.

use changegate_gate::{
    Announcement, Approval, ApprovalStage, Attestation, ChangeRequest, ChangeState,
    ClassifiedChange, ClassifiedFacet, Decision, MaintenanceOccurrence, Publication, Status,
    StatusChange, WorldState, requirements,
};
use changegate_policy::Policy;
use jiff::Timestamp;

/// The role holders every scenario uses (the default policy leaves `holders` empty): the gate
/// corpus' `_people.toml`.
pub const PEOPLE: &str = include_str!("../../gate/tests/cases/_people.toml");

/// The default policy with [`PEOPLE`] and `extra` merged over it.
pub fn policy_with(extra: &str) -> Policy {
    changegate_gate::corpus::case_policy(PEOPLE, extra)
        .unwrap_or_else(|e| panic!("test policy invalid: {e}"))
}

/// The default policy with [`PEOPLE`].
pub fn policy() -> Policy {
    policy_with("")
}

/// Parse an RFC 3339 instant.
pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad time {s}: {e}"))
}

/// Tuesday 10 March 2026, 11:00 UTC: inside the standard and preferred windows.
pub const TUE: &str = "2026-03-10T11:00:00Z";
/// Saturday 14 March 2026, 11:00 UTC: outside every window but category 1's.
pub const SAT: &str = "2026-03-14T11:00:00Z";
/// First Tuesday of March 2026, 02:00 UTC: the maintenance window.
pub const MW: &str = "2026-03-03T02:00:00Z";

/// A facet. Built through serde, so it does not depend on the Rust type of `kind`.
pub fn facet(kind: &str, roles: &[&str], category: u8) -> ClassifiedFacet {
    serde_json::from_value(serde_json::json!({
        "kind": kind,
        "roles": roles,
        "category": category,
    }))
    .unwrap_or_else(|e| panic!("facet {kind}: {e}"))
}

/// A change `CR-1` by `alice` with these facets, at `category`.
pub fn change(category: u8, facets: Vec<ClassifiedFacet>) -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: "CR-1".into(),
        repository: "acme/chat-backend".into(),
        pr_link: Some("https://example.invalid/pr/1".into()),
        ticket: Some("CHAT-1".into()),
        title: "test change".into(),
        base_commit: "b0".into(),
        head_commit: "h1".into(),
        authors: vec!["alice".into()],
        co_authors: vec![],
        last_pusher: Some("alice".into()),
        classification: ClassifiedChange {
            category,
            facets,
            required_roles: vec![],
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: MaintenanceOccurrence::Primary,
        provenance: Default::default(),
    })
}

/// Put the change in `status` (recording the move at `at`).
pub fn set_status(state: &mut ChangeState, status: Status, at: Timestamp) {
    state.history.push(StatusChange {
        from: state.status,
        to: status,
        at,
        by: None,
    });
    state.status = status;
}

/// Record an approval without validation (as if stored earlier).
pub fn approve(state: &mut ChangeState, person: &str, role: &str, at: Timestamp) {
    let head = state.change.head_commit.clone();
    state.approvals.push(Approval {
        person: person.into(),
        role: role.into(),
        head_commit: head,
        at,
        stage: Default::default(),
    });
}

/// Record a deploy-stage approval without validation (the production-deployment gate).
pub fn approve_deploy(state: &mut ChangeState, person: &str, role: &str, at: Timestamp) {
    let head = state.change.head_commit.clone();
    state.approvals.push(Approval {
        person: person.into(),
        role: role.into(),
        head_commit: head,
        at,
        stage: ApprovalStage::Deploy,
    });
}

/// Attest every applicable non-auto item for the head commit.
pub fn attest_all(policy: &Policy, state: &mut ChangeState, at: Timestamp) {
    let level = changegate_gate::approval::effective_level(policy, state);
    let items: Vec<(String, Option<String>)> =
        changegate_gate::checklist::applicable(policy, level, &state.change.classification.facets)
            .into_iter()
            .filter(|(_, i)| !i.auto)
            .map(|(k, i)| (k.to_string(), i.evidence.clone()))
            .collect();
    for (item, ev) in items {
        let head = state.change.head_commit.clone();
        state.attestations.push(Attestation {
            person: "ci".into(),
            item: item.clone(),
            evidence: ev.map(|k| format!("https://example.invalid/{k}/{item}")),
            head_commit: head,
            at,
            verified: None,
        });
    }
}

/// The person of [`PEOPLE`] who holds `role` (and is not the author).
pub fn holder(role: &str) -> &'static str {
    match role {
        "backend-lead" => "bob",
        "frontend-lead" => "fiona",
        "tech-architect" => "tara",
        "product-owner" => "paula",
        "dba-lead" => "dana",
        "sre-lead" => "sam",
        "security-lead" => "sec",
        "qa" => "quinn",
        "legal" => "lee",
        "cto" => "cleo",
        "cfo" => "finn",
        other => panic!("no holder for {other}"),
    }
}

/// Every role, checklist item and lead time in place for a category-`level` change under
/// [`policy`], in status approved: allowed at [`TUE`] (category 2) or in the announced
/// maintenance window [`MW`] of [`world_with_announcement`] (category 3).
pub fn ready(level: u8, facets: Vec<ClassifiedFacet>) -> (Policy, ChangeState) {
    let policy = policy();
    let mut s = change(level, facets);
    set_status(&mut s, Status::InReview, t("2026-02-16T09:00:00Z"));
    set_status(&mut s, Status::Approved, t("2026-02-27T09:00:00Z"));
    let req = requirements(&policy, &s).unwrap();
    for r in &req.roles {
        approve(&mut s, holder(r), r, t("2026-02-20T10:00:00Z"));
    }
    attest_all(&policy, &mut s, t("2026-02-27T10:00:00Z"));
    for r in &req.deploy_roles {
        approve_deploy(&mut s, holder(r), r, t("2026-02-27T10:30:00Z"));
    }
    if policy.rollback.testing.applies_to.contains(&level) {
        tested_rollback(&mut s, t("2026-02-27T10:00:00Z"));
    }
    s.lead_items.insert(
        "rfc".into(),
        Publication {
            at: t("2026-02-20T09:00:00Z"),
            link: None,
            by: None,
            sent: None,
        },
    );
    s.lead_items.insert(
        "stakeholder-notice".into(),
        Publication {
            at: t("2026-02-25T09:00:00Z"),
            link: None,
            by: None,
            sent: None,
        },
    );
    (policy, s)
}

/// Record a passing staging rollback test for the head commit (`[rollback.testing]`: 2 minutes,
/// healthy afterwards).
pub fn tested_rollback(state: &mut ChangeState, at: Timestamp) {
    let head = state.change.head_commit.clone();
    state
        .rollback
        .tests
        .push(changegate_gate::rollback::RollbackTest {
            by: "quinn".into(),
            environment: "staging".into(),
            duration: "2m".parse().expect("a duration"),
            health_ok: true,
            evidence: Some("https://example.invalid/rollback-test".into()),
            head_commit: head,
            at,
        });
}

/// The world with the March 2026 maintenance window (at [`MW`]) announced on 10 February.
pub fn world_with_announcement() -> WorldState {
    WorldState {
        announcements: vec![Announcement {
            id: "MW".into(),
            window_start: t("2026-03-03T02:00:00Z"),
            window_end: t("2026-03-03T06:00:00Z"),
            announced_at: t("2026-02-10T09:00:00Z"),
            channels: vec!["email".into(), "status-page".into()],
            link: None,
            sent: Vec::new(),
        }],
        ..WorldState::default()
    }
}

/// Denying codes of a decision.
pub fn denies(d: &Decision) -> Vec<&'static str> {
    d.denying_codes()
}

/// Whether a decision has a reason with this code (denying or not).
pub fn has(d: &Decision, code: &str) -> bool {
    d.reasons.iter().any(|r| r.code.as_str() == code)
}

//! Shared fixtures: the default policy with people filled into its roles (and nothing else
//! changed), so tests exercise the seed's rules as shipped.
#![allow(dead_code)]

use changegate_gate::*;
use changegate_policy::Policy;
use jiff::Timestamp;

/// The role holders every test uses (the default policy leaves `holders` empty).
pub const PEOPLE: &str = include_str!("../cases/_people.toml");

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

/// A facet.
pub fn facet(kind: &str, roles: &[&str], category: u8) -> ClassifiedFacet {
    ClassifiedFacet {
        kind: kind.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        category,
    }
}

/// A change by `alice` with these facets, at `category`.
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
        });
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

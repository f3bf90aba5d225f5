//! Who may record remediation, an emergency's retrospective and follow-up, and attest CI
//! evidence: the roles come from the policy (`[emergency] remediation_by`, `retrospective_by`),
//! never from a constant, and a CI-evidence attestation by a person needs a run the server
//! verified for the head commit.

use changegate_gate::authority::{Actor, Via, authorize};
use changegate_gate::ops::ChangeOp;
use changegate_gate::{
    ChangeRequest, ChangeState, ClassifiedChange, EmergencyDeclaration, Incident,
    MaintenanceOccurrence, RejectionCode, VerifiedLink, WorldState,
};
use changegate_policy::Policy;
use jiff::Timestamp;

const PEOPLE: &str = include_str!("cases/_people.toml");
const NOW: &str = "2026-03-10T10:00:00Z";

fn policy(extra: &str) -> Policy {
    changegate_gate::corpus::case_policy(PEOPLE, extra).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn change(category: u8) -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: "CR-1".into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: String::new(),
        base_commit: "b0".into(),
        head_commit: "h1".into(),
        authors: vec!["alice".into()],
        co_authors: vec![],
        last_pusher: Some("alice".into()),
        classification: ClassifiedChange {
            category,
            facets: vec![],
            required_roles: vec![],
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: MaintenanceOccurrence::Primary,
        provenance: Default::default(),
    })
}

fn person(p: &str) -> Actor {
    Actor {
        person: p.into(),
        admin: false,
        integration: false,
    }
}

fn world() -> WorldState {
    let mut w = WorldState::default();
    w.incidents.push(Incident {
        id: "INC-1".into(),
        severity: "P1".into(),
        title: String::new(),
        opened_at: t("2026-03-10T09:00:00Z"),
        resolved_at: None,
        commander: Some("bob".into()),
        kind: None,
        cvss: None,
    });
    w
}

fn check(p: &Policy, s: &ChangeState, who: &str, op: &ChangeOp) -> Result<Via, RejectionCode> {
    authorize(p, s, &world(), &person(who), op, t(NOW))
        .map(|a| a.via)
        .map_err(|r| r.code)
}

fn remediates() -> ChangeOp {
    ChangeOp::Remediates {
        incident: "INC-1".into(),
    }
}

#[test]
fn remediation_roles_are_the_policys() {
    let seed = policy("");
    assert_eq!(seed.emergency.remediation_by, ["sre-lead"]);
    let s = change(2);
    // The seed: sam (sre-lead) may, dana (dba-lead) may not; bob commands INC-1.
    assert!(check(&seed, &s, "sam", &remediates()).is_ok());
    assert_eq!(
        check(&seed, &s, "dana", &remediates()),
        Err(RejectionCode::RemediationAuthorityRequired)
    );
    // A policy naming dba-lead instead: now dana may and sam may not.
    let other = policy("[emergency]\nremediation_by = [\"dba-lead\"]\n");
    assert_eq!(
        check(&other, &s, "dana", &remediates()),
        Ok(Via::Roles {
            roles: vec!["dba-lead".into()]
        })
    );
    assert_eq!(
        check(&other, &s, "sam", &remediates()),
        Err(RejectionCode::RemediationAuthorityRequired)
    );
    // The incident's commander holds it whatever the list says; an empty list leaves only them.
    let none = policy("[emergency]\nremediation_by = []\n");
    assert!(check(&none, &s, "bob", &remediates()).is_ok());
    assert!(check(&none, &s, "sam", &remediates()).is_err());
}

#[test]
fn retrospective_roles_are_the_policys() {
    let mut s = change(4);
    s.emergency = Some(EmergencyDeclaration {
        incident: "INC-1".into(),
        declared_by: "oscar".into(),
        at: t(NOW),
        retrospective: None,
        follow_up_pr: None,
    });
    let seed = policy("");
    let other = policy("[emergency]\nretrospective_by = [\"qa\"]\n");
    for op in [
        ChangeOp::Retrospective { link: "x".into() },
        ChangeOp::FollowUp { pr: "y".into() },
    ] {
        assert!(check(&seed, &s, "sam", &op).is_ok());
        assert_eq!(
            check(&seed, &s, "quinn", &op),
            Err(RejectionCode::EmergencyOwnerRequired)
        );
        assert!(check(&other, &s, "quinn", &op).is_ok());
        assert_eq!(
            check(&other, &s, "sam", &op),
            Err(RejectionCode::EmergencyOwnerRequired)
        );
        // The declarer and the commander keep it under any list.
        assert!(check(&other, &s, "oscar", &op).is_ok());
        assert!(check(&other, &s, "bob", &op).is_ok());
    }
}

#[test]
fn a_policy_naming_an_unknown_role_is_refused() {
    let e = changegate_gate::corpus::case_policy(
        PEOPLE,
        "[emergency]\nremediation_by = [\"sre-leed\"]\n",
    )
    .unwrap_err();
    assert!(e.contains("remediation_by"), "{e}");
}

fn run(sha: &str, conclusion: &str) -> VerifiedLink {
    VerifiedLink {
        via: VerifiedLink::VIA.into(),
        provider: "github-actions".into(),
        repository: "acme/chat".into(),
        run_id: 42,
        head_sha: sha.into(),
        status: "completed".into(),
        conclusion: conclusion.into(),
        url: "https://github.com/acme/chat/actions/runs/42".into(),
    }
}

#[test]
fn ci_evidence_from_a_person_needs_a_verified_run_of_the_head() {
    let p = policy("");
    let s = change(2);
    let attest = |verified: Option<VerifiedLink>| ChangeOp::Attest {
        person: "mallory".into(),
        item: "tests-pass".into(),
        evidence: Some("https://github.com/acme/chat/actions/runs/42".into()),
        commit: None,
        verified,
    };
    assert_eq!(
        check(&p, &s, "mallory", &attest(None)),
        Err(RejectionCode::IntegrationRequired)
    );
    assert_eq!(
        check(&p, &s, "mallory", &attest(Some(run("h1", "success")))),
        Ok(Via::VerifiedLink {
            run_id: 42,
            conclusion: "success".into()
        })
    );
    for bad in [run("h0", "success"), run("h1", "failure")] {
        assert_eq!(
            check(&p, &s, "mallory", &attest(Some(bad))),
            Err(RejectionCode::IntegrationRequired)
        );
    }
}

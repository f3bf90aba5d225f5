use super::*;
use crate::model::{
    ChangeRequest, ClassifiedChange, EmergencyDeclaration, Incident, MaintenanceOccurrence,
};

const PEOPLE: &str = include_str!("../../tests/cases/_people.toml");

fn policy() -> Policy {
    crate::corpus::case_policy(PEOPLE, "").unwrap()
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
        co_authors: vec!["carol".into()],
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

fn integration() -> Actor {
    Actor {
        person: "ci".into(),
        admin: false,
        integration: true,
    }
}

fn incident(id: &str, commander: Option<&str>) -> Incident {
    Incident {
        id: id.into(),
        severity: "P1".into(),
        title: String::new(),
        opened_at: t("2026-03-10T09:00:00Z"),
        resolved_at: None,
        commander: commander.map(Into::into),
        kind: None,
        cvss: None,
    }
}

const NOW: &str = "2026-03-10T10:00:00Z";

fn check(
    state: &ChangeState,
    world: &WorldState,
    who: &Actor,
    op: ChangeOp,
) -> Result<Authorized, RejectionCode> {
    authorize(&policy(), state, world, who, &op, t(NOW)).map_err(|r| r.code)
}

fn transition(event: Event) -> ChangeOp {
    ChangeOp::Transition { event, by: None }
}

#[test]
fn the_table_has_one_row_per_operation_in_order() {
    assert_eq!(TABLE.len(), Operation::ALL.len());
    for (i, op) in Operation::ALL.iter().enumerate() {
        assert_eq!(TABLE[i].op, *op, "row {i}");
        assert_eq!(op.row().op, *op);
    }
    for r in &TABLE {
        // Only rows that never refuse may lack a code.
        assert_eq!(
            r.code.is_none(),
            matches!(r.grant, Grant::Anyone | Grant::RoleHolder),
            "{}",
            r.op
        );
    }
}

#[test]
fn docs_authority_md_lists_the_table() {
    let doc = include_str!("../../../../docs/authority.md");
    let table = markdown_table();
    assert!(
        doc.contains(&table),
        "docs/authority.md is stale; its table must read:\n{table}"
    );
}

#[test]
fn only_authors_cancel_submit_and_push() {
    let s = change(2);
    let w = WorldState::default();
    for op in [
        transition(Event::Cancel),
        transition(Event::Submit),
        ChangeOp::Push {
            commit: "h2".into(),
            by: "mallory".into(),
            authors: vec![],
            co_authors: vec![],
            observed: None,
        },
    ] {
        assert_eq!(
            check(&s, &w, &person("mallory"), op.clone()),
            Err(RejectionCode::AuthorRequired)
        );
        for who in ["alice", "carol", "Alice"] {
            assert!(check(&s, &w, &person(who), op.clone()).is_ok(), "{who}");
        }
    }
    // Cancel is not an integration's; push is.
    assert!(check(&s, &w, &integration(), transition(Event::Cancel)).is_err());
    let admin = Actor {
        admin: true,
        ..person("root")
    };
    assert_eq!(
        check(&s, &w, &admin, transition(Event::Cancel)).map(|a| a.via),
        Ok(Via::Admin)
    );
}

#[test]
fn rollback_follows_the_category_rollback_authority() {
    let w = WorldState::default();
    let cat3 = change(3);
    let rb = || transition(Event::RollBack);
    assert_eq!(
        check(&cat3, &w, &person("bob"), rb()),
        Err(RejectionCode::RollbackAuthorityRequired)
    );
    assert_eq!(
        check(&cat3, &w, &person("alice"), rb()),
        Err(RejectionCode::RollbackAuthorityRequired)
    );
    // The backend lead alone rolls back category 2; the SRE lead does not.
    let cat2 = change(2);
    assert!(check(&cat2, &w, &person("bob"), rb()).is_ok());
    assert!(check(&cat2, &w, &person("sam"), rb()).is_err());
    // Category 1: the on-call engineer (the policy says so).
    assert!(check(&change(1), &w, &person("oscar"), rb()).is_ok());
    assert!(check(&change(1), &w, &person("bob"), rb()).is_err());
    // The incident commander during an active incident, not after it.
    let mut w = WorldState::default();
    w.incidents.push(incident("INC-1", Some("sam")));
    let got = check(&cat3, &w, &person("sam"), rb()).unwrap();
    assert_eq!(
        got.via,
        Via::Roles {
            roles: vec!["incident-commander".into()]
        }
    );
    w.incidents[0].resolved_at = Some(t("2026-03-10T09:30:00Z"));
    assert!(check(&cat3, &w, &person("sam"), rb()).is_err());
    // The automatic rollback (an integration) may.
    assert!(check(&cat3, &w, &integration(), rb()).is_ok());
}

#[test]
fn remediation_is_the_commanders_or_an_sre_leads() {
    let s = change(2);
    let mut w = WorldState::default();
    w.incidents.push(incident("INC-1", Some("bob")));
    let op = || ChangeOp::Remediates {
        incident: "INC-1".into(),
    };
    assert_eq!(
        check(&s, &w, &person("alice"), op()),
        Err(RejectionCode::RemediationAuthorityRequired)
    );
    assert!(check(&s, &w, &person("bob"), op()).is_ok());
    assert!(check(&s, &w, &person("sam"), op()).is_ok());
    assert!(check(&s, &w, &integration(), op()).is_err());
}

#[test]
fn the_emergency_retrospective_is_its_owners() {
    let mut s = change(4);
    let mut w = WorldState::default();
    w.incidents.push(incident("INC-1", Some("bob")));
    s.emergency = Some(EmergencyDeclaration {
        incident: "INC-1".into(),
        declared_by: "oscar".into(),
        at: t(NOW),
        retrospective: None,
        follow_up_pr: None,
    });
    for op in [
        ChangeOp::Retrospective { link: "x".into() },
        ChangeOp::FollowUp { pr: "y".into() },
    ] {
        assert_eq!(
            check(&s, &w, &person("mallory"), op.clone()),
            Err(RejectionCode::EmergencyOwnerRequired)
        );
        assert_eq!(
            check(&s, &w, &person("alice"), op.clone()),
            Err(RejectionCode::EmergencyOwnerRequired)
        );
        for who in ["oscar", "bob", "sam"] {
            assert!(check(&s, &w, &person(who), op.clone()).is_ok(), "{who}");
        }
    }
}

#[test]
fn ci_evidence_only_from_integrations_and_publishing_only_by_authors() {
    let s = change(2);
    let w = WorldState::default();
    let attest = |item: &str| ChangeOp::Attest {
        person: "mallory".into(),
        item: item.into(),
        evidence: Some("https://ci/1".into()),
        commit: None,
        verified: None,
    };
    assert_eq!(
        check(&s, &w, &person("alice"), attest("tests-pass")),
        Err(RejectionCode::IntegrationRequired)
    );
    assert!(check(&s, &w, &integration(), attest("tests-pass")).is_ok());
    assert!(check(&s, &w, &person("alice"), attest("rollback-plan")).is_ok());
    let publish = ChangeOp::Publish {
        item: "rfc".into(),
        link: None,
        by: None,
    };
    assert_eq!(
        check(&s, &w, &person("mallory"), publish.clone()),
        Err(RejectionCode::AuthorRequired)
    );
    assert!(check(&s, &w, &person("alice"), publish).is_ok());
}

#[test]
fn deployments_are_started_by_authors_deployers_or_integrations() {
    let s = change(3);
    let w = WorldState::default();
    let start = || transition(Event::Start);
    assert_eq!(
        check(&s, &w, &person("mallory"), start()),
        Err(RejectionCode::DeployerRequired)
    );
    assert!(check(&s, &w, &person("alice"), start()).is_ok());
    // The tech architect is category 3's production gate.
    assert!(check(&s, &w, &person("tara"), start()).is_ok());
    assert!(check(&s, &w, &integration(), start()).is_ok());
}

#[test]
fn incidents_are_the_responders_and_teams_the_admins() {
    let p = policy();
    let mut w = WorldState::default();
    let open = WorldOp::OpenIncident {
        id: "INC-2".into(),
        severity: "P1".into(),
        commander: None,
        title: String::new(),
        kind: None,
        cvss: None,
    };
    let code = |w: &WorldState, who: &Actor, op: &WorldOp| {
        authorize_world(&p, w, who, op).map_err(|r| r.code)
    };
    assert_eq!(
        code(&w, &person("alice"), &open),
        Err(RejectionCode::IncidentForbidden)
    );
    assert!(code(&w, &person("oscar"), &open).is_ok());
    // Through a team, too.
    w.teams.insert("sre".into(), vec!["sue".into()]);
    assert!(code(&w, &person("sue"), &open).is_ok());
    // The assigned commander resolves their incident.
    w.incidents.push(incident("INC-1", Some("quinn")));
    let resolve = WorldOp::ResolveIncident { id: "INC-1".into() };
    assert!(code(&w, &person("quinn"), &resolve).is_ok());
    assert!(code(&w, &person("alice"), &resolve).is_err());
    let team = WorldOp::SetTeam {
        name: "qa".into(),
        members: vec![],
    };
    assert_eq!(
        code(&w, &person("oscar"), &team),
        Err(RejectionCode::AdminRequired)
    );
    assert_eq!(
        code(&w, &integration(), &team),
        Err(RejectionCode::AdminRequired)
    );
}

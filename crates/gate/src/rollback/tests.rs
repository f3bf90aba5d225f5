use super::*;
use crate::codes::Code;
use crate::model::{ChangeRequest, ClassifiedChange, Incident, MaintenanceOccurrence};

const PEOPLE: &str = include_str!("../../tests/cases/_people.toml");

fn policy() -> Policy {
    crate::corpus::case_policy(PEOPLE, "").unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-03-10T10:00:00Z";

fn change(category: u8, status: Status) -> ChangeState {
    let mut s = ChangeState::new(ChangeRequest {
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
    });
    s.status = status;
    s
}

fn person(p: &str) -> Actor {
    Actor {
        person: p.into(),
        admin: false,
        integration: false,
    }
}

fn open(by: &str) -> RollbackOp {
    RollbackOp::Open {
        kind: RollbackKind::Application,
        reason: "p95 regression".into(),
        downtime: None,
        by: by.into(),
        role: None,
    }
}

fn approve(by: &str, role: Option<&str>) -> RollbackOp {
    RollbackOp::Approve {
        request: "rb-1".into(),
        by: by.into(),
        role: role.map(Into::into),
    }
}

fn run(
    s: &mut ChangeState,
    w: &WorldState,
    who: &str,
    op: RollbackOp,
) -> Result<Applied, RollbackCode> {
    let p = policy();
    authorize(&p, s, w, &person(who), &op, t(NOW))
        .map_err(|_| RollbackCode::RollbackRoleNotHeld)?;
    apply(&p, s, w, &person(who), &op, t(NOW)).map_err(|e| e.code)
}

#[test]
fn category_3_needs_two_people_and_claims_once() {
    let w = WorldState::default();
    let mut s = change(3, Status::Deploying);
    // The on-call engineer opens (holds no role of the set).
    let a = run(&mut s, &w, "oscar", open("oscar")).unwrap();
    assert!(!a.claimed);
    let a = run(&mut s, &w, "bob", approve("bob", None)).unwrap();
    assert!(!a.claimed, "one lead is not enough");
    assert_eq!(
        still_missing(&policy(), &w, &s, &s.rollback.requests[0], t(NOW)),
        vec![vec!["sre-lead".to_string()]]
    );
    // bob again, as the other role: one person counts once.
    assert_eq!(
        run(&mut s, &w, "bob", approve("bob", Some("sre-lead"))),
        Err(RollbackCode::RollbackRoleNotHeld)
    );
    let a = run(&mut s, &w, "sam", approve("sam", None)).unwrap();
    assert!(a.claimed);
    assert_eq!(s.rollback.requests[0].status, RequestStatus::Executing);
    // A later approval finds it no longer pending.
    assert_eq!(
        run(&mut s, &w, "sam", approve("sam", None)),
        Err(RollbackCode::RollbackNotPending)
    );
}

#[test]
fn one_person_holding_both_roles_cannot_complete_a_dual_approval() {
    let mut p = policy();
    p.roles
        .get_mut("sre-lead")
        .unwrap()
        .holders
        .push("bob".into());
    let w = WorldState::default();
    let mut s = change(3, Status::Deploying);
    let op = open("bob");
    authorize(&p, &s, &w, &person("bob"), &op, t(NOW)).unwrap();
    let a = apply(&p, &mut s, &w, &person("bob"), &op, t(NOW)).unwrap();
    assert!(!a.claimed);
    let e = apply(
        &p,
        &mut s,
        &w,
        &person("bob"),
        &approve("bob", Some("sre-lead")),
        t(NOW),
    )
    .unwrap_err();
    assert_eq!(e.code, RollbackCode::RollbackApprovalDuplicate);
    // With one_person_many_roles the policy allows it.
    p.separation_of_duties.one_person_many_roles = true;
    let a = apply(
        &p,
        &mut s,
        &w,
        &person("bob"),
        &approve("bob", Some("sre-lead")),
        t(NOW),
    )
    .unwrap();
    assert!(a.claimed);
}

#[test]
fn the_commander_alone_during_an_incident_and_nobody_without_authority() {
    let mut w = WorldState::default();
    let mut s = change(3, Status::Deploying);
    // mallory may not even open.
    let p = policy();
    let r = authorize(&p, &s, &w, &person("mallory"), &open("mallory"), t(NOW)).unwrap_err();
    assert_eq!(r.code, RejectionCode::RollbackTriggerRequired);
    w.incidents.push(Incident {
        id: "INC-1".into(),
        severity: "P1".into(),
        title: String::new(),
        opened_at: t("2026-03-10T09:00:00Z"),
        resolved_at: None,
        commander: Some("carl".into()),
        kind: None,
        cvss: None,
    });
    let a = run(&mut s, &w, "carl", open("carl")).unwrap();
    assert!(
        a.claimed,
        "the commander's set is complete with one approval"
    );
    let r = &s.rollback.requests[0];
    assert_eq!(r.approvals[0].incident.as_deref(), Some("INC-1"));
    assert_eq!(r.granted_by, Some(vec!["incident-commander".to_string()]));
}

#[test]
fn database_rollbacks_need_the_dba_lead_and_a_downtime_estimate() {
    let w = WorldState::default();
    let mut s = change(2, Status::Deployed);
    let db = |downtime: Option<&str>| RollbackOp::Open {
        kind: RollbackKind::Database,
        reason: "bad migration".into(),
        downtime: downtime.map(|d| d.parse().unwrap()),
        by: "bob".into(),
        role: None,
    };
    assert_eq!(
        run(&mut s, &w, "bob", db(None)),
        Err(RollbackCode::RollbackDowntimeRequired)
    );
    assert!(s.rollback.requests.is_empty(), "nothing stored");
    let a = run(&mut s, &w, "bob", db(Some("3m"))).unwrap();
    assert!(!a.claimed, "the backend lead alone is not enough");
    let a = run(&mut s, &w, "dana", approve("dana", None)).unwrap();
    assert!(a.claimed);
    assert_eq!(s.rollback.requests[0].executor.as_deref(), Some("dana"));
    // Above max_downtime the product owner approves too.
    let mut s = change(2, Status::Deployed);
    run(&mut s, &w, "bob", db(Some("20m"))).unwrap();
    assert!(
        !run(&mut s, &w, "dana", approve("dana", None))
            .unwrap()
            .claimed
    );
    assert!(
        run(&mut s, &w, "paula", approve("paula", None))
            .unwrap()
            .claimed
    );
}

#[test]
fn finish_rolls_the_change_back_and_owes_a_post_mortem() {
    let w = WorldState::default();
    let mut s = change(2, Status::Deployed);
    assert!(run(&mut s, &w, "bob", open("bob")).unwrap().claimed);
    let p = policy();
    let exec = Execution {
        ran: "true".into(),
        ok: true,
        detail: "exit status: 0".into(),
        started: t(NOW),
        seconds: 0.5,
        within_limit: true,
        rollout: None,
    };
    let fin = RollbackOp::Finish {
        request: "rb-1".into(),
        execution: exec,
    };
    apply(&p, &mut s, &w, &person("bob"), &fin, t(NOW)).unwrap();
    assert_eq!(s.status, Status::RolledBack);
    let r = &s.rollback.requests[0];
    assert_eq!(r.status, RequestStatus::Done);
    assert_eq!(
        r.incident_notice.as_ref().unwrap().channel,
        INCIDENT_CHANNEL
    );
    assert_eq!(r.verification.as_ref().unwrap().status, "pending");
    assert!(overdue(&s, t("2026-03-11T09:00:00Z")).is_empty());
    let late = overdue(&s, t("2026-03-11T10:00:01Z"));
    assert_eq!(late[0].code, Code::PostMortemOverdue);
    // Two answers for three questions: refused.
    let pm = |answers: Vec<&str>| RollbackOp::PostMortem {
        request: "rb-1".into(),
        by: "bob".into(),
        answers: answers.into_iter().map(Into::into).collect(),
        link: None,
    };
    assert_eq!(
        run(&mut s, &w, "bob", pm(vec!["yes", "yes"])),
        Err(RollbackCode::PostMortemIncomplete)
    );
    run(&mut s, &w, "bob", pm(vec!["no: improve", "yes", "yes"])).unwrap();
    assert!(overdue(&s, t("2026-03-12T10:00:00Z")).is_empty());
}

#[test]
fn rollback_testing_needs_a_fast_healthy_staging_test_for_category_3() {
    let p = policy();
    let mut s = change(3, Status::InReview);
    let test = |env: &str, dur: &str, ok: bool| RollbackTest {
        by: "quinn".into(),
        environment: env.into(),
        duration: dur.parse().unwrap(),
        health_ok: ok,
        evidence: None,
        head_commit: "h1".into(),
        at: t(NOW),
    };
    let code = |s: &ChangeState| testing_reason(&p, s, 3, "rollback-plan").map(|r| r.code);
    assert_eq!(code(&s), Some(Code::RollbackTestMissing));
    s.rollback.tests.push(test("staging", "6m", true));
    assert_eq!(code(&s), Some(Code::RollbackTestTooSlow));
    s.rollback.tests.push(test("staging", "2m", false));
    assert_eq!(code(&s), Some(Code::RollbackTestUnhealthy));
    s.rollback.tests.push(test("production", "2m", true));
    assert_eq!(code(&s), Some(Code::RollbackTestNotStaging));
    s.rollback.tests.push(test("staging", "4m 30s", true));
    assert_eq!(code(&s), Some(Code::RollbackTestPassed));
    // Category 2 is not in [rollback.testing] applies_to.
    assert_eq!(
        testing_reason(&p, &change(2, Status::InReview), 2, "x"),
        None
    );
}

#[test]
fn a_completed_category_3_deploy_leaves_standby_and_status_duties() {
    let p = policy();
    let w = WorldState::default();
    let mut s = change(3, Status::Deploying);
    s.approvals.push(crate::model::Approval {
        person: "sam".into(),
        role: "sre-lead".into(),
        head_commit: "h1".into(),
        at: t(NOW),
        stage: Default::default(),
    });
    record_duties(&p, &mut s, &w, Some("tara"), t(NOW));
    let ids: Vec<&str> = s.duties.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "standby",
            "status-update-1",
            "status-update-2",
            "status-update-3"
        ]
    );
    assert_eq!(s.duties[0].owner, "sam");
    assert_eq!(s.duties[0].due_at, t("2026-03-10T14:00:00Z"));
    assert_eq!(s.duties[1].owner, "tara");
    s.status = Status::Deployed;
    let late: Vec<String> = overdue(&s, t("2026-03-11T11:00:00Z"))
        .iter()
        .map(|r| r.details["duty"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(late, ["standby", "status-update-1"]);
    // Only the owner or an SRE lead records it.
    let op = RollbackOp::RecordDuty {
        duty: "standby".into(),
        by: "mallory".into(),
        note: "quiet".into(),
    };
    assert_eq!(
        authorize(&p, &s, &w, &person("mallory"), &op, t(NOW))
            .unwrap_err()
            .code,
        RejectionCode::DutyOwnerRequired
    );
    assert!(authorize(&p, &s, &w, &person("sam"), &op, t(NOW)).is_ok());
    let mut none = change(2, Status::Deploying);
    record_duties(&p, &mut none, &w, Some("tara"), t(NOW));
    assert!(none.duties.is_empty());
}

/// A request claimed (executing) whose result was never recorded — the server stopped between
/// running the action and writing the result — blocks new requests only until the action's hard
/// stop plus a minute has passed; then opening a new request marks it failed as interrupted.
#[test]
fn an_executing_request_with_no_result_is_interrupted_after_the_hard_stop() {
    let p = policy();
    let w = WorldState::default();
    let mut s = change(2, Status::Deploying);
    let a = run(&mut s, &w, "bob", open("bob")).unwrap();
    assert!(
        a.claimed,
        "the backend lead alone completes a category-2 rollback"
    );
    let claimed = s.rollback.requests[0].claimed_at.unwrap();
    let after = interrupted_after(&p, &s.rollback.requests[0]);
    assert_eq!(
        after,
        action_hard_stop(&p, RollbackKind::Application, None)
            .saturating_add(jiff::SignedDuration::from_mins(1))
    );
    let at = |d: jiff::SignedDuration| claimed.checked_add(d).unwrap();
    // Just before: still executing, a new request is refused.
    let early = at(after - jiff::SignedDuration::from_secs(1));
    let op = open("bob");
    assert_eq!(
        apply(&p, &mut s.clone(), &w, &person("bob"), &op, early).map_err(|e| e.code),
        Err(RollbackCode::RollbackAlreadyOpen)
    );
    // At the limit: the stale request is failed as interrupted, and the new one opens.
    let late = at(after);
    let applied = apply(&p, &mut s, &w, &person("bob"), &op, late).unwrap();
    let old = &s.rollback.requests[0];
    assert_eq!(old.status, RequestStatus::Failed);
    let ex = old.execution.as_ref().unwrap();
    assert!(!ex.ok);
    assert!(ex.detail.starts_with("interrupted"), "{}", ex.detail);
    assert_eq!(old.finished_at, Some(late));
    assert_eq!(s.rollback.requests.len(), 2);
    assert_ne!(applied.request.as_deref(), Some(old.id.as_str()));
}

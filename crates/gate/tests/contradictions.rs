//! Issue 14, "policy rules the software contradicts today": one test (or a few) per rule, each
//! written against the behaviour the policy text asks for. Every test here failed before the fix
//! (run against the unfixed code; the new inputs go through serde so the file compiles either
//! way: an input the old code did not know is refused, which fails the test too). ADR 0019
//! records the readings.

use changegate_gate::*;
use changegate_policy::Policy;
use changegate_testkit::gate::*;
use serde_json::json;

/// A state with extra JSON fields merged in (inputs added by issue 14 go through serde).
fn with_json(s: &ChangeState, extra: serde_json::Value) -> ChangeState {
    let mut v = serde_json::to_value(s).unwrap();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap_or_else(|e| panic!("state refused: {e}"))
}

fn reasons_of<'a>(d: &'a Decision, code: &str) -> Vec<&'a Reason> {
    d.reasons
        .iter()
        .filter(|r| r.code.as_str() == code)
        .collect()
}

// --- 1. the incident commander is "on-call SRE or Backend Lead" -----------------------------

/// The seed's `sre` rotation (weekly, Monday 09:00 UTC, from 5 January 2026) with two SREs who
/// hold no role: week 9 (9-16 March 2026) is omar's.
fn rota_policy() -> Policy {
    policy_with("[on_call.rotations.sre]\nmembers = [\"olga\", \"omar\"]\n")
}

fn emergency(commander: &str) -> (ChangeState, WorldState) {
    let mut s = change(
        3,
        vec![facet("dep-major", &["backend-lead", "tech-architect"], 3)],
    );
    set_status(&mut s, Status::InReview, t("2026-03-14T01:00:00Z"));
    set_status(&mut s, Status::Approved, t("2026-03-14T01:20:00Z"));
    s.emergency = Some(EmergencyDeclaration {
        incident: "INC-1".into(),
        declared_by: "oscar".into(),
        at: t("2026-03-14T01:05:00Z"),
        retrospective: None,
        follow_up_pr: None,
    });
    approve(
        &mut s,
        commander,
        "incident-commander",
        t("2026-03-14T01:10:00Z"),
    );
    let w = WorldState {
        incidents: vec![Incident {
            id: "INC-1".into(),
            severity: "P0".into(),
            title: String::new(),
            opened_at: t("2026-03-14T00:30:00Z"),
            resolved_at: None,
            commander: Some(commander.into()),
            kind: None,
            cvss: None,
        }],
        ..WorldState::default()
    };
    (s, w)
}

#[test]
fn c1_the_on_call_sre_commands_an_emergency() {
    let p = rota_policy();
    let (mut s, w) = emergency("omar");
    attest_all(&p, &mut s, t("2026-03-14T01:15:00Z"));
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert!(d.allowed, "the on-call SRE qualifies: {:#?}", d.reasons);
    // olga is in the rotation but not on call that week.
    let (mut s, w) = emergency("olga");
    attest_all(&p, &mut s, t("2026-03-14T01:15:00Z"));
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert_eq!(d.missing_roles, ["incident-commander"]);
    assert!(denies(&d).contains(&"approval-unauthorized"));
}

// --- 2. category 3 "Emergency: CTO approval required" ---------------------------------------

/// A ready category-3 change wanting to ship on Wednesday 11 March 11:00 (no maintenance window,
/// nothing announced) without a stakeholder notice, with a critical-bugfix exception the CTO
/// approved.
fn cto_emergency() -> (Policy, ChangeState) {
    let (p, mut s) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    s.lead_items.remove("stakeholder-notice");
    s.exception = Some(ExceptionRequest {
        reason: "critical-bugfix".into(),
        requested_by: "alice".into(),
        at: t("2026-03-11T09:00:00Z"),
        severity: None,
        evidence: None,
        plan: None,
        approvals: vec![ExceptionApproval {
            person: "cleo".into(),
            role: "cto".into(),
            at: t("2026-03-11T09:30:00Z"),
        }],
    });
    (p, s)
}

const WED: &str = "2026-03-11T11:00:00Z";

#[test]
fn c2_a_cto_approval_lets_a_category_3_change_deploy_outside_the_maintenance_window() {
    let (p, s) = cto_emergency();
    let d = decide(&p, &s, &WorldState::default(), t(WED));
    assert!(d.allowed, "{:?}", d.denying_codes());
    assert_eq!(d.category, Some(3), "it stays category 3");
    assert!(d.required_roles.contains(&"dba-lead".to_string()));
    let mut lifts: Vec<&str> = reasons_of(&d, "emergency-exception-lift")
        .iter()
        .map(|r| r.details["lift"].as_str().unwrap())
        .collect();
    lifts.sort_unstable();
    assert_eq!(lifts, ["maintenance-announcement", "stakeholder-notice"]);
    for r in reasons_of(&d, "emergency-exception-lift") {
        assert!(!r.denies);
        assert_eq!(r.details["approved_roles"], json!(["cto"]));
    }
    // The RFC is not lifted.
    let (p, mut s) = cto_emergency();
    s.lead_items.remove("rfc");
    let d = decide(&p, &s, &WorldState::default(), t(WED));
    assert_eq!(denies(&d), ["lead-time-rfc"]);
    // Without the CTO's approval nothing is lifted.
    let (p, mut s) = cto_emergency();
    s.exception.as_mut().unwrap().approvals.clear();
    let d = decide(&p, &s, &WorldState::default(), t(WED));
    assert!(denies(&d).contains(&"lead-time-notice"), "{:?}", denies(&d));
    assert!(denies(&d).contains(&"maintenance-not-announced"));
    assert!(reasons_of(&d, "emergency-exception-lift").is_empty());
}

#[test]
fn c2_what_the_cto_emergency_lifts_is_policy_data() {
    let p = policy_with("[categories.high-risk.emergency_exception]\nlifts = []\n");
    let (_, s) = cto_emergency();
    let d = decide(&p, &s, &WorldState::default(), t(WED));
    assert!(denies(&d).contains(&"lead-time-notice"), "{:?}", denies(&d));
    assert!(denies(&d).contains(&"maintenance-not-announced"));
    assert!(
        !denies(&d).contains(&"window-closed"),
        "the window closure is still lifted"
    );
}

// --- 3. high-risk step 5: the Tech Architect approves the production deployment --------------

#[test]
fn c3_the_review_sign_off_is_not_the_production_gate() {
    let (p, s) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    let w = world_with_announcement();
    // Without the deploy-stage approval: tara's review sign-off alone does not open the gate.
    let mut v = serde_json::to_value(&s).unwrap();
    let approvals: Vec<serde_json::Value> = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.get("stage").is_none())
        .cloned()
        .collect();
    v["approvals"] = json!(approvals);
    let review_only: ChangeState = serde_json::from_value(v).unwrap();
    assert!(
        review_only
            .approvals
            .iter()
            .any(|a| a.role == "tech-architect")
    );
    let d = decide(&p, &review_only, &w, t(MW));
    assert_eq!(denies(&d), ["deploy-approval-missing"]);
    assert!(d.missing_roles.is_empty(), "the review is complete");

    // A deploy-stage approval before staging was attested does not count either.
    let early = with_json(
        &review_only,
        json!({ "approvals": serde_json::to_value(&review_only.approvals).unwrap().as_array().unwrap().iter().cloned()
            .chain([json!({ "person": "tara", "role": "tech-architect", "head_commit": "h1", "at": "2026-02-26T10:00:00Z", "stage": "deploy" })])
            .collect::<Vec<_>>() }),
    );
    let d = decide(&p, &early, &w, t(MW));
    assert_eq!(denies(&d), ["deploy-approval-missing"]);

    // After staging (attested 27 February 10:00), it opens the gate.
    let after = with_json(
        &review_only,
        json!({ "approvals": serde_json::to_value(&review_only.approvals).unwrap().as_array().unwrap().iter().cloned()
            .chain([json!({ "person": "tara", "role": "tech-architect", "head_commit": "h1", "at": "2026-02-27T11:00:00Z", "stage": "deploy" })])
            .collect::<Vec<_>>() }),
    );
    let d = decide(&p, &after, &w, t(MW));
    assert!(d.allowed, "{:?}", d.denying_codes());
    assert_eq!(reasons_of(&d, "deploy-approval-present").len(), 1);
}

#[test]
fn c3_a_deploy_approval_is_refused_before_staging() {
    let p = policy();
    let mut s = change(3, vec![facet("schema-column-dropped", &[], 3)]);
    set_status(&mut s, Status::InReview, t("2026-02-16T09:00:00Z"));
    let w = WorldState::default();
    let op: ops::ChangeOp = serde_json::from_value(
        json!({ "op": "approve", "person": "tara", "role": "tech-architect", "stage": "deploy" }),
    )
    .unwrap();
    let before = s.clone();
    let err = ops::apply(&p, &mut s, &w, &op, t("2026-02-20T10:00:00Z")).unwrap_err();
    assert_eq!(err.code().as_str(), "deploy-approval-early");
    assert_eq!(s, before, "nothing recorded");
    // Once staging is attested it is recorded, as a deploy-stage approval.
    let attest: ops::ChangeOp = serde_json::from_value(
        json!({ "op": "attest", "person": "ci", "item": "staging-smoke", "evidence": "https://ci.example/staging/1" }),
    )
    .unwrap();
    ops::apply(&p, &mut s, &w, &attest, t("2026-02-21T10:00:00Z")).unwrap();
    ops::apply(&p, &mut s, &w, &op, t("2026-02-21T11:00:00Z")).unwrap();
    let v = serde_json::to_value(s.approvals.last().unwrap()).unwrap();
    assert_eq!(v["stage"], "deploy");
}

// --- 4. which exception lifts which freeze --------------------------------------------------

fn cat2_with_exception(
    reason: &str,
    severity: Option<&str>,
    evidence: Option<&str>,
) -> (Policy, ChangeState) {
    let (p, mut s) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    s.exception = Some(ExceptionRequest {
        reason: reason.into(),
        requested_by: "alice".into(),
        at: t("2026-03-13T09:00:00Z"),
        severity: severity.map(str::to_string),
        evidence: evidence.map(str::to_string),
        plan: None,
        approvals: ["backend-lead", "sre-lead"]
            .iter()
            .map(|r| ExceptionApproval {
                person: holder(r).into(),
                role: (*r).into(),
                at: t("2026-03-13T09:30:00Z"),
            })
            .collect(),
    });
    (p, s)
}

#[test]
fn c4_the_weekend_freeze_is_lifted_only_for_critical_bug_fixes_and_high_security_patches() {
    let w = WorldState::default();
    for (reason, severity, evidence, lifted) in [
        ("critical-bugfix", None, None, true),
        ("security-patch", Some("high"), None, true),
        (
            "performance",
            None,
            Some("https://grafana.example/plan"),
            false,
        ),
    ] {
        let (p, s) = cat2_with_exception(reason, severity, evidence);
        let d = decide(&p, &s, &w, t(SAT));
        assert_eq!(d.allowed, lifted, "{reason}: {:?}", d.denying_codes());
        if !lifted {
            assert_eq!(denies(&d), ["freeze-active"], "{reason}");
            let f = reasons_of(&d, "freeze-active")[0];
            assert_eq!(f.details["calendar_code"], "freeze-weekend");
        }
    }
    // On a weekday evening the performance exception still lifts the window closure.
    let (p, s) = cat2_with_exception("performance", None, Some("https://grafana.example/plan"));
    assert!(decide(&p, &s, &w, t("2026-03-10T19:00:00Z")).allowed);
}

#[test]
fn c4_the_holiday_and_incident_freezes_are_lifted_only_by_an_emergency() {
    let (p, s) = cat2_with_exception("critical-bugfix", None, None);
    // Monday 28 December 2026, 11:00: inside a standard window, inside the holiday freeze.
    let d = decide(&p, &s, &WorldState::default(), t("2026-12-28T11:00:00Z"));
    assert_eq!(denies(&d), ["freeze-active"], "{:#?}", d.reasons);
    // A P1 incident freezes it too, exception or not.
    let w = WorldState {
        incidents: vec![Incident {
            id: "INC-3".into(),
            severity: "P1".into(),
            title: String::new(),
            opened_at: t("2026-03-10T10:00:00Z"),
            resolved_at: None,
            commander: None,
            kind: None,
            cvss: None,
        }],
        ..WorldState::default()
    };
    let d = decide(&p, &s, &w, t("2026-03-10T19:00:00Z"));
    assert_eq!(denies(&d), ["freeze-active"]);
    // Which reason lifts which freeze is policy data.
    let p = policy_with("[freezes.holiday]\nlifted_by = [\"critical-bugfix\"]\n");
    let d = decide(&p, &s, &WorldState::default(), t("2026-12-28T11:00:00Z"));
    assert!(d.allowed, "{:?}", d.denying_codes());
}

// --- 5. a high-risk rollout runs for days ---------------------------------------------------

#[test]
fn c5_the_window_holds_the_production_deployment_and_the_rollout_follows_the_plan() {
    let (p, s) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    let w = world_with_announcement();
    let plan = json!([
        { "weight": 5, "soak": "8h" }, { "weight": 25, "soak": "8h" },
        { "weight": 50, "soak": "8h" }, { "weight": 100 },
    ]);
    let follows = with_json(&s, json!({ "flag_rollout": plan }));
    let d = decide(&p, &follows, &w, t(MW));
    assert!(d.allowed, "{:?}", d.denying_codes());
    let r = reasons_of(&d, "rollout-plan-followed")[0];
    assert_eq!(r.details["window_holds"], "first-production-step");
    assert_eq!(r.details["rollout_span_secs"], 24 * 3600);
    // A rollout that rushes 25 % after an hour, or skips 50 %, does not follow the plan.
    for bad in [
        json!([{ "weight": 5, "soak": "8h" }, { "weight": 25, "soak": "1h" }, { "weight": 50, "soak": "8h" }, { "weight": 100 }]),
        json!([{ "weight": 5, "soak": "8h" }, { "weight": 25, "soak": "8h" }, { "weight": 100 }]),
    ] {
        let s2 = with_json(&s, json!({ "flag_rollout": bad }));
        let d = decide(&p, &s2, &w, t(MW));
        assert_eq!(denies(&d), ["rollout-plan-mismatch"], "{bad}");
    }
}

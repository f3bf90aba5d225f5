//! Issue 14, "policy rules the software contradicts today": the policy keys that carry each rule,
//! as the seed sets them (ADR 0019), and the cross-references checked when a policy loads.

use changegate_policy::{DiagCode, Freeze, WindowHolds, load, load_default};

fn codes(text: &str) -> Vec<(DiagCode, String)> {
    load(text, "t.toml")
        .expect_err("must be invalid")
        .diagnostics()
        .iter()
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

#[test]
fn seed_incident_commander_is_the_on_call_sre_or_a_lead() {
    let p = load_default().policy;
    assert_eq!(p.emergency.commander_on_call, ["sre"]);
    let r = &p.on_call.rotations["sre"];
    assert_eq!(r.members, ["team:sre"]);
    assert_eq!(r.handoff.day.as_str(), "mon");
    assert_eq!(r.handoff.time.to_string(), "09:00");
    assert!(
        p.emergency
            .commander_from
            .contains(&"backend-lead".to_string())
    );
}

#[test]
fn seed_cto_emergency_lifts_the_announcement_and_the_stakeholder_notice() {
    let p = load_default().policy;
    let (_, cat) = p.category(3).unwrap();
    assert_eq!(cat.emergency_approvers, ["cto"]);
    let ex = cat
        .emergency_exception
        .as_ref()
        .expect("emergency_exception");
    assert_eq!(ex.lifts, ["maintenance-announcement", "stakeholder-notice"]);
    assert!(
        !ex.lifts.contains(&"rfc".to_string()),
        "the RFC is not lifted"
    );
}

#[test]
fn seed_tech_architect_approves_the_production_deployment_after_staging() {
    let p = load_default().policy;
    let (_, cat) = p.category(3).unwrap();
    assert_eq!(cat.deploy_approvers, ["tech-architect"]);
    assert_eq!(cat.deploy_approval_after.as_deref(), Some("staging-smoke"));
}

#[test]
fn seed_freezes_are_lifted_by_the_strict_reading() {
    let p = load_default().policy;
    let lifted = |k: &str| p.freezes[k].lifted_by().to_vec();
    assert_eq!(lifted("weekend"), ["critical-bugfix", "security-patch"]);
    assert!(lifted("holiday").is_empty());
    assert!(lifted("incident").is_empty());
    assert!(matches!(p.freezes["incident"], Freeze::Incident { .. }));
}

#[test]
fn seed_high_risk_window_holds_the_first_production_step() {
    let p = load_default().policy;
    let plan = &p.rollout.plans["high-risk"];
    assert_eq!(plan.window_holds, WindowHolds::FirstProductionStep);
    assert_eq!(plan.span().as_hours(), 24);
    assert_eq!(
        p.rollout.plans["standard"].window_holds,
        WindowHolds::WholeRollout
    );
}

#[test]
fn seed_downtime_threshold_is_five_minutes() {
    let p = load_default().policy;
    let row = p
        .matrices
        .values()
        .flat_map(|m| &m.rows)
        .find(|r| r.facets.iter().any(|f| f == "schema-downtime"))
        .unwrap();
    assert_eq!(row.downtime_threshold.as_ref().unwrap().to_string(), "5m");
    assert_eq!(row.roles, ["tech-architect", "dba-lead", "product-owner"]);
}

#[test]
fn references_are_checked_when_the_policy_loads() {
    let got = codes(
        r#"
[freezes.weekend]
lifted_by = ["critical-bugfx"]
[categories.high-risk.emergency_exception]
lifts = ["rfcc"]
[categories.high-risk]
deploy_approval_after = "staging"
[emergency]
commander_on_call = ["sre", "dba"]
[on_call.rotations.sre]
members = []
shifts = [{ member = "a", from = "2026-03-10", to = "2026-03-09" }]
"#,
    );
    let unknown: Vec<&str> = got
        .iter()
        .filter(|(c, _)| *c == DiagCode::UnknownReference)
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(
        unknown,
        [
            "unknown exception reason `critical-bugfx`",
            "unknown lift (maintenance-announcement or a lead time) `rfcc`",
            "unknown pre-deployment checklist item `staging`",
            "unknown on-call rotation `dba`",
        ],
        "{got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|(c, _)| *c == DiagCode::BadRotation)
            .count(),
        2,
        "{got:?}"
    );
}

//! On-call rotations (issue 14, contradiction 1): who is on call at an instant, DST-safe, and the
//! one eligibility function every commander check calls (`emergency::commander_eligible`). These
//! tests use the API added by the fix (they do not compile against the code before it).

use changegate_gate::authority::{Actor, authorize_world, authorize_world_at};
use changegate_gate::emergency::{CommanderBasis, commander_eligible};
use changegate_gate::ops::WorldOp;
use changegate_gate::people::on_call_at;
use changegate_gate::*;
use changegate_testkit::gate::*;

fn person(p: &str) -> Actor {
    Actor {
        person: p.into(),
        admin: false,
        integration: false,
    }
}

fn who(p: &changegate_policy::Policy, w: &WorldState, at: &str) -> Option<String> {
    on_call_at(p, w, "sre", t(at)).map(|s| s.person)
}

#[test]
fn weekly_turns_follow_the_team_order_and_start_at_the_first_handoff() {
    let p = policy_with("[on_call.rotations.sre]\nmembers = [\"team:oncall\"]\n");
    let mut w = WorldState::default();
    w.teams
        .insert("oncall".into(), vec!["Olga".into(), "omar".into()]);
    // Before the first handoff (Monday 5 January 2026, 09:00 UTC) nobody is on call.
    assert_eq!(who(&p, &w, "2026-01-05T08:59:59Z"), None);
    assert_eq!(who(&p, &w, "2026-01-05T09:00:00Z").as_deref(), Some("olga"));
    assert_eq!(who(&p, &w, "2026-01-12T08:59:59Z").as_deref(), Some("olga"));
    assert_eq!(who(&p, &w, "2026-01-12T09:00:00Z").as_deref(), Some("omar"));
    assert_eq!(who(&p, &w, "2026-03-14T00:30:00Z").as_deref(), Some("omar"));
    let shift = on_call_at(&p, &w, "sre", t("2026-03-14T00:30:00Z")).unwrap();
    assert_eq!(shift.from, t("2026-03-09T09:00:00Z"));
    assert_eq!(shift.until, t("2026-03-16T09:00:00Z"));
    // An empty team: nobody.
    w.teams.clear();
    assert_eq!(who(&p, &w, "2026-03-14T00:30:00Z"), None);
}

#[test]
fn handoffs_keep_their_local_time_across_dst() {
    let p = policy_with(
        "[on_call.rotations.sre]\nmembers = [\"a\", \"b\"]\ntimezone = \"Europe/Berlin\"\nstarts = \"2026-03-02\"\n",
    );
    let w = WorldState::default();
    // Monday 09:00 CET = 08:00 UTC before 29 March, 09:00 CEST = 07:00 UTC after.
    assert_eq!(who(&p, &w, "2026-03-23T07:59:59Z").as_deref(), Some("a"));
    assert_eq!(who(&p, &w, "2026-03-23T08:00:00Z").as_deref(), Some("b"));
    assert_eq!(who(&p, &w, "2026-03-30T06:59:59Z").as_deref(), Some("b"));
    assert_eq!(who(&p, &w, "2026-03-30T07:00:00Z").as_deref(), Some("a"));
    // A handoff in the spring-forward gap (Sunday 02:30) moves to the first instant after it.
    let p = policy_with(
        "[on_call.rotations.sre]\nmembers = [\"a\", \"b\"]\ntimezone = \"Europe/Berlin\"\nstarts = \"2026-03-22\"\nhandoff = { day = \"sun\", time = \"02:30\" }\n",
    );
    assert_eq!(who(&p, &w, "2026-03-29T01:29:59Z").as_deref(), Some("a"));
    assert_eq!(who(&p, &w, "2026-03-29T01:30:00Z").as_deref(), Some("b"));
}

#[test]
fn explicit_shifts_override_the_turns() {
    let p = policy_with(
        "[on_call.rotations.sre]\nmembers = [\"a\", \"b\"]\nshifts = [{ member = \"carl\", from = \"2026-03-10\", to = \"2026-03-12\" }]\n",
    );
    let w = WorldState::default();
    assert_eq!(who(&p, &w, "2026-03-10T08:59:00Z").as_deref(), Some("b"));
    assert_eq!(who(&p, &w, "2026-03-10T09:00:00Z").as_deref(), Some("carl"));
    assert_eq!(who(&p, &w, "2026-03-12T09:00:00Z").as_deref(), Some("b"));
    assert!(
        on_call_at(&p, &w, "sre", t("2026-03-11T00:00:00Z"))
            .unwrap()
            .explicit
    );
}

#[test]
fn commander_eligible_is_the_on_call_sre_or_a_backend_lead() {
    let p = policy_with("[on_call.rotations.sre]\nmembers = [\"olga\", \"omar\"]\n");
    let w = WorldState::default();
    let at = t("2026-03-14T00:30:00Z");
    assert!(matches!(
        commander_eligible(&p, &w, "omar", at),
        Some(CommanderBasis::OnCall { .. })
    ));
    assert_eq!(commander_eligible(&p, &w, "olga", at), None);
    assert_eq!(
        commander_eligible(&p, &w, "bob", at),
        Some(CommanderBasis::Role {
            role: "backend-lead".into()
        })
    );
    assert_eq!(commander_eligible(&p, &w, "oscar", at), None);
    // The next week it is olga's turn.
    assert!(commander_eligible(&p, &w, "olga", t("2026-03-16T09:00:00Z")).is_some());
}

#[test]
fn the_on_call_sre_may_record_incidents_and_announcements() {
    let p = policy_with("[on_call.rotations.sre]\nmembers = [\"olga\", \"omar\"]\n");
    let w = WorldState::default();
    let open = WorldOp::OpenIncident {
        id: "INC-5".into(),
        severity: "P1".into(),
        commander: Some("omar".into()),
        title: String::new(),
        kind: None,
        cvss: None,
    };
    let at = t("2026-03-14T00:30:00Z");
    let ok = authorize_world_at(&p, &w, &person("omar"), &open, at).unwrap();
    assert_eq!(
        serde_json::to_value(&ok).unwrap()["via"],
        "on-call",
        "the audit event says how"
    );
    let refused = authorize_world_at(&p, &w, &person("olga"), &open, at).unwrap_err();
    assert_eq!(refused.code.as_str(), "incident-forbidden");
    // Without an instant, rotations are not consulted.
    assert!(authorize_world(&p, &w, &person("omar"), &open).is_err());
}

//! Issue 14, "policy rules the software contradicts today", through the API on SQLite and
//! PostgreSQL: the rules only visible there (who may record incidents and announcements, the
//! deploy-stage approval as a write, the CTO emergency's lifts in the audited start decision).
//! Each refusal stores nothing (the change, the world and the audit log are unchanged).

use changegate_gate::ChangeState;
use changegate_testkit::both;
use changegate_testkit::gate::{MW, TUE, facet, ready, t};
use changegate_testkit::server::{Backend, TestServer, people, people_policy};
use serde_json::{Value, json};

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
}

/// The last audit event, as JSON text.
async fn last_event(srv: &TestServer) -> String {
    let events = srv
        .db
        .store()
        .events(&changegate_store::EventFilter::default())
        .await
        .unwrap();
    serde_json::to_value(&events.last().unwrap().record)
        .unwrap()
        .to_string()
}

async fn import(srv: &TestServer, state: &ChangeState) -> String {
    let (st, b) = srv
        .post(
            "/api/v1/changes/import",
            &srv.admin,
            &serde_json::to_value(state).unwrap(),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

fn incident(id: &str) -> Value {
    json!({ "id": id, "severity": "P1", "kind": "outage" })
}

fn announcement(id: &str) -> Value {
    json!({ "id": id, "window_start": "2026-04-07T02:00:00Z", "window_end": "2026-04-07T06:00:00Z", "channels": ["email", "status-page"] })
}

// 7. Team members of a role record incidents and announcements.
both!(team_members_of_a_responder_role_record_incidents_and_announcements);
async fn team_members_of_a_responder_role_record_incidents_and_announcements(backend: Backend) {
    // `sre-lead` (an incident responder: emergency.commander_from) is held by `team:sre`.
    let srv = TestServer::start(backend, people_policy(), t(TUE)).await;
    let sue = srv.token("sue").await;
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post("/api/v1/incidents", &sue, &incident("INC-1"))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("incident-forbidden")),
        "{b}"
    );
    let (st, b) = srv
        .post("/api/v1/announcements", &sue, &announcement("MW-1"))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("incident-forbidden")),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, size, "nothing stored");
    // The admin puts sue in the team: she now holds the role through it.
    let (st, b) = srv
        .put(
            "/api/v1/teams/sre",
            &srv.admin,
            &json!({ "members": ["sue"] }),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = srv
        .post("/api/v1/incidents", &sue, &incident("INC-1"))
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = srv
        .post("/api/v1/announcements", &sue, &announcement("MW-1"))
        .await;
    assert_eq!(st, 201, "{b}");
}

// 1 and 7. The on-call SRE of a rotation made of a team records incidents (and may command them).
both!(the_on_call_sre_of_a_team_rotation_records_incidents);
async fn the_on_call_sre_of_a_team_rotation_records_incidents(backend: Backend) {
    let policy = changegate_gate::corpus::case_policy(
        &people(),
        "[on_call.rotations.sre]\nmembers = [\"team:oncall\"]\n",
    )
    .expect("a policy with an on-call rotation");
    let srv = TestServer::start(backend, policy, t(TUE)).await;
    let omar = srv.token("omar").await;
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post("/api/v1/incidents", &omar, &incident("INC-2"))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("incident-forbidden")),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, size, "nothing stored");
    let (st, _) = srv
        .put(
            "/api/v1/teams/oncall",
            &srv.admin,
            &json!({ "members": ["omar"] }),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = srv
        .post("/api/v1/incidents", &omar, &incident("INC-2"))
        .await;
    assert_eq!(st, 201, "{b}");
    let text = last_event(&srv).await;
    assert!(text.contains("on-call"), "the audit event says how: {text}");
}

// 3. The deploy-stage approval is its own write, refused before staging.
both!(the_production_gate_is_a_deploy_stage_approval_after_staging);
async fn the_production_gate_is_a_deploy_stage_approval_after_staging(backend: Backend) {
    let srv = TestServer::start(backend, people_policy(), t("2026-02-27T09:00:00Z")).await;
    let (_, mut s) = ready(3, vec![facet("schema-column-dropped", &[], 3)]);
    s.attestations.retain(|a| a.item != "staging-smoke");
    let mut v = serde_json::to_value(&s).unwrap();
    v["approvals"] = json!(
        v["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a.get("stage").is_none())
            .cloned()
            .collect::<Vec<_>>()
    );
    let s: ChangeState = serde_json::from_value(v).unwrap();
    let id = import(&srv, &s).await;
    let tara = srv.token("tara").await;
    let path = format!("/api/v1/changes/{id}/approvals");
    let body = json!({ "role": "tech-architect", "stage": "deploy" });
    let size = audit_size(&srv).await;
    let (_, before) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    let (st, b) = srv.post(&path, &tara, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (422, Some("deploy-approval-early")),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, size);
    let (_, after) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(after, before, "nothing stored");
    let ci = srv.token("ci").await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/attestations"),
            &ci,
            &json!({ "item": "staging-smoke", "evidence": "https://ci.example/staging/9" }),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    srv.set_now(t("2026-02-27T11:00:00Z"));
    let (st, b) = srv.post(&path, &tara, &body).await;
    assert_eq!(st, 201, "{b}");
    srv.set_now(t(MW));
    let (_, d) = srv
        .get(&format!("/api/v1/changes/{id}/decision"), &tara)
        .await;
    let codes = d.to_string();
    assert!(codes.contains("deploy-approval-present"), "{d}");
}

// 2. A CTO emergency deploys a category-3 change outside the maintenance window; its lifts are
// in the start event's decision (what reports count).
both!(a_cto_emergency_start_records_its_lifts);
async fn a_cto_emergency_start_records_its_lifts(backend: Backend) {
    let at = "2026-03-11T11:00:00Z";
    let srv = TestServer::start(backend, people_policy(), t(at)).await;
    let (_, mut s) = ready(3, vec![facet("schema-column-dropped", &[], 3)]);
    s.lead_items.remove("stakeholder-notice");
    let id = import(&srv, &s).await;
    let alice = srv.token("alice").await;
    let cleo = srv.token("cleo").await;
    let ex = format!("/api/v1/changes/{id}/exceptions");
    let (st, b) = srv
        .post(&ex, &alice, &json!({ "reason": "critical-bugfix" }))
        .await;
    assert!(st < 300, "{b}");
    let (st, b) = srv.post(&ex, &cleo, &json!({ "approve_as": "cto" })).await;
    assert!(st < 300, "{b}");
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &alice,
            &json!({ "op": "transition", "event": "start" }),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["status"], "deploying");
    let text = last_event(&srv).await;
    assert!(text.contains("emergency-exception-lift"), "{text}");
    assert!(text.contains("stakeholder-notice"), "{text}");
    assert!(text.contains("maintenance-announcement"), "{text}");
}

//! Issue 13 through the HTTP API, on SQLite and PostgreSQL: "an emergency can be declared against a
//! P4 incident: a category-3 change becomes category 4, window-free, approved by the commander
//! alone". Refused now (`emergency-incident-ineligible`, 422), and nothing stored changes; a P0, or
//! a security incident above CVSS 9.0, still qualifies. (The retention floor is refused by policy
//! validation and by the store itself: crates/policy/tests/loading.rs,
//! crates/store/tests/retention_floor.rs.)

use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

const SATURDAY_NIGHT: &str = "2026-03-14T01:00:00Z";

/// A category-3 change in review, imported by the admin.
async fn category_3_change(srv: &TestServer, id: &str) {
    let state = json!({
        "change": {
            "id": id, "repository": "acme/chat-backend", "base_commit": "a0", "head_commit": "a1",
            "authors": ["alice"], "last_pusher": "alice",
            "classification": { "category": 3, "facets": [
                { "kind": "dep-major", "roles": ["backend-lead", "tech-architect"], "category": 3 }
            ] },
        },
        "status": "in-review",
        "history": [{ "from": "draft", "to": "in-review", "at": "2026-03-14T00:30:00Z", "by": "alice" }],
    });
    let (st, body) = srv.post("/api/v1/changes/import", &srv.admin, &state).await;
    assert_eq!(st, 201, "{body}");
}

async fn open(srv: &TestServer, body: Value) {
    let (st, b) = srv.post("/api/v1/incidents", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
}

async fn declare(srv: &TestServer, change: &str, incident: &str) -> (u16, Value) {
    srv.post(
        &format!("/api/v1/changes/{change}/ops"),
        &srv.admin,
        &json!({ "op": "declare-emergency", "incident": incident, "by": "oscar" }),
    )
    .await
}

async fn decision(srv: &TestServer, change: &str) -> Value {
    let (st, d) = srv
        .get(
            &format!("/api/v1/changes/{change}/decision?at={SATURDAY_NIGHT}"),
            &srv.admin,
        )
        .await;
    assert_eq!(st, 200, "{d}");
    d
}

fn codes(d: &Value) -> Vec<String> {
    d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

both!(a_p4_incident_makes_no_emergency);
async fn a_p4_incident_makes_no_emergency(backend: Backend) {
    let srv = TestServer::start(backend, people_policy(), SATURDAY_NIGHT.parse().unwrap()).await;
    category_3_change(&srv, "CR-1").await;
    open(
        &srv,
        json!({ "id": "INC-4", "severity": "P4", "kind": "outage", "commander": "sam" }),
    )
    .await;
    open(
        &srv,
        json!({ "id": "INC-SEC", "severity": "P2", "kind": "security", "cvss": 9.0, "commander": "sam" }),
    )
    .await;
    let (_, before) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    let (_, world_before) = srv.get("/api/v1/incidents", &srv.admin).await;

    for incident in ["INC-4", "INC-SEC"] {
        let (st, body) = declare(&srv, "CR-1", incident).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("emergency-incident-ineligible")),
            "{incident}: {body}"
        );
    }
    let (_, after) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    assert_eq!(after, before, "nothing stored changed");
    let (_, world_after) = srv.get("/api/v1/incidents", &srv.admin).await;
    assert_eq!(world_after, world_before);

    // Still category 3: the commander cannot approve alone, the window and freeze hold.
    let (st, body) = srv
        .post(
            "/api/v1/changes/CR-1/ops",
            &srv.admin,
            &json!({ "op": "approve", "person": "sam", "role": "incident-commander" }),
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("role-not-required")),
        "{body}"
    );
    let d = decision(&srv, "CR-1").await;
    assert_eq!(d["allowed"], false);
    assert_eq!(d["category"], 3);
    let c = codes(&d);
    assert!(c.contains(&"window-closed".to_string()), "{c:?}");
    assert!(!c.contains(&"emergency-override".to_string()), "{c:?}");
}

both!(category_4_incidents_still_qualify);
async fn category_4_incidents_still_qualify(backend: Backend) {
    let srv = TestServer::start(backend, people_policy(), SATURDAY_NIGHT.parse().unwrap()).await;
    open(
        &srv,
        json!({ "id": "INC-0", "severity": "P0", "commander": "sam" }),
    )
    .await;
    open(
        &srv,
        json!({ "id": "INC-CVE", "severity": "P2", "kind": "security", "cvss": 9.8, "commander": "sam" }),
    )
    .await;
    for (change, incident) in [("CR-2", "INC-0"), ("CR-3", "INC-CVE")] {
        category_3_change(&srv, change).await;
        let (st, body) = declare(&srv, change, incident).await;
        assert_eq!(st, 200, "{incident}: {body}");
        let (st, body) = srv
            .post(
                &format!("/api/v1/changes/{change}/ops"),
                &srv.admin,
                &json!({ "op": "approve", "person": "sam", "role": "incident-commander" }),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        let d = decision(&srv, change).await;
        assert_eq!(d["category"], 4);
        assert!(codes(&d).contains(&"emergency-override".to_string()), "{d}");
    }
    // An incident of a kind the policy does not know is refused, and not stored.
    let (st, body) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({ "id": "INC-X", "severity": "P0", "kind": "outages" }),
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("incident-kind-invalid")),
        "{body}"
    );
    let (_, list) = srv.get("/api/v1/incidents", &srv.admin).await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 2);
}

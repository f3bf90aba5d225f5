//! Issue 13, "authority for every operation", tried as an attacker would: one test per attack and
//! per row of the authority table (docs/authority.md), on SQLite and PostgreSQL. Each refusal is
//! a 403 whose code names the missing authority, and nothing stored changes (the change document,
//! its version and the audit log); the allowed side of each row still works.

use changegate_gate::{ChangeState, EmergencyDeclaration, Status};
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, change, facet, ready, set_status, t};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

async fn server(backend: Backend) -> TestServer {
    TestServer::start(backend, people_policy(), t(TUE)).await
}

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
}

/// Record `state` as it stands (admin import): a change by `alice`.
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

/// A category-`level` change by alice, in `status`.
fn state(level: u8, status: Status) -> ChangeState {
    let facets = match level {
        2 => vec![facet("api-endpoint-added", &["backend-lead"], 2)],
        3 => vec![facet("schema-column-dropped", &[], 3)],
        _ => vec![],
    };
    let mut s = if status == Status::Draft || level == 4 {
        change(level, facets)
    } else {
        ready(level, facets).1
    };
    if s.status != status {
        set_status(&mut s, status, t("2026-03-10T10:00:00Z"));
    }
    s
}

async fn snapshot(srv: &TestServer, id: &str) -> (u64, Value) {
    let (st, c) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(st, 200, "{c}");
    (audit_size(srv).await, c)
}

/// `POST path` with `token` is a 403 with `code`, and the change `id` and the log are untouched.
async fn refused(srv: &TestServer, token: &str, id: &str, path: &str, body: Value, code: &str) {
    let before = snapshot(srv, id).await;
    let (st, b) = srv.post(path, token, &body).await;
    assert_eq!((st, b["code"].as_str()), (403, Some(code)), "{body}: {b}");
    assert!(
        b["message"].as_str().is_some_and(|m| m.contains("needs")),
        "the refusal says what it needs: {b}"
    );
    assert_eq!(snapshot(srv, id).await, before, "nothing may be stored");
}

async fn refused_op(srv: &TestServer, token: &str, id: &str, op: Value, code: &str) {
    refused(
        srv,
        token,
        id,
        &format!("/api/v1/changes/{id}/ops"),
        op,
        code,
    )
    .await;
}

/// `POST …/ops` with `token` succeeds; the change as stored after it.
async fn allowed_op(srv: &TestServer, token: &str, id: &str, op: Value) -> Value {
    let size = audit_size(srv).await;
    let (st, b) = srv
        .post(&format!("/api/v1/changes/{id}/ops"), token, &op)
        .await;
    assert_eq!(st, 200, "{op}: {b}");
    assert_eq!(audit_size(srv).await, size + 1, "one audit event");
    b
}

fn transition(event: &str) -> Value {
    json!({"op": "transition", "event": event})
}

async fn open_incident(srv: &TestServer, id: &str, severity: &str, commander: &str) {
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({"id": id, "severity": severity, "commander": commander}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
}

both!(any_token_cannot_roll_back_anyones_change);
async fn any_token_cannot_roll_back_anyones_change(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::Deploying)).await;
    for who in ["mallory", "alice", "sam"] {
        let tok = srv.token(who).await;
        refused_op(
            &srv,
            &tok,
            &id,
            transition("roll-back"),
            "rollback-authority-required",
        )
        .await;
    }
    // Category 2: the backend lead may, alone.
    let bob = srv.token("bob").await;
    let b = allowed_op(&srv, &bob, &id, transition("roll-back")).await;
    assert_eq!(b["status"], "rolled-back");
}

both!(a_high_risk_rollback_needs_both_leads_or_the_commander_during_an_incident);
async fn a_high_risk_rollback_needs_both_leads_or_the_commander_during_an_incident(
    backend: Backend,
) {
    let srv = server(backend).await;
    let id = import(&srv, &state(3, Status::Deploying)).await;
    let bob = srv.token("bob").await;
    let sam = srv.token("sam").await;
    for tok in [&bob, &sam] {
        refused_op(
            &srv,
            tok,
            &id,
            transition("roll-back"),
            "rollback-authority-required",
        )
        .await;
    }
    // The CLI's check asks with dry_run: allowed or not, nothing is stored.
    let before = snapshot(&srv, &id).await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops?dry_run=true"),
            &bob,
            &transition("roll-back"),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("rollback-authority-required"))
    );
    // During an active incident its commander may.
    open_incident(&srv, "INC-1", "P1", "sam").await;
    let before_dry = snapshot(&srv, &id).await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops?dry_run=true"),
            &sam,
            &transition("roll-back"),
        )
        .await;
    assert_eq!(
        (st, b["status"].as_str()),
        (200, Some("rolled-back")),
        "{b}"
    );
    assert_eq!(
        snapshot(&srv, &id).await,
        before_dry,
        "a dry run stores nothing"
    );
    assert_ne!(before_dry.0, before.0, "the incident was recorded");
    let b = allowed_op(&srv, &sam, &id, transition("roll-back")).await;
    assert_eq!(b["status"], "rolled-back");
}

both!(any_token_cannot_cancel_anyones_change);
async fn any_token_cannot_cancel_anyones_change(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::InReview)).await;
    let mallory = srv.token("mallory").await;
    let bob = srv.token("bob").await;
    for tok in [&mallory, &bob] {
        refused_op(&srv, tok, &id, transition("cancel"), "author-required").await;
    }
    let alice = srv.token("alice").await;
    let b = allowed_op(&srv, &alice, &id, transition("cancel")).await;
    assert_eq!(b["status"], "cancelled");
    // An admin may cancel too.
    let mut other = state(2, Status::InReview);
    other.change.id = "CR-2".into();
    let id = import(&srv, &other).await;
    let b = allowed_op(&srv, &srv.admin, &id, transition("cancel")).await;
    assert_eq!(b["status"], "cancelled");
}

both!(any_token_cannot_push_to_anyones_change);
async fn any_token_cannot_push_to_anyones_change(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::InReview)).await;
    let mallory = srv.token("mallory").await;
    refused_op(
        &srv,
        &mallory,
        &id,
        json!({"op": "push", "commit": "c2", "by": "mallory"}),
        "author-required",
    )
    .await;
    let alice = srv.token("alice").await;
    let b = allowed_op(
        &srv,
        &alice,
        &id,
        json!({"op": "push", "commit": "c2", "by": "alice"}),
    )
    .await;
    assert_eq!(b["change"]["head_commit"], "c2");
}

both!(the_author_cannot_lift_the_incident_freeze_from_their_own_change);
async fn the_author_cannot_lift_the_incident_freeze_from_their_own_change(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::Approved)).await;
    open_incident(&srv, "INC-1", "P1", "bob").await;
    let alice = srv.token("alice").await;
    let remediates = json!({"op": "remediates", "incident": "INC-1"});
    refused_op(
        &srv,
        &alice,
        &id,
        remediates.clone(),
        "remediation-authority-required",
    )
    .await;
    // The freeze still denies the deploy.
    let (_, d) = srv
        .get(&format!("/api/v1/changes/{id}/decision"), &alice)
        .await;
    assert_eq!(d["allowed"], false, "{d}");
    // The incident's commander may, and so may an SRE lead.
    let bob = srv.token("bob").await;
    let b = allowed_op(&srv, &bob, &id, remediates).await;
    assert_eq!(b["remediates"], json!(["INC-1"]));
    open_incident(&srv, "INC-2", "P1", "oscar").await;
    let sam = srv.token("sam").await;
    let b = allowed_op(
        &srv,
        &sam,
        &id,
        json!({"op": "remediates", "incident": "INC-2"}),
    )
    .await;
    assert_eq!(b["remediates"], json!(["INC-1", "INC-2"]));
}

both!(a_person_with_no_role_cannot_close_someone_elses_emergency);
async fn a_person_with_no_role_cannot_close_someone_elses_emergency(backend: Backend) {
    let srv = server(backend).await;
    open_incident(&srv, "INC-1", "P0", "bob").await;
    let mut s = state(4, Status::Deployed);
    s.emergency = Some(EmergencyDeclaration {
        incident: "INC-1".into(),
        declared_by: "oscar".into(),
        at: t("2026-03-10T09:00:00Z"),
        retrospective: None,
        follow_up_pr: None,
    });
    let id = import(&srv, &s).await;
    let mallory = srv.token("mallory").await;
    let alice = srv.token("alice").await;
    for tok in [&mallory, &alice] {
        refused_op(
            &srv,
            tok,
            &id,
            json!({"op": "retrospective", "link": "https://wiki/retro"}),
            "emergency-owner-required",
        )
        .await;
        refused_op(
            &srv,
            tok,
            &id,
            json!({"op": "follow-up", "pr": "https://git/pr/2"}),
            "emergency-owner-required",
        )
        .await;
    }
    // The declarer, the commander or an SRE lead may.
    let oscar = srv.token("oscar").await;
    let b = allowed_op(
        &srv,
        &oscar,
        &id,
        json!({"op": "retrospective", "link": "https://wiki/retro"}),
    )
    .await;
    assert_eq!(
        b["emergency"]["retrospective"]["link"],
        "https://wiki/retro"
    );
    let bob = srv.token("bob").await;
    let b = allowed_op(
        &srv,
        &bob,
        &id,
        json!({"op": "follow-up", "pr": "https://git/pr/2"}),
    )
    .await;
    assert_eq!(b["emergency"]["follow_up_pr"], "https://git/pr/2");
}

both!(a_person_with_no_role_cannot_publish_the_rfc);
async fn a_person_with_no_role_cannot_publish_the_rfc(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(3, Status::InReview)).await;
    let mallory = srv.token("mallory").await;
    for item in ["rfc", "stakeholder-notice"] {
        refused_op(
            &srv,
            &mallory,
            &id,
            json!({"op": "publish", "item": item, "link": "https://wiki/x"}),
            "author-required",
        )
        .await;
    }
    let alice = srv.token("alice").await;
    let b = allowed_op(
        &srv,
        &alice,
        &id,
        json!({"op": "publish", "item": "rfc", "link": "https://wiki/rfc"}),
    )
    .await;
    assert_eq!(b["lead_items"]["rfc"]["by"], "alice");
}

both!(tests_pass_is_attested_only_by_an_integration);
async fn tests_pass_is_attested_only_by_an_integration(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::InReview)).await;
    let url = format!("/api/v1/changes/{id}/attestations");
    let ci = json!({"item": "tests-pass", "evidence": "https://ci.example/run/1"});
    for who in ["mallory", "alice", "bob"] {
        let tok = srv.token(who).await;
        refused(&srv, &tok, &id, &url, ci.clone(), "integration-required").await;
        refused_op(
            &srv,
            &tok,
            &id,
            json!({"op": "attest", "person": who, "item": "tests-pass", "evidence": "https://ci.example/run/1"}),
            "integration-required",
        )
        .await;
    }
    // The CI job's token may; a person still attests what a person can vouch for.
    let (st, b) = srv.post(&url, &srv.admin, &ci).await;
    assert_eq!(st, 201, "{b}");
    let alice = srv.token("alice").await;
    let (st, b) = srv
        .post(
            &url,
            &alice,
            &json!({"item": "rollback-plan", "evidence": "https://wiki/rollback"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
}

both!(life_cycle_transitions_are_the_authors);
async fn life_cycle_transitions_are_the_authors(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::Draft)).await;
    let mallory = srv.token("mallory").await;
    refused_op(&srv, &mallory, &id, transition("submit"), "author-required").await;
    let alice = srv.token("alice").await;
    let b = allowed_op(&srv, &alice, &id, transition("submit")).await;
    assert_eq!(b["status"], "in-review");
    refused_op(
        &srv,
        &mallory,
        &id,
        transition("approve"),
        "author-required",
    )
    .await;
    refused_op(
        &srv,
        &mallory,
        &id,
        json!({"op": "request-exception", "reason": "critical-bugfix", "by": "mallory"}),
        "author-required",
    )
    .await;
    let b = allowed_op(
        &srv,
        &alice,
        &id,
        json!({"op": "request-exception", "reason": "critical-bugfix", "by": "alice"}),
    )
    .await;
    assert_eq!(b["exception"]["requested_by"], "alice");
}

both!(deployments_are_started_and_completed_by_deployers);
async fn deployments_are_started_and_completed_by_deployers(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::Approved)).await;
    let mallory = srv.token("mallory").await;
    refused_op(
        &srv,
        &mallory,
        &id,
        transition("start"),
        "deployer-required",
    )
    .await;
    let alice = srv.token("alice").await;
    let b = allowed_op(&srv, &alice, &id, transition("start")).await;
    assert_eq!(b["status"], "deploying");
    refused_op(
        &srv,
        &mallory,
        &id,
        transition("complete"),
        "deployer-required",
    )
    .await;
    // The deploy pipeline's token may complete it.
    let b = allowed_op(&srv, &srv.admin, &id, transition("complete")).await;
    assert_eq!(b["status"], "deployed");
}

both!(incidents_are_opened_and_resolved_by_responders);
async fn incidents_are_opened_and_resolved_by_responders(backend: Backend) {
    let srv = server(backend).await;
    let alice = srv.token("alice").await;
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &alice,
            &json!({"id": "INC-9", "severity": "P0", "commander": "alice"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("incident-forbidden")),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, size);
    let oscar = srv.token("oscar").await;
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &oscar,
            &json!({"id": "INC-9", "severity": "P0", "commander": "quinn"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    // Only its commander (or a responder) resolves it.
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post("/api/v1/incidents/INC-9/resolve", &alice, &json!({}))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("incident-forbidden")),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, size);
    let (_, list) = srv.get("/api/v1/incidents", &alice).await;
    assert!(list["incidents"][0]["resolved_at"].is_null(), "{list}");
    let quinn = srv.token("quinn").await;
    let (st, b) = srv
        .post("/api/v1/incidents/INC-9/resolve", &quinn, &json!({}))
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["incident"]["resolved_at"].is_string(), "{b}");
}

both!(only_a_declarer_declares_an_emergency);
async fn only_a_declarer_declares_an_emergency(backend: Backend) {
    let srv = server(backend).await;
    open_incident(&srv, "INC-1", "P0", "bob").await;
    let id = import(&srv, &state(2, Status::InReview)).await;
    let alice = srv.token("alice").await;
    refused_op(
        &srv,
        &alice,
        &id,
        json!({"op": "declare-emergency", "incident": "INC-1", "by": "alice"}),
        "emergency-declarer-unauthorized",
    )
    .await;
    let oscar = srv.token("oscar").await;
    let b = allowed_op(
        &srv,
        &oscar,
        &id,
        json!({"op": "declare-emergency", "incident": "INC-1", "by": "oscar"}),
    )
    .await;
    assert_eq!(b["emergency"]["declared_by"], "oscar");
}

both!(the_authority_that_allowed_a_command_is_audited);
async fn the_authority_that_allowed_a_command_is_audited(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &state(2, Status::Deploying)).await;
    let bob = srv.token("bob").await;
    allowed_op(&srv, &bob, &id, transition("roll-back")).await;
    let filter = changegate_store::EventFilter {
        change_id: Some(id.clone()),
        ..Default::default()
    };
    let events = srv.db.store().events(&filter).await.unwrap();
    let last = serde_json::to_value(&events.last().unwrap().record).unwrap();
    assert_eq!(
        find(&last, "authority"),
        Some(&json!({"operation": "roll-back", "via": "roles", "roles": ["backend-lead"]})),
        "{last}"
    );
}

/// The first value under `key`, anywhere in `v`.
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

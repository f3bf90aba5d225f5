//! Issue 14, "Rollback governance", through the API on SQLite and PostgreSQL: manual rollback
//! requests that collect the category's rollback authority (two people for category 3) before
//! the server runs the rollback action — a real command writing a marker file, so "ran exactly
//! once, and not after the first approval" is observed — the database rollback path, rollback
//! testing evidence, the post-mortem and the duties of a category-3 deploy. Every refusal asserts
//! its code and that nothing stored changed (the change document, its version, the audit log).

use changegate_gate::{ChangeState, Status};
use changegate_rollout::action::Action;
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, change, facet, ready, set_status, t};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

struct Env {
    srv: TestServer,
    dir: tempfile::TempDir,
}

impl Env {
    fn marker(&self) -> std::path::PathBuf {
        self.dir.path().join("rolled-back")
    }
    fn db_marker(&self) -> std::path::PathBuf {
        self.dir.path().join("db-rolled-back")
    }
    /// Lines the application action wrote for change `id`.
    fn runs(&self, id: &str) -> usize {
        std::fs::read_to_string(self.marker())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.trim() == id)
            .count()
    }
    fn db_runs(&self) -> usize {
        std::fs::read_to_string(self.db_marker())
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// A server whose application rollback action appends the change id to a marker file and whose
/// policy's database rollback command appends a line to another.
async fn env(backend: Backend) -> Env {
    env_with(backend, true).await
}

async fn env_with(backend: Backend, action: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let db_marker = dir.path().join("db-rolled-back");
    let mut policy = people_policy();
    policy.rollback.database.command = Some(format!(
        "echo \"$CHANGEGATE_ACTION {{change}}\" >> {}",
        db_marker.display()
    ));
    let srv = TestServer::start_configured(backend, policy, t(TUE), None, None, |s| {
        if action {
            s.rollback.application = Some(Action::parse(&format!(
                "echo {{change}} >> {}",
                marker.display()
            )));
        }
    })
    .await;
    Env { srv, dir }
}

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
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

/// A category-`level` change by alice with id `id`, in `status`.
fn state(id: &str, level: u8, status: Status) -> ChangeState {
    let facets = match level {
        2 => vec![facet("api-endpoint-added", &["backend-lead"], 2)],
        3 => vec![facet("schema-column-dropped", &[], 3)],
        _ => vec![],
    };
    let mut s = if status == Status::Draft {
        change(level, facets)
    } else {
        ready(level, facets).1
    };
    s.change.id = id.into();
    if s.status != status {
        if status == Status::Deployed {
            set_status(&mut s, Status::Deploying, t("2026-03-10T10:00:00Z"));
        }
        set_status(&mut s, status, t("2026-03-10T10:30:00Z"));
    }
    s
}

async fn snapshot(srv: &TestServer, id: &str) -> (u64, Value) {
    let (st, c) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(st, 200, "{c}");
    (audit_size(srv).await, c)
}

/// `POST path` is refused with (`status`, `code`), and nothing stored changed.
async fn refused(
    srv: &TestServer,
    token: &str,
    id: &str,
    path: &str,
    body: Value,
    want: (u16, &str),
) {
    let before = snapshot(srv, id).await;
    let (st, b) = srv.post(path, token, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (want.0, Some(want.1)),
        "{path} {body}: {b}"
    );
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    assert_eq!(snapshot(srv, id).await, before, "nothing may be stored");
}

fn rollbacks(id: &str) -> String {
    format!("/api/v1/changes/{id}/rollbacks")
}

fn approvals(id: &str, rid: &str) -> String {
    format!("/api/v1/changes/{id}/rollbacks/{rid}/approvals")
}

async fn post_ok(srv: &TestServer, path: &str, token: &str, body: Value) -> Value {
    let (st, b) = srv.post(path, token, &body).await;
    assert!((200..300).contains(&st), "{path} {body}: {st} {b}");
    b
}

both!(dual_approval_collects_both_leads_before_the_action_runs_once);
async fn dual_approval_collects_both_leads_before_the_action_runs_once(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-31", 3, Status::Deploying)).await;
    let (oscar, bob, sam) = (
        srv.token("oscar").await,
        srv.token("bob").await,
        srv.token("sam").await,
    );
    // The on-call engineer opens the request; they hold no role of the category-3 set.
    let size = audit_size(srv).await;
    let b = post_ok(
        srv,
        &rollbacks(&id),
        &oscar,
        json!({"reason": "p95 regression"}),
    )
    .await;
    assert_eq!(b["request"]["status"], "pending", "{b}");
    assert_eq!(
        b["request"]["opened_via"]["roles"],
        json!(["on-call-engineer"])
    );
    assert_eq!(b["missing"], json!([["backend-lead", "sre-lead"]]));
    assert_eq!(audit_size(srv).await, size + 1, "rollback.requested");
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    // The backend lead approves: still one lead short, nothing runs.
    let b = post_ok(srv, &approvals(&id, &rid), &bob, json!({})).await;
    assert_eq!(b["request"]["status"], "pending");
    assert_eq!(b["missing"], json!([["sre-lead"]]));
    assert_eq!(b["change_status"], "deploying");
    assert_eq!(
        e.runs(&id),
        0,
        "the action must not run after the first approval"
    );
    // One person counts once.
    refused(
        srv,
        &bob,
        &id,
        &approvals(&id, &rid),
        json!({"role": "sre-lead"}),
        (403, "rollback-role-not-held"),
    )
    .await;
    refused(
        srv,
        &bob,
        &id,
        &approvals(&id, &rid),
        json!({}),
        (403, "rollback-role-not-held"),
    )
    .await;
    // Opening a second request is refused while this one is open.
    refused(
        srv,
        &oscar,
        &id,
        &rollbacks(&id),
        json!({"reason": "again"}),
        (409, "rollback-already-open"),
    )
    .await;
    // The SRE lead completes the authority: the action runs once and the change is rolled back.
    let size = audit_size(srv).await;
    let clock = std::time::Instant::now();
    let b = post_ok(srv, &approvals(&id, &rid), &sam, json!({})).await;
    let total = clock.elapsed().as_secs_f64();
    assert_eq!(b["request"]["status"], "done", "{b}");
    assert_eq!(b["change_status"], "rolled-back");
    assert_eq!(
        b["request"]["granted_by"],
        json!(["backend-lead", "sre-lead"])
    );
    assert_eq!(e.runs(&id), 1);
    let secs = b["request"]["execution"]["seconds"].as_f64().unwrap();
    assert!(secs > 0.0 && secs < 30.0, "{secs}");
    eprintln!(
        "measured ({}): rollback action {secs:.4} s; completing approval -> rolled back (claim, action, record) {total:.4} s",
        srv.db.backend()
    );
    assert_eq!(b["request"]["execution"]["within_limit"], true);
    assert_eq!(
        b["request"]["incident_notice"]["channel"],
        "slack:#incidents"
    );
    assert_eq!(b["request"]["verification"]["status"], "pending");
    assert_eq!(
        b["request"]["post_mortem"]["due_at"].as_str(),
        Some("2026-03-11T11:00:00Z"),
        "due 24 h after the rollback"
    );
    assert_eq!(
        audit_size(srv).await,
        size + 2,
        "rollback.approved, rollback.triggered"
    );
    // Later approvals are refused; the action never runs again.
    refused(
        srv,
        &sam,
        &id,
        &approvals(&id, &rid),
        json!({}),
        (409, "rollback-not-pending"),
    )
    .await;
    assert_eq!(e.runs(&id), 1);
    // The audit trail has every step, and the rollback's duration.
    let events = srv
        .db
        .store()
        .events(&changegate_store::EventFilter {
            change_id: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.record.event.kind.as_str())
        .collect();
    for k in [
        "rollback.requested",
        "rollback.approved",
        "rollback.triggered",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let done = events
        .iter()
        .find(|e| e.record.event.kind == "rollback.triggered")
        .unwrap();
    assert_eq!(done.record.event.outcome["result"], "rolled-back");
    assert!(done.record.event.when["duration"].as_f64().is_some());
    assert!(srv.db.store().verify(None).await.unwrap().ok());
}

both!(concurrent_approvals_run_the_action_exactly_once);
async fn concurrent_approvals_run_the_action_exactly_once(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let (oscar, bob, sam) = (
        srv.token("oscar").await,
        srv.token("bob").await,
        srv.token("sam").await,
    );
    for n in 0..4 {
        let id = import(srv, &state(&format!("CR-R{n}"), 3, Status::Deploying)).await;
        let b = post_ok(srv, &rollbacks(&id), &oscar, json!({"reason": "race"})).await;
        let rid = b["request"]["id"].as_str().unwrap().to_string();
        let path = approvals(&id, &rid);
        let empty = json!({});
        let (a, b) = tokio::join!(srv.post(&path, &bob, &empty), srv.post(&path, &sam, &empty));
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        let done = [&a.1, &b.1]
            .iter()
            .filter(|v| v["request"]["status"] == "done")
            .count();
        assert_eq!(done, 1, "exactly one approval completes it: {a:?} {b:?}");
        assert_eq!(e.runs(&id), 1, "{id}");
        let (_, c) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
        assert_eq!(c["status"], "rolled-back");
    }
}

both!(a_single_backend_lead_cannot_roll_back_category_3_outside_an_incident);
async fn a_single_backend_lead_cannot_roll_back_category_3_outside_an_incident(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-32", 3, Status::Deploying)).await;
    let bob = srv.token("bob").await;
    // The direct roll-back transition: refused.
    refused(
        srv,
        &bob,
        &id,
        &format!("/api/v1/changes/{id}/ops"),
        json!({"op": "transition", "event": "roll-back"}),
        (403, "rollback-authority-required"),
    )
    .await;
    // Through a request: bob's approval is recorded, nothing runs.
    let b = post_ok(srv, &rollbacks(&id), &bob, json!({"reason": "errors"})).await;
    assert_eq!(b["request"]["status"], "pending");
    assert_eq!(b["request"]["approvals"][0]["role"], "backend-lead");
    assert_eq!(b["missing"], json!([["sre-lead"]]));
    assert_eq!(e.runs(&id), 0);
    let (_, c) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(c["status"], "deploying");
    // Nobody without a trigger authority opens one.
    let other = import(srv, &state("CR-33", 3, Status::Deploying)).await;
    let mallory = srv.token("mallory").await;
    refused(
        srv,
        &mallory,
        &other,
        &rollbacks(&other),
        json!({"reason": "x"}),
        (403, "rollback-trigger-required"),
    )
    .await;
    // A role that is not in the set: refused with its code.
    refused(
        srv,
        &bob,
        &other,
        &rollbacks(&other),
        json!({"reason": "x", "role": "qa"}),
        (422, "rollback-role-not-needed"),
    )
    .await;
}

both!(one_person_holding_both_leads_is_not_two_approvals);
async fn one_person_holding_both_leads_is_not_two_approvals(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let mut policy = people_policy();
    policy
        .roles
        .get_mut("sre-lead")
        .unwrap()
        .holders
        .push("bob".into());
    let m = marker.clone();
    let srv = TestServer::start_configured(backend, policy, t(TUE), None, None, move |s| {
        s.rollback.application = Some(Action::parse(&format!("echo x >> {}", m.display())));
    })
    .await;
    let id = import(&srv, &state("CR-34", 3, Status::Deploying)).await;
    let bob = srv.token("bob").await;
    let b = post_ok(&srv, &rollbacks(&id), &bob, json!({"reason": "errors"})).await;
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    refused(
        &srv,
        &bob,
        &id,
        &approvals(&id, &rid),
        json!({"role": "sre-lead"}),
        (403, "rollback-approval-duplicate"),
    )
    .await;
    refused(
        &srv,
        &bob,
        &id,
        &format!("/api/v1/changes/{id}/ops"),
        json!({"op": "transition", "event": "roll-back"}),
        (403, "rollback-authority-required"),
    )
    .await;
    assert!(!marker.exists());
}

both!(the_incident_commander_rolls_back_alone_during_an_active_incident);
async fn the_incident_commander_rolls_back_alone_during_an_active_incident(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-35", 3, Status::Deployed)).await;
    let sam = srv.token("sam").await;
    // Outside an incident the SRE lead alone is one approval of two.
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({"id": "INC-7", "severity": "P1", "commander": "sam"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let b = post_ok(
        srv,
        &rollbacks(&id),
        &sam,
        json!({"reason": "incident INC-7", "role": "incident-commander"}),
    )
    .await;
    assert_eq!(b["request"]["status"], "done", "{b}");
    assert_eq!(b["request"]["approvals"][0]["incident"], "INC-7");
    assert_eq!(b["request"]["granted_by"], json!(["incident-commander"]));
    assert_eq!(b["change_status"], "rolled-back");
    assert_eq!(e.runs(&id), 1);
}

both!(database_rollback_needs_the_dba_lead_and_a_downtime_estimate);
async fn database_rollback_needs_the_dba_lead_and_a_downtime_estimate(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-21", 2, Status::Deployed)).await;
    let (bob, dana, mallory, paula) = (
        srv.token("bob").await,
        srv.token("dana").await,
        srv.token("mallory").await,
        srv.token("paula").await,
    );
    refused(
        srv,
        &bob,
        &id,
        &rollbacks(&id),
        json!({"reason": "bad migration", "kind": "database"}),
        (422, "rollback-downtime-required"),
    )
    .await;
    refused(
        srv,
        &bob,
        &id,
        &rollbacks(&id),
        json!({"reason": "bad migration", "kind": "database", "downtime": "soon"}),
        (400, "invalid-body"),
    )
    .await;
    let b = post_ok(
        srv,
        &rollbacks(&id),
        &bob,
        json!({"reason": "bad migration", "kind": "database", "downtime": "3m"}),
    )
    .await;
    assert_eq!(
        b["request"]["status"], "pending",
        "the backend lead alone does not roll a database back: {b}"
    );
    assert_eq!(b["missing"], json!([["dba-lead"]]));
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    assert_eq!(e.db_runs(), 0);
    refused(
        srv,
        &mallory,
        &id,
        &approvals(&id, &rid),
        json!({}),
        (403, "rollback-role-not-held"),
    )
    .await;
    refused(
        srv,
        &bob,
        &id,
        &approvals(&id, &rid),
        json!({"role": "dba-lead"}),
        (403, "rollback-role-not-held"),
    )
    .await;
    let b = post_ok(srv, &approvals(&id, &rid), &dana, json!({})).await;
    assert_eq!(b["request"]["status"], "done", "{b}");
    assert_eq!(b["request"]["executor"], "dana");
    assert_eq!(b["request"]["downtime"], "3m");
    assert_eq!(
        e.db_runs(),
        1,
        "the policy's migration-rollback command ran"
    );
    assert_eq!(e.runs(&id), 0, "not the application action");
    assert!(
        std::fs::read_to_string(e.db_marker())
            .unwrap()
            .contains("database-rollback CR-21"),
    );
    // Above max_downtime (5m) the Product Owner approves too.
    let id = import(srv, &state("CR-22", 2, Status::Deployed)).await;
    let b = post_ok(
        srv,
        &rollbacks(&id),
        &bob,
        json!({"reason": "bad migration", "kind": "database", "downtime": "20m"}),
    )
    .await;
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["missing"], json!([["dba-lead", "product-owner"]]));
    let b = post_ok(srv, &approvals(&id, &rid), &dana, json!({})).await;
    assert_eq!(b["request"]["status"], "pending");
    assert_eq!(e.db_runs(), 1);
    let b = post_ok(srv, &approvals(&id, &rid), &paula, json!({})).await;
    assert_eq!(b["request"]["status"], "done");
    assert_eq!(e.db_runs(), 2);
}

both!(a_rollback_without_a_configured_action_is_refused);
async fn a_rollback_without_a_configured_action_is_refused(backend: Backend) {
    let e = env_with(backend, false).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-23", 2, Status::Deployed)).await;
    let bob = srv.token("bob").await;
    refused(
        srv,
        &bob,
        &id,
        &rollbacks(&id),
        json!({"reason": "x"}),
        (409, "rollback-action-not-configured"),
    )
    .await;
    // A change that is not deployed has nothing to roll back.
    let e2 = env(backend).await;
    let id = import(&e2.srv, &state("CR-24", 2, Status::Approved)).await;
    let bob = e2.srv.token("bob").await;
    refused(
        &e2.srv,
        &bob,
        &id,
        &rollbacks(&id),
        json!({"reason": "x"}),
        (409, "rollback-state-invalid"),
    )
    .await;
    refused(
        &e2.srv,
        &bob,
        &id,
        &rollbacks(&id),
        json!({"reason": " "}),
        (422, "rollback-reason-required"),
    )
    .await;
}

both!(the_post_mortem_is_due_within_24_hours_and_answers_the_three_questions);
async fn the_post_mortem_is_due_within_24_hours_and_answers_the_three_questions(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-25", 2, Status::Deployed)).await;
    let (bob, mallory) = (srv.token("bob").await, srv.token("mallory").await);
    let b = post_ok(srv, &rollbacks(&id), &bob, json!({"reason": "errors up"})).await;
    assert_eq!(
        b["request"]["status"], "done",
        "category 2: the backend lead alone"
    );
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    let overdue = |v: &Value| -> Vec<String> {
        v["overdue"][&id]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["code"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, o) = srv.get("/api/v1/overdue", &bob).await;
    assert!(overdue(&o).is_empty(), "{o}");
    srv.set_now(t("2026-03-11T11:00:01Z"));
    let (_, o) = srv.get("/api/v1/overdue", &bob).await;
    assert_eq!(overdue(&o), ["post-mortem-overdue"], "{o}");
    let pm = format!("/api/v1/changes/{id}/rollbacks/{rid}/post-mortem");
    refused(
        srv,
        &bob,
        &id,
        &pm,
        json!({"answers": ["yes", "yes"]}),
        (422, "post-mortem-incomplete"),
    )
    .await;
    refused(
        srv,
        &bob,
        &id,
        &pm,
        json!({"answers": ["yes", "", "yes"]}),
        (422, "post-mortem-incomplete"),
    )
    .await;
    refused(
        srv,
        &mallory,
        &id,
        &pm,
        json!({"answers": ["a", "b", "c"]}),
        (403, "post-mortem-owner-required"),
    )
    .await;
    let b = post_ok(
        srv,
        &pm,
        &bob,
        json!({"answers": ["No: the canary missed it; add a p95 trigger", "Yes", "Yes, 40 s"], "link": "https://wiki.example/pm/25"}),
    )
    .await;
    assert_eq!(
        b["request"]["post_mortem"]["answers"][2]["question"],
        "Was rollback plan adequate?"
    );
    let (_, o) = srv.get("/api/v1/overdue", &bob).await;
    assert!(overdue(&o).is_empty(), "{o}");
}

both!(rollback_testing_evidence_of_more_than_five_minutes_is_refused);
async fn rollback_testing_evidence_of_more_than_five_minutes_is_refused(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let mut s = state("CR-36", 3, Status::Approved);
    s.rollback.tests.clear();
    let id = import(srv, &s).await;
    let quinn = srv.token("quinn").await;
    let tests = format!("/api/v1/changes/{id}/rollback-tests");
    let decision = || async {
        let (st, d) = srv
            .get(
                &format!("/api/v1/changes/{id}/decision?at=2026-03-03T02:30:00Z"),
                &quinn,
            )
            .await;
        assert_eq!(st, 200, "{d}");
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["code"].as_str().unwrap().starts_with("rollback-test"))
            .map(|r| {
                (
                    r["code"].as_str().unwrap().to_string(),
                    r["denies"].as_bool().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        decision().await,
        [("rollback-test-missing".to_string(), true)]
    );
    let b = post_ok(
        srv,
        &tests,
        &quinn,
        json!({"environment": "staging", "duration": "6m", "health": "ok"}),
    )
    .await;
    assert_eq!(b["checklist"]["code"], "rollback-test-too-slow");
    assert_eq!(
        decision().await,
        [("rollback-test-too-slow".to_string(), true)]
    );
    post_ok(
        srv,
        &tests,
        &quinn,
        json!({"environment": "staging", "duration_seconds": 120, "health": "failed"}),
    )
    .await;
    assert_eq!(
        decision().await,
        [("rollback-test-unhealthy".to_string(), true)]
    );
    refused(
        srv,
        &quinn,
        &id,
        &tests,
        json!({"environment": "staging", "duration": "2m", "health": "maybe"}),
        (400, "invalid-body"),
    )
    .await;
    refused(
        srv,
        &quinn,
        &id,
        &tests,
        json!({"environment": " ", "duration": "2m", "health": "ok"}),
        (422, "rollback-test-invalid"),
    )
    .await;
    post_ok(srv, &tests, &quinn, json!({"environment": "staging", "duration": "4m 30s", "health": "ok", "evidence": "https://ci.example/rb/36"})).await;
    assert_eq!(
        decision().await,
        [("rollback-test-passed".to_string(), false)]
    );
}

both!(a_category_3_deploy_leaves_standby_and_daily_status_duties);
async fn a_category_3_deploy_leaves_standby_and_daily_status_duties(backend: Backend) {
    let e = env(backend).await;
    let srv = &e.srv;
    let id = import(srv, &state("CR-37", 3, Status::Deploying)).await;
    let (alice, sam, mallory) = (
        srv.token("alice").await,
        srv.token("sam").await,
        srv.token("mallory").await,
    );
    let b = post_ok(
        srv,
        &format!("/api/v1/changes/{id}/ops"),
        &alice,
        json!({"op": "transition", "event": "complete"}),
    )
    .await;
    let duties = b["duties"].as_array().unwrap();
    let ids: Vec<&str> = duties.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "standby",
            "status-update-1",
            "status-update-2",
            "status-update-3"
        ]
    );
    assert_eq!(
        duties[0]["owner"], "sam",
        "the SRE lead who signed off stands by"
    );
    assert_eq!(duties[0]["due_at"], "2026-03-10T15:00:00Z");
    assert_eq!(duties[1]["owner"], "alice");
    srv.set_now(t("2026-03-10T15:00:01Z"));
    let (_, o) = srv.get("/api/v1/overdue", &alice).await;
    assert_eq!(o["overdue"][&id][0]["code"], "duty-overdue", "{o}");
    assert_eq!(o["overdue"][&id][0]["details"]["duty"], "standby");
    let standby = format!("/api/v1/changes/{id}/duties/standby");
    refused(
        srv,
        &mallory,
        &id,
        &standby,
        json!({"note": "quiet"}),
        (403, "duty-owner-required"),
    )
    .await;
    refused(
        srv,
        &sam,
        &id,
        &format!("/api/v1/changes/{id}/duties/nope"),
        json!({"note": "x"}),
        (404, "duty-unknown"),
    )
    .await;
    post_ok(
        srv,
        &standby,
        &sam,
        json!({"note": "4 h on standby, no incident"}),
    )
    .await;
    refused(
        srv,
        &sam,
        &id,
        &standby,
        json!({"note": "again"}),
        (409, "duty-done"),
    )
    .await;
    post_ok(
        srv,
        &format!("/api/v1/changes/{id}/duties/status-update-1"),
        &alice,
        json!({"note": "day 1: error rate 0.1 %"}),
    )
    .await;
    let (_, o) = srv.get("/api/v1/overdue", &alice).await;
    assert!(o["overdue"].get(&id).is_none(), "{o}");
}

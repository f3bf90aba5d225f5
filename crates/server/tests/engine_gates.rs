//! Issue 14, "Rollouts bound to changes": changegate as the policy gate of Flagger and Argo
//! Rollouts, with the request shapes their documentation gives (Flagger's gate webhooks post
//! `{"name", "namespace", "phase", "checksum", "metadata"}` and read only the status: 2xx go,
//! anything else hold; an Argo Rollouts `web` metric reads a JSON body and evaluates
//! `successCondition: result.allowed == true`). On SQLite and PostgreSQL. The engine gates read:
//! asking stores nothing.

use changegate_gate::{ChangeState, Status};
use changegate_rollout::action::Action;
use changegate_server::token::Scope;
use changegate_testkit::both;
use changegate_testkit::gate::{SAT, TUE, facet, ready, set_status, t};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

async fn server(backend: Backend) -> TestServer {
    TestServer::start_configured(backend, people_policy(), t(TUE), None, None, |s| {
        s.rollback.application = Some(Action::parse("true"));
    })
    .await
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

/// An approved category-2 change, allowed on Tuesday and denied on Saturday.
fn approved(id: &str) -> ChangeState {
    let mut s = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]).1;
    s.change.id = id.into();
    s
}

/// Flagger's webhook payload (docs.flagger.app, "Webhooks").
fn hook(change: Option<&str>, token: Option<&str>) -> Value {
    let mut metadata = json!({"test": "all"});
    if let Some(c) = change {
        metadata["changegate_change"] = json!(c);
    }
    if let Some(t) = token {
        metadata["changegate_token"] = json!(t);
    }
    json!({
        "name": "chat-backend",
        "namespace": "production",
        "phase": "Progressing",
        "checksum": "85d557f47b",
        "metadata": metadata,
    })
}

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
}

both!(flagger_confirm_hooks_answer_the_gate);
async fn flagger_confirm_hooks_answer_the_gate(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &approved("CR-F1")).await;
    let ci = srv
        .integration_token("flagger", &[Scope::Deployments])
        .await;
    let size = audit_size(&srv).await;
    for h in ["confirm-rollout", "confirm-promotion"] {
        let path = format!("/api/v1/gates/flagger/{h}");
        let (st, b) = srv.post(&path, &ci, &hook(Some(&id), None)).await;
        assert_eq!(st, 200, "{h}: {b}");
        assert_eq!(b["allowed"], true);
        assert_eq!(b["reasons"][0]["code"], "gate-allows");
        assert_eq!(b["canary"]["checksum"], "85d557f47b");
        // The token in the metadata (Flagger's webhooks send no headers).
        let (st, _) = srv
            .req(
                reqwest::Method::POST,
                &path,
                None,
                Some(&hook(Some(&id), Some(&ci))),
            )
            .await;
        assert_eq!(st, 200, "{h} with the token in metadata");
    }
    // Saturday: the weekend freeze holds the rollout.
    srv.set_now(t(SAT));
    let (st, b) = srv
        .post(
            "/api/v1/gates/flagger/confirm-rollout",
            &ci,
            &hook(Some(&id), None),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(b["allowed"], false);
    let codes: Vec<&str> = b["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes[0], "gate-denies");
    assert!(
        codes.contains(&"freeze-active") || codes.contains(&"window-closed"),
        "{codes:?}"
    );
    assert_eq!(audit_size(&srv).await, size, "asking stores nothing");
}

both!(flagger_hooks_need_a_deployments_token_and_a_change);
async fn flagger_hooks_need_a_deployments_token_and_a_change(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &approved("CR-F2")).await;
    let path = "/api/v1/gates/flagger/confirm-rollout";
    let (st, b) = srv
        .req(
            reqwest::Method::POST,
            path,
            None,
            Some(&hook(Some(&id), None)),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (401, Some("unauthorized")));
    let bob = srv.token("bob").await;
    let (st, b) = srv.post(path, &bob, &hook(Some(&id), None)).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("scope-required")),
        "{b}"
    );
    let ci = srv.integration_token("ci", &[Scope::CiEvidence]).await;
    let (st, b) = srv.post(path, &ci, &hook(Some(&id), None)).await;
    assert_eq!((st, b["code"].as_str()), (403, Some("scope-required")));
    let flagger = srv
        .integration_token("flagger", &[Scope::Deployments])
        .await;
    let (st, b) = srv.post(path, &flagger, &hook(None, None)).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-body")), "{b}");
    assert_eq!(b["location"], "body `metadata.changegate_change`");
    let (st, b) = srv.post(path, &flagger, &hook(Some("CR-NOPE"), None)).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not-found")));
    let (st, b) = srv
        .post(path, &flagger, &json!({"name": "x", "metadata": {}}))
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-json")), "{b}");
}

both!(flagger_rollback_and_promotion_follow_the_rollback_request);
async fn flagger_rollback_and_promotion_follow_the_rollback_request(backend: Backend) {
    let srv = server(backend).await;
    let mut s = ready(3, vec![facet("schema-column-dropped", &[], 3)]).1;
    s.change.id = "CR-F3".into();
    set_status(&mut s, Status::Deploying, t("2026-03-03T02:10:00Z"));
    let id = import(&srv, &s).await;
    let flagger = srv
        .integration_token("flagger", &[Scope::Deployments])
        .await;
    let (oscar, bob, sam) = (
        srv.token("oscar").await,
        srv.token("bob").await,
        srv.token("sam").await,
    );
    let rollback = || async {
        srv.post(
            "/api/v1/gates/flagger/rollback",
            &flagger,
            &hook(Some(&id), None),
        )
        .await
    };
    let (st, b) = rollback().await;
    assert_eq!(
        (st, b["reasons"][0]["code"].as_str()),
        (403, Some("rollback-not-authorised"))
    );
    // A pending rollback request holds the promotion, and does not yet roll back.
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/rollbacks"),
            &oscar,
            &json!({"reason": "p95"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    srv.set_now(t("2026-03-03T03:00:00Z"));
    let (st, b) = srv
        .post(
            "/api/v1/gates/flagger/confirm-promotion",
            &flagger,
            &hook(Some(&id), None),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    assert!(
        b["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "rollback-pending"),
        "{b}"
    );
    let (st, _) = rollback().await;
    assert_eq!(st, 403);
    let (_, a) = srv
        .get(&format!("/api/v1/gates/argo/changes/{id}"), &flagger)
        .await;
    assert_eq!(
        (a["allowed"].as_bool(), a["rollback"].as_bool()),
        (Some(false), Some(false)),
        "{a}"
    );
    // Both leads approve: the rollback is authorised; Flagger's rollback hook now says go.
    for tok in [&bob, &sam] {
        let (st, b) = srv
            .post(
                &format!("/api/v1/changes/{id}/rollbacks/{rid}/approvals"),
                tok,
                &json!({}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
    let (st, b) = rollback().await;
    assert_eq!(
        (st, b["reasons"][0]["code"].as_str()),
        (200, Some("rollback-authorised")),
        "{b}"
    );
    let (_, a) = srv
        .get(&format!("/api/v1/gates/argo/changes/{id}"), &flagger)
        .await;
    assert_eq!(
        (a["allowed"].as_bool(), a["rollback"].as_bool()),
        (Some(false), Some(true)),
        "{a}"
    );
}

both!(argo_web_metric_reads_the_decision);
async fn argo_web_metric_reads_the_decision(backend: Backend) {
    let srv = server(backend).await;
    let id = import(&srv, &approved("CR-A1")).await;
    let argo = srv
        .integration_token("argo-rollouts", &[Scope::Deployments])
        .await;
    let path = format!("/api/v1/gates/argo/changes/{id}");
    let (st, a) = srv.get(&path, &argo).await;
    assert_eq!(st, 200, "{a}");
    // What `successCondition: result.allowed == true` evaluates.
    assert_eq!(a["allowed"], true);
    assert_eq!(a["rollback"], false);
    assert_eq!(a["status"], "approved");
    srv.set_now(t(SAT));
    let (st, a) = srv.get(&path, &argo).await;
    assert_eq!((st, a["allowed"].as_bool()), (200, Some(false)), "{a}");
    let bob = srv.token("bob").await;
    let (st, b) = srv.get(&path, &bob).await;
    assert_eq!((st, b["code"].as_str()), (403, Some("scope-required")));
    let (st, _) = srv.get("/api/v1/gates/argo/changes/CR-NOPE", &argo).await;
    assert_eq!(st, 404);
}

//! The HTTP API's contract: authentication, authorisation, bad input (4xx with what and where,
//! nothing stored), idempotency, concurrency, and the OpenAPI document matching the routes.

use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use reqwest::Method;
use serde_json::{Value, json};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn cat2() -> Value {
    json!({
        "repository": "acme/chat", "title": "Add pins endpoint", "base_commit": "a1", "head_commit": "b1",
        "authors": ["alice"], "last_pusher": "alice",
        "classification": {"category": 2, "facets": [{"kind": "api-endpoint-added", "roles": ["backend-lead"], "category": 2}], "required_roles": ["backend-lead"]},
        "submit": true,
    })
}

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start(backend, people_policy(), at("2026-03-10T10:30:00Z")).await
}

both!(health_needs_no_token_everything_else_does);
async fn health_needs_no_token_everything_else_does(backend: Backend) {
    let srv = server(backend).await;
    let (st, body) = srv.req(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));
    let (st, body) = srv
        .req(Method::GET, "/api/v1/health/database", None, None)
        .await;
    let want = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!((st, body["backend"].as_str()), (200, Some(want)));
    let (st, _) = srv
        .req(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(st, 200);
    for (method, path) in [
        (Method::GET, "/api/v1/changes"),
        (Method::POST, "/api/v1/changes"),
        (Method::GET, "/api/v1/incidents"),
    ] {
        let (st, body) = srv.req(method.clone(), path, None, Some(&json!({}))).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
    }
    // A token of the right shape but a wrong secret, and garbage.
    let good = srv.token("bob").await;
    let (id, _) = good.strip_prefix("cg_").unwrap().split_once('_').unwrap();
    let forged = format!("cg_{id}_{}", "0".repeat(64));
    for bad in [forged.as_str(), "cg_nope", "Bearer", ""] {
        let (st, _) = srv.get("/api/v1/changes", bad).await;
        assert_eq!(st, 401, "{bad}");
    }
    let (st, _) = srv.get("/api/v1/changes", &good).await;
    assert_eq!(st, 200);
}

both!(bad_input_is_a_4xx_that_says_what_and_where_and_stores_nothing);
async fn bad_input_is_a_4xx_that_says_what_and_where_and_stores_nothing(backend: Backend) {
    let srv = server(backend).await;
    let admin = srv.admin.clone();
    let before = audit_size(&srv).await;
    // Not JSON.
    let resp = srv
        .http
        .post(format!("{}/api/v1/changes", srv.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"repository\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid-json");
    assert!(
        body["location"].as_str().unwrap().contains("line 1"),
        "{body}"
    );
    // Wrong content type.
    let resp = srv
        .http
        .post(format!("{}/api/v1/changes", srv.base))
        .bearer_auth(&admin)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Unknown field, wrong type: the JSON path is named.
    let mut body = cat2();
    body["colour"] = json!("red");
    let (st, b) = srv.post("/api/v1/changes", &admin, &body).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-json")));
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{b}"
    );
    let mut body = cat2();
    body["classification"]["category"] = json!("two");
    let (st, b) = srv.post("/api/v1/changes", &admin, &body).await;
    assert_eq!(st, 400);
    assert!(
        b["location"]
            .as_str()
            .unwrap()
            .contains("classification.category"),
        "{b}"
    );
    // Unknown role and category.
    let mut body = cat2();
    body["classification"]["facets"][0]["roles"] = json!(["backend-lea"]);
    let (st, b) = srv.post("/api/v1/changes", &admin, &body).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("unknown-role")));
    assert_eq!(b["location"], "body `classification.facets[0].roles[0]`");
    let mut body = cat2();
    body["classification"]["category"] = json!(9);
    let (st, b) = srv.post("/api/v1/changes", &admin, &body).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("unknown-category")));
    // Oversized body. The server answers before reading it all and closes that connection, so
    // the request goes on a connection of its own: reusing it raced the close (a flaky
    // "IncompleteMessage" on the next request).
    let mut body = cat2();
    body["title"] = json!("x".repeat(changegate_server::BODY_LIMIT + 10));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/changes", srv.base))
        .bearer_auth(&admin)
        .header(reqwest::header::CONNECTION, "close")
        .json(&body)
        .send()
        .await;
    // The server may answer 413 and close while the body is still being sent: either the
    // answer or a connection closed early is a refusal; nothing may be stored either way.
    if let Ok(resp) = resp {
        let st = resp.status().as_u16();
        assert!(st == 400 || st == 413, "{st}");
    }
    // Bad id.
    let mut body = cat2();
    body["id"] = json!("../etc/passwd");
    let (st, b) = srv.post("/api/v1/changes", &admin, &body).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-id")));
    assert_eq!(
        audit_size(&srv).await,
        before,
        "nothing may be stored by refused requests"
    );
    let (_, list) = srv.get("/api/v1/changes", &admin).await;
    assert_eq!(list["changes"].as_array().unwrap().len(), 0);

    // Invalid transitions and refused approvals leave the change and the log untouched.
    let (st, created) = srv.post("/api/v1/changes", &admin, &cat2()).await;
    assert_eq!(st, 201);
    let id = created["id"].as_str().unwrap().to_string();
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &admin,
            &json!({"op": "transition", "event": "complete"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (409, Some("state-transition-invalid")),
        "{b}"
    );
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &admin,
            &json!({"op": "transition", "event": "approve"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (422, Some("approval-missing")),
        "{b}"
    );
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/decision"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(st, 405, "{b}");
    let (st, b) = srv
        .get(
            &format!("/api/v1/changes/{id}/decision?at=yesterday"),
            &admin,
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-time")));
    let (st, _) = srv.get("/api/v1/changes/nope", &admin).await;
    assert_eq!(st, 404);
    assert_eq!(audit_size(&srv).await, size);
    let (_, after) = srv.get(&format!("/api/v1/changes/{id}"), &admin).await;
    assert_eq!(after["version"], 1);
}

both!(people_act_only_as_themselves_and_the_author_cannot_approve);
async fn people_act_only_as_themselves_and_the_author_cannot_approve(backend: Backend) {
    let srv = server(backend).await;
    let alice = srv.token("alice").await;
    let bob = srv.token("bob").await;
    // A person token may not send a classification (issue 13): the admin records alice's change.
    let (st, created) = srv.post("/api/v1/changes", &srv.admin, &cat2()).await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    // Alice may not approve for bob.
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/approvals"),
            &alice,
            &json!({"role": "backend-lead", "person": "bob"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("impersonation-forbidden"))
    );
    // Alice does not hold backend-lead.
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/approvals"),
            &alice,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    // Bob does; the approval is recorded under bob, with an audit event.
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/approvals"),
            &bob,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["approvals"][0]["person"], "bob");
    assert_eq!(audit_size(&srv).await, size + 1);
    // Twice is refused, not doubled.
    let (st, _) = srv
        .post(
            &format!("/api/v1/changes/{id}/approvals"),
            &bob,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert_eq!(st, 422);
    // Non-admins cannot change teams or open incidents without an emergency role.
    let (st, b) = srv
        .put("/api/v1/teams/qa", &alice, &json!({"members": ["alice"]}))
        .await;
    assert_eq!((st, b["code"].as_str()), (403, Some("admin-required")));
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &alice,
            &json!({"id": "INC-1", "severity": "P1"}),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (403, Some("incident-forbidden")));
    let oscar = srv.token("oscar").await; // on-call engineer
    let (st, _) = srv
        .post(
            "/api/v1/incidents",
            &oscar,
            &json!({"id": "INC-1", "severity": "P1"}),
        )
        .await;
    assert_eq!(st, 201);
}

both!(idempotency_key_returns_the_first_change);
async fn idempotency_key_returns_the_first_change(backend: Backend) {
    let srv = server(backend).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp = srv
            .http
            .post(format!("{}/api/v1/changes", srv.base))
            .bearer_auth(&srv.admin)
            .header("Idempotency-Key", "pr-42-b1")
            .json(&cat2())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let v: Value = resp.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let (_, list) = srv.get("/api/v1/changes", &srv.admin).await;
    assert_eq!(list["changes"].as_array().unwrap().len(), 1);
}

async fn concurrent_approvals(backend: Backend) {
    let srv = server(backend).await;
    let (_, created) = srv.post("/api/v1/changes", &srv.admin, &cat2()).await;
    let id = created["id"].as_str().unwrap().to_string();
    let bob = srv.token("bob").await;
    let quinn = srv.token("quinn").await;
    // 16 concurrent requests: bob and quinn each approve 8 times at once.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (tok, role) = if i % 2 == 0 {
            (bob.clone(), "backend-lead")
        } else {
            (quinn.clone(), "qa")
        };
        let http = srv.http.clone();
        let url = format!("{}/api/v1/changes/{id}/approvals", srv.base);
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(tok)
                .json(&json!({"role": role}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 2, "{codes:?}");
    assert!(
        codes.iter().all(|c| *c == 201 || *c == 422 || *c == 409),
        "{codes:?}"
    );
    let (_, after) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    let approvals = after["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert_eq!(
        after["version"], 3,
        "one create and exactly two successful writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_approvals_never_double_or_lose_sqlite() {
    concurrent_approvals(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_approvals_never_double_or_lose_postgres() {
    concurrent_approvals(Backend::Postgres).await;
}

#[test]
fn openapi_document_lists_exactly_the_routes() {
    let doc: Value = serde_json::from_str(changegate_server::OPENAPI).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = changegate_server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes);
    assert_eq!(doc["openapi"], "3.1.0");
}

/// A repository at `repo` whose one change moves express from 4.19.2 to `to`: (base, head).
fn express_repo(repo: &std::path::Path, to: &str) -> (String, String) {
    let r = GitRepo::init_at(repo);
    let manifest = |v: &str| format!(r#"{{ "dependencies": {{ "express": "{v}" }} }}"#);
    r.write("package.json", &manifest("4.19.2"));
    let base = r.commit("base");
    r.write("package.json", &manifest(to));
    (base, r.commit("bump express"))
}

both!(the_server_classifies_repositories_under_its_root_only);
async fn the_server_classifies_repositories_under_its_root_only(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let (base, head) = express_repo(&root.path().join("svc"), "4.21.0");
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Some(root.path().to_path_buf()),
        None,
    )
    .await;
    let body = json!({"repository": "svc", "base_commit": base, "head_commit": head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["change"]["classification"]["category"], 2);
    assert_eq!(
        b["change"]["classification"]["facets"][0]["kind"],
        "dep-minor"
    );
    for outside in ["../svc", "/etc", "nope"] {
        let body = json!({"repository": outside, "base_commit": base, "head_commit": head});
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (400, Some("repository-outside-root")),
            "{outside}: {b}"
        );
    }
    let body = json!({"repository": "svc", "base_commit": "0000000", "head_commit": head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("classify-failed")),
        "{b}"
    );
    // Without a repo root the classification is required.
    let plain = server(backend).await;
    let (st, b) = plain
        .post(
            "/api/v1/changes",
            &plain.admin,
            &json!({"repository": "svc", "base_commit": base, "head_commit": head}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("classification-required"))
    );
}

/// A stand-in for GitHub's REST API (it cannot run offline): a local HTTP server that answers the
/// pull-request endpoint the real client code calls, and records the Authorization header.
async fn fake_github(
    base: String,
    head: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::get;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/repos/{owner}/{repo}/pulls/{n}",
        get(move |axum::extract::Path((owner, repo, n)): axum::extract::Path<(String, String, u64)>, headers: axum::http::HeaderMap| {
            let seen = seen2.clone();
            let (base, head) = (base.clone(), head.clone());
            async move {
                seen.lock().unwrap().push(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string());
                if owner != "acme" || repo != "svc" || n != 7 {
                    return (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"})));
                }
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({
                        "number": 7, "title": "Bump express", "html_url": "https://github.com/acme/svc/pull/7",
                        "user": {"login": "alice"}, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "bump"},
                    })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

both!(a_change_is_created_from_a_pull_request);
async fn a_change_is_created_from_a_pull_request(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let (base, head) = express_repo(&root.path().join("acme/svc"), "5.0.0");
    let (api, seen) = fake_github(base.clone(), head.clone()).await;
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Some(root.path().to_path_buf()),
        Some(api),
    )
    .await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"pr": "https://github.com/acme/svc/pull/7", "submit": true}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let c = &b["change"];
    assert_eq!(
        (
            c["repository"].as_str(),
            c["base_commit"].as_str(),
            c["head_commit"].as_str()
        ),
        (Some("acme/svc"), Some(base.as_str()), Some(head.as_str()))
    );
    assert_eq!(c["pr_link"], "https://github.com/acme/svc/pull/7");
    // The pull request's author (GitHub) and the commits' author and committer (git).
    assert_eq!(c["authors"], json!(["alice", "dev@example.com"]));
    assert_eq!(c["title"], "Bump express");
    assert_eq!(
        c["classification"]["category"], 3,
        "express 4 -> 5 is a major upgrade: {c}"
    );
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer ghp_test"]);
    // Unknown PR, malformed reference, missing fields without a PR.
    let (st, b) = srv
        .post("/api/v1/changes", &srv.admin, &json!({"pr": "acme/svc#8"}))
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("pr-not-found")), "{b}");
    let (st, b) = srv
        .post("/api/v1/changes", &srv.admin, &json!({"pr": "acme#8"}))
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-pr")), "{b}");
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": "acme/svc"}),
        )
        .await;
    assert_eq!(
        (st, b["location"].as_str()),
        (400, Some("body `base_commit`")),
        "{b}"
    );
}

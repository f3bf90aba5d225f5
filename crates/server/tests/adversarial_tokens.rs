//! Attacks on the token layer, each on SQLite and PostgreSQL: a revoked or expired token is
//! refused at once with its own code and writes nothing; a person token cannot issue, list or
//! revoke others' tokens; malformed names, unknown scopes and bad expiries are refused with their
//! codes and store nothing; an integration token never acts as the person it is named after; the
//! `Bearer` scheme is read in any case; a listing never shows a secret or its digest.

use changegate_server::token::{Scope, Subject, TokenSpec};
use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use reqwest::Method;
use serde_json::{Value, json};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-03-10T10:30:00Z";

async fn server(backend: Backend) -> TestServer {
    TestServer::start(backend, people_policy(), at(NOW)).await
}

fn cat2(id: &str) -> Value {
    json!({
        "id": id, "repository": "acme/chat", "title": "Add pins endpoint", "base_commit": "a1", "head_commit": "b1",
        "authors": ["alice"], "last_pusher": "alice",
        "classification": {"category": 2, "facets": [{"kind": "api-endpoint-added", "roles": ["backend-lead"], "category": 2}], "required_roles": ["backend-lead"]},
        "submit": true,
    })
}

fn id_of(token: &str) -> String {
    changegate_server::token::parse(token)
        .unwrap()
        .0
        .to_string()
}

/// What a refused request must leave as it was: the audit log, the changes and the tokens.
async fn stored(srv: &TestServer) -> (u64, usize, Vec<String>) {
    let size = srv.db.store().head().await.unwrap().size;
    let changes = srv.db.list_changes().await.unwrap().len();
    let tokens = srv
        .db
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("{}:{}:{:?}", t.id, t.name, t.revoked_at))
        .collect();
    (size, changes, tokens)
}

async fn req_with(srv: &TestServer, method: Method, path: &str, auth: &str) -> (u16, Value) {
    let resp = srv
        .http
        .request(method, format!("{}{path}", srv.base))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

both!(a_revoked_token_is_refused_on_the_next_request);
async fn a_revoked_token_is_refused_on_the_next_request(backend: Backend) {
    let srv = server(backend).await;
    let bob = srv.token("bob").await;
    // Used once, so a lookup cache would hold it now.
    let (st, _) = srv.get("/api/v1/changes", &bob).await;
    assert_eq!(st, 200);
    // Revoked behind the server's back (what `changegate token revoke` on the host does).
    srv.db
        .revoke_token(&id_of(&bob), "changegate")
        .await
        .unwrap();
    let before = stored(&srv).await;
    let (st, body) = srv.get("/api/v1/changes", &bob).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("token-revoked")),
        "{body}"
    );
    let (st, body) = srv.post("/api/v1/changes", &bob, &cat2("chg-r")).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("token-revoked")),
        "{body}"
    );
    assert_eq!(stored(&srv).await, before);
    // Through the API, by an admin: the same, at once.
    let alice = srv.token("alice").await;
    let (st, _) = srv.get("/api/v1/changes", &alice).await;
    assert_eq!(st, 200);
    let (st, body) = srv
        .req(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", id_of(&alice)),
            Some(&srv.admin),
            None,
        )
        .await;
    assert_eq!((st, body["revoked"].as_bool()), (200, Some(true)), "{body}");
    let before = stored(&srv).await;
    let (st, body) = srv.post("/api/v1/changes", &alice, &cat2("chg-a")).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("token-revoked")),
        "{body}"
    );
    assert_eq!(stored(&srv).await, before);
    // Revoking twice writes nothing more; an unknown id is a 404.
    let (st, _) = srv
        .req(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", id_of(&alice)),
            Some(&srv.admin),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = srv
        .req(
            Method::DELETE,
            "/api/v1/tokens/ffffffffffffffff",
            Some(&srv.admin),
            None,
        )
        .await;
    assert_eq!((st, body["code"].as_str()), (404, Some("not-found")));
    assert_eq!(stored(&srv).await, before);
    // A wrong secret for a revoked id says only `unauthorized`.
    let forged = format!("cg_{}_{}", id_of(&bob), "0".repeat(64));
    let (st, body) = srv.get("/api/v1/changes", &forged).await;
    assert_eq!((st, body["code"].as_str()), (401, Some("unauthorized")));
}

both!(an_expired_token_is_refused_by_the_servers_clock);
async fn an_expired_token_is_refused_by_the_servers_clock(backend: Backend) {
    let srv = server(backend).await;
    let tok = srv
        .issue(&TokenSpec {
            subject: Subject::Person("bob".into()),
            expires_at: Some(at("2026-03-10T11:30:00Z")),
        })
        .await;
    let (st, _) = srv.get("/api/v1/changes", &tok).await;
    assert_eq!(st, 200);
    srv.set_now(at("2026-03-10T11:30:00Z"));
    let before = stored(&srv).await;
    let (st, body) = srv.post("/api/v1/changes", &tok, &cat2("chg-2")).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("token-expired")),
        "{body}"
    );
    let (st, body) = srv.get("/api/v1/changes", &tok).await;
    assert_eq!((st, body["code"].as_str()), (401, Some("token-expired")));
    assert_eq!(stored(&srv).await, before);
    // The admin token (no expiry) still works.
    let (st, _) = srv.get("/api/v1/changes", &srv.admin).await;
    assert_eq!(st, 200);
}

both!(a_person_token_cannot_issue_list_or_revoke_others_tokens);
async fn a_person_token_cannot_issue_list_or_revoke_others_tokens(backend: Backend) {
    let srv = server(backend).await;
    let bob = srv.token("bob").await;
    let alice = srv.token("alice").await;
    let before = stored(&srv).await;
    for body in [
        json!({"person": "bob", "admin": true}),
        json!({"person": "mallory"}),
        json!({"integration": "ci", "scopes": ["classify"]}),
    ] {
        let (st, resp) = srv.post("/api/v1/tokens", &bob, &body).await;
        assert_eq!(
            (st, resp["code"].as_str()),
            (403, Some("admin-required")),
            "{body}"
        );
    }
    let (st, resp) = srv.get("/api/v1/tokens", &bob).await;
    assert_eq!((st, resp["code"].as_str()), (403, Some("admin-required")));
    for victim in [&alice, &srv.admin] {
        let (st, resp) = srv
            .req(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", id_of(victim)),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!((st, resp["code"].as_str()), (403, Some("admin-required")));
    }
    assert_eq!(stored(&srv).await, before);
    for t in [&alice, &srv.admin] {
        assert_eq!(srv.get("/api/v1/changes", t).await.0, 200);
    }
    // Their own leaked token, though, a person may revoke.
    let (st, _) = srv
        .req(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", id_of(&bob)),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(srv.get("/api/v1/changes", &bob).await.0, 401);
}

both!(malformed_names_scopes_and_expiries_are_refused);
async fn malformed_names_scopes_and_expiries_are_refused(backend: Backend) {
    let srv = server(backend).await;
    let before = stored(&srv).await;
    let cases = [
        (json!({"person": ""}), "invalid-person-name"),
        (json!({"person": "   "}), "invalid-person-name"),
        (json!({"person": "Alice"}), "invalid-person-name"),
        (json!({"person": "team:sre"}), "invalid-person-name"),
        (json!({"person": "bob smith"}), "invalid-person-name"),
        // NUL is refused before the name is read, like in every body.
        (json!({"person": "bob\u{0}"}), "nul-character"),
        (json!({"person": "-bob"}), "invalid-person-name"),
        (json!({"person": "x".repeat(65)}), "invalid-person-name"),
        (json!({"person": "", "admin": true}), "invalid-person-name"),
        (
            json!({"integration": "", "scopes": ["classify"]}),
            "invalid-integration-name",
        ),
        (
            json!({"integration": "integration:ci", "scopes": ["classify"]}),
            "invalid-integration-name",
        ),
        (
            json!({"integration": "ci", "scopes": ["root"]}),
            "unknown-scope",
        ),
        (json!({"integration": "ci"}), "invalid-scopes"),
        (
            json!({"person": "bob", "scopes": ["classify"]}),
            "invalid-scopes",
        ),
        (
            json!({"person": "bob", "expires_at": "2026-03-10T10:00:00Z"}),
            "invalid-expiry",
        ),
        (
            json!({"person": "bob", "expires_at": "tomorrow"}),
            "invalid-expiry",
        ),
        (
            json!({"person": "bob", "expires_in": "90y"}),
            "invalid-expiry",
        ),
        (
            json!({"person": "bob", "expires_in": "0d"}),
            "invalid-expiry",
        ),
        (
            json!({"person": "bob", "expires_in": "1d", "expires_at": "2027-01-01T00:00:00Z"}),
            "invalid-body",
        ),
        (
            json!({"person": "bob", "integration": "ci", "scopes": ["classify"]}),
            "invalid-body",
        ),
        (
            json!({"integration": "ci", "scopes": ["classify"], "admin": true}),
            "invalid-body",
        ),
        (json!({}), "invalid-body"),
    ];
    for (body, code) in cases {
        let (st, resp) = srv.post("/api/v1/tokens", &srv.admin, &body).await;
        assert_eq!(
            (st, resp["code"].as_str()),
            (400, Some(code)),
            "{body}: {resp}"
        );
    }
    assert_eq!(stored(&srv).await, before);
    // And the valid ones are issued.
    let (st, resp) = srv
        .post(
            "/api/v1/tokens",
            &srv.admin,
            &json!({"person": "bob.smith-2", "expires_in": "90d"}),
        )
        .await;
    assert_eq!(st, 201, "{resp}");
    assert_eq!(resp["expires_at"], "2026-06-08T10:30:00Z");
    let tok = resp["token"].as_str().unwrap();
    assert_eq!(srv.get("/api/v1/changes", tok).await.0, 200);
}

both!(the_bearer_scheme_is_read_in_any_case);
async fn the_bearer_scheme_is_read_in_any_case(backend: Backend) {
    let srv = server(backend).await;
    let bob = srv.token("bob").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (st, _) = req_with(
            &srv,
            Method::GET,
            "/api/v1/changes",
            &format!("{scheme} {bob}"),
        )
        .await;
        assert_eq!(st, 200, "{scheme}");
    }
    for auth in [format!("Basic {bob}"), bob.clone(), format!("Bearer{bob}")] {
        let (st, body) = req_with(&srv, Method::GET, "/api/v1/changes", &auth).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (401, Some("unauthorized")),
            "{auth}"
        );
    }
}

both!(an_integration_token_never_acts_as_the_person_it_is_named_after);
async fn an_integration_token_never_acts_as_the_person_it_is_named_after(backend: Backend) {
    let srv = server(backend).await;
    let alice = srv.token("alice").await;
    // The change is recorded by the admin token, which may vouch for its classification (a person
    // token may not: classification-not-allowed).
    let (st, _) = srv
        .post("/api/v1/changes", &srv.admin, &cat2("chg-1"))
        .await;
    assert_eq!(st, 201);
    // An integration named like bob, the backend lead.
    let (st, issued) = srv
        .post(
            "/api/v1/tokens",
            &srv.admin,
            &json!({"integration": "bob", "scopes": ["ci-evidence", "classify"]}),
        )
        .await;
    assert_eq!(st, 201, "{issued}");
    assert_eq!(issued["kind"], "integration");
    assert_eq!(issued["scopes"], json!(["ci-evidence", "classify"]));
    let ci = issued["token"].as_str().unwrap().to_string();
    let before = stored(&srv).await;
    let (st, body) = srv
        .post(
            "/api/v1/changes/chg-1/approvals",
            &ci,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert!(
        st == 403 || st == 422,
        "an integration approved as bob: {st} {body}"
    );
    let (st, body) = srv
        .post(
            "/api/v1/changes/chg-1/approvals",
            &ci,
            &json!({"role": "backend-lead", "person": "bob"}),
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (403, Some("impersonation-forbidden")),
        "{body}"
    );
    let (_, change) = srv.get("/api/v1/changes/chg-1", &srv.admin).await;
    assert_eq!(change["version"], 1, "{change}");
    assert_eq!(stored(&srv).await, before);
    // The listing: kinds, names and scopes, never a secret or its digest.
    let (st, list) = srv.get("/api/v1/tokens", &srv.admin).await;
    assert_eq!(st, 200);
    let text = list.to_string();
    let rows = list["tokens"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    let ci_row = rows.iter().find(|r| r["id"] == id_of(&ci)).unwrap();
    assert_eq!(
        (&ci_row["kind"], &ci_row["name"]),
        (&json!("integration"), &json!("bob"))
    );
    assert_eq!(rows[0]["kind"], "admin");
    for t in [&ci, &alice, &srv.admin] {
        let (_, secret) = changegate_server::token::parse(t).unwrap();
        assert!(!text.contains(secret), "secret listed: {text}");
        assert!(
            !text.contains(&changegate_server::token::digest(secret)),
            "digest listed: {text}"
        );
    }
    // The typed caller: the scopes it was given, no others.
    let row = srv.db.token(&id_of(&ci)).await.unwrap().unwrap();
    let caller = changegate_server::extract::Caller::from_row(&id_of(&ci), row);
    assert_eq!(caller.person, "integration:bob");
    assert_eq!(caller.integration(), Some("bob"));
    assert!(caller.has_scope(Scope::Classify) && caller.has_scope(Scope::CiEvidence));
    assert!(!caller.has_scope(Scope::Incidents) && !caller.is_admin());
}

//! Issue 13, "no 500 on bad input": input an attacker (or a broken client) sends is refused with
//! a 4xx or 502 that carries the JSON error body and a code, and nothing is stored; on SQLite and
//! PostgreSQL alike. Same-id creates race to the database's unique key (one 201, the rest 409);
//! NUL characters are refused wherever they come from; the router's own rejections (405, 413,
//! undecodable path and query) are JSON; an unreachable GitHub is a 502 naming GitHub; and
//! `--repo-root` never opens a repository above the directory named, nor says where the root is.

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
    })
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start(backend, people_policy(), at("2026-03-10T10:30:00Z")).await
}

/// What the server has stored: the audit log's size and the number of changes.
async fn stored(srv: &TestServer) -> (u64, usize) {
    let size = srv.db.store().head().await.unwrap().size;
    let (st, list) = srv.get("/api/v1/changes", &srv.admin).await;
    assert_eq!(st, 200, "{list}");
    (size, list["changes"].as_array().unwrap().len())
}

/// A raw request: (status, headers, body as JSON; a body that is not JSON fails the test).
async fn raw(
    srv: &TestServer,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = srv
        .http
        .request(method.clone(), format!("{}{path}", srv.base))
        .bearer_auth(&srv.admin);
    if let Some((content_type, bytes)) = body {
        r = r.header("content-type", content_type).body(bytes);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status} body is not JSON ({e}): {text:?}"));
    (status, headers, body)
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (want_status, Some(want_code)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

both!(concurrent_creates_of_one_id_are_one_201_and_409s);
async fn concurrent_creates_of_one_id_are_one_201_and_409s(backend: Backend) {
    let srv = std::sync::Arc::new(server(backend).await);
    let before = stored(&srv).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let srv = srv.clone();
        tasks.spawn(async move {
            let mut body = cat2();
            body["id"] = json!("chg-race");
            body["title"] = json!(format!("creator {i}"));
            srv.post("/api/v1/changes", &srv.admin, &body).await
        });
    }
    let (mut created, mut exists) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (st, b) = r.unwrap();
        match st {
            201 => created += 1,
            409 => {
                assert_eq!(b["code"], "change-exists", "{b}");
                exists += 1;
            }
            other => panic!("a create answered {other}: {b}"),
        }
    }
    assert_eq!((created, exists), (1, 15));
    let (size, changes) = stored(&srv).await;
    assert_eq!(
        (size, changes),
        (before.0 + 1, before.1 + 1),
        "exactly one change and its one event are stored"
    );
    let (st, c) = srv.get("/api/v1/changes/chg-race", &srv.admin).await;
    assert_eq!((st, c["version"].as_i64()), (200, Some(1)), "{c}");
}

both!(nul_characters_are_refused_with_where_they_are_and_nothing_is_stored);
async fn nul_characters_are_refused_with_where_they_are_and_nothing_is_stored(backend: Backend) {
    let srv = server(backend).await;
    let before = stored(&srv).await;
    // In a top-level string, a nested one, a list and an object key of a create.
    let mut title = cat2();
    title["title"] = json!("drop\u{0}table");
    let mut facet = cat2();
    facet["classification"]["facets"][0]["kind"] = json!("api-endpoint-added\u{0}");
    let mut author = cat2();
    author["authors"] = json!(["alice", "\u{0}mallory"]);
    for (body, location) in [
        (title, "body `title`"),
        (facet, "body `classification.facets[0].kind`"),
        (author, "body `authors[1]`"),
    ] {
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_error(st, &b, 400, "nul-character");
        assert_eq!(b["location"], location, "{b}");
    }
    // Every route's body goes through the same extractor.
    let (st, b) = srv
        .put(
            "/api/v1/teams/payments",
            &srv.admin,
            &json!({"members": ["alice", "bo\u{0}b"]}),
        )
        .await;
    assert_error(st, &b, 400, "nul-character");
    assert_eq!(b["location"], "body `members[1]`", "{b}");
    // Path segments and query strings.
    for (method, path, location) in [
        (Method::GET, "/api/v1/changes/chg%00x", "path"),
        (Method::PUT, "/api/v1/teams/pay%00ments", "path"),
        (
            Method::GET,
            "/api/v1/changes/chg-1/decision?at=2026%00",
            "query",
        ),
    ] {
        let body = (method == Method::PUT).then(|| json!({"members": ["alice"]}));
        let (st, b) = srv
            .req(method.clone(), path, Some(&srv.admin), body.as_ref())
            .await;
        assert_error(st, &b, 400, "nul-character");
        assert_eq!(b["location"], location, "{method} {path}: {b}");
    }
    assert_eq!(stored(&srv).await, before, "nothing may be stored");
}

both!(the_routers_own_rejections_are_json_errors_with_a_code);
async fn the_routers_own_rejections_are_json_errors_with_a_code(backend: Backend) {
    let srv = server(backend).await;
    let before = stored(&srv).await;
    // Unknown route.
    let (st, _, b) = raw(&srv, Method::GET, "/api/v1/nope", None).await;
    assert_error(st, &b, 404, "not-found");
    // A route that does not take this method: 405 with Allow, as JSON.
    let (st, headers, b) = raw(&srv, Method::DELETE, "/api/v1/changes", None).await;
    assert_error(st, &b, 405, "method-not-allowed");
    assert!(headers.contains_key("allow"), "{headers:?}");
    // A path parameter that does not decode (percent-encoding that is not UTF-8).
    let (st, _, b) = raw(&srv, Method::GET, "/api/v1/changes/%FF%FE", None).await;
    assert_error(st, &b, 400, "invalid-path");
    assert_eq!(b["location"], "path", "{b}");
    // A query string that does not decode for the route.
    let (st, _, b) = raw(
        &srv,
        Method::GET,
        "/api/v1/changes/chg-1/decision?record=maybe",
        None,
    )
    .await;
    assert_error(st, &b, 400, "invalid-query");
    assert_eq!(b["location"], "query", "{b}");
    // A body over the limit, announced by Content-Length: refused before it is read, as JSON.
    let mut big = cat2();
    big["title"] = json!("x".repeat(changegate_server::BODY_LIMIT + 10));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/changes", srv.base))
        .bearer_auth(&srv.admin)
        .header("content-type", "application/json")
        .header(reqwest::header::CONNECTION, "close")
        .body(serde_json::to_vec(&big).unwrap())
        .send()
        .await;
    // The server may close while the body is still being sent; when it answers, it is JSON.
    if let Ok(resp) = resp {
        let st = resp.status().as_u16();
        let b: Value = resp.json().await.expect("a JSON error body");
        assert_error(st, &b, 413, "body-too-large");
    }
    assert_eq!(stored(&srv).await, before, "nothing may be stored");
}

both!(an_unreachable_github_is_a_502_naming_github);
async fn an_unreachable_github_is_a_502_naming_github(backend: Backend) {
    // A loopback port nobody listens on: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        None,
        Some(format!("http://127.0.0.1:{closed}")),
    )
    .await;
    let before = stored(&srv).await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"pr": "acme/svc#7", "submit": true}),
        )
        .await;
    assert_error(st, &b, 502, "github-unreachable");
    assert_eq!(b["location"], "body `pr`", "{b}");
    assert!(
        !b.to_string().contains(&closed.to_string()),
        "the message does not say where the server's GitHub is: {b}"
    );
    assert_eq!(stored(&srv).await, before, "nothing may be stored");
}

/// A parent repository outside the repo root, with the root a plain folder inside it:
/// (parent tempdir, root, base, head).
fn root_inside_a_repository() -> (tempfile::TempDir, std::path::PathBuf, String, String) {
    let parent = tempfile::tempdir().unwrap();
    let r = GitRepo::init_at(parent.path());
    let manifest = |v: &str| format!(r#"{{ "dependencies": {{ "express": "{v}" }} }}"#);
    r.write("package.json", &manifest("4.19.2"));
    let base = r.commit("base");
    r.write("package.json", &manifest("4.21.0"));
    let head = r.commit("bump express");
    let root = parent.path().join("root");
    std::fs::create_dir_all(root.join("plain")).unwrap();
    (parent, root, base, head)
}

both!(the_repo_root_never_walks_up_and_never_says_where_it_is);
async fn the_repo_root_never_walks_up_and_never_says_where_it_is(backend: Backend) {
    let (parent, root, base, head) = root_inside_a_repository();
    // A repository under the root whose `.git` is a file pointing at the parent's git directory.
    std::fs::create_dir_all(root.join("linked")).unwrap();
    std::fs::write(
        root.join("linked/.git"),
        format!("gitdir: {}\n", parent.path().join(".git").display()),
    )
    .unwrap();
    // And a real repository under the root, to show classification still works there.
    let inner = GitRepo::init_at(&root.join("svc"));
    inner.write("README.md", "one\n");
    let inner_base = inner.commit("base");
    inner.write("README.md", "two\n");
    let inner_head = inner.commit("docs");
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Some(root.clone()),
        None,
    )
    .await;
    let before = stored(&srv).await;
    let secrets = [
        parent.path().to_string_lossy().into_owned(),
        std::fs::canonicalize(parent.path())
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ];
    let refused = |b: &Value| {
        for s in &secrets {
            assert!(
                !b.to_string().contains(s.as_str()),
                "the refusal names the server's path {s}: {b}"
            );
        }
    };
    // A plain folder under the root, inside the parent repository: not a repository.
    let body = json!({"repository": "plain", "base_commit": base, "head_commit": head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_error(st, &b, 400, "not-a-repository");
    assert_eq!(b["location"], "body `repository`", "{b}");
    refused(&b);
    // A `.git` file pointing outside the root.
    let body = json!({"repository": "linked", "base_commit": base, "head_commit": head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_error(st, &b, 400, "repository-outside-root");
    refused(&b);
    // A revision the repository lacks: classify-failed, naming the repository as the body did.
    let body = json!({"repository": "svc", "base_commit": "0000000", "head_commit": inner_head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_error(st, &b, 400, "classify-failed");
    refused(&b);
    assert!(b["message"].as_str().unwrap().contains("svc"), "{b}");
    assert_eq!(stored(&srv).await, before, "nothing may be stored");
    // The real repository under the root is classified.
    let body = json!({"repository": "svc", "base_commit": inner_base, "head_commit": inner_head});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
}

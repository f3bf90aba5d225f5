//! Issue 13, "mirrors": the server classifies a change whose `repository` is a URL from a bare
//! mirror it fetches from the remote (on create and on push), and a change created from a pull
//! request from `refs/pull/N/head` of the PR's clone URL. Against real git servers on loopback
//! (`git daemon`, and `git http-backend` behind an HTTP shim that requires a token), on SQLite
//! and PostgreSQL: only allowed URLs are fetched, an unreachable remote is a 502 naming it, a
//! refused request stores nothing, and concurrent creates share one mirror.

use std::path::Path;
use std::sync::Arc;

use changegate_server::mirror::{MirrorConfig, Mirrors, RemoteConfig};
use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::gitserver::{self, GitDaemon, HttpGitServer};
use changegate_testkit::server::{Backend, Options, TestServer, people_policy};
use serde_json::{Value, json};

/// Every log line of this test binary (a global subscriber, set once): the tests check that no
/// credential reaches the server's log.
fn logs() -> String {
    use std::sync::{Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    #[derive(Clone)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const SCHEMA: &str = "model User {\n  id   Int    @id\n  name String\n  age  Int\n}\n";
const DROP: &str = "-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"age\";\n";

fn manifest(v: &str) -> String {
    format!(r#"{{ "dependencies": {{ "express": "{v}" }} }}"#)
}

/// A work repository: `base` (express 4.19.2 and a Prisma schema), `head` (a minor express
/// upgrade, category 2, by Bob with Carl as co-author) and `head2` on top of it (a migration
/// dropping a column, category 3, by Dana): (repo, base, head, head2). `head2` is made later by
/// [`drop_column`].
fn work_repo() -> (GitRepo, String, String) {
    let r = GitRepo::new();
    r.write("package.json", &manifest("4.19.2"));
    r.write("prisma/schema.prisma", SCHEMA);
    let base = r.commit("base");
    r.branch("feature");
    r.write("package.json", &manifest("4.21.0"));
    r.git(&["add", "-A"]);
    r.git(&[
        "commit",
        "-q",
        "--author",
        "Bob <bob@example.com>",
        "-m",
        "bump express\n\nCo-authored-by: Carl <Carl@Example.com>",
    ]);
    let head = r.head();
    r.checkout("main");
    (r, base, head)
}

/// Drop a column on `feature` (by Dana): the new head.
fn drop_column(r: &GitRepo) -> String {
    r.checkout("feature");
    r.write("prisma/schema.prisma", &SCHEMA.replace("  age  Int\n", ""));
    r.write(
        "prisma/migrations/20260301000000_drop_age/migration.sql",
        DROP,
    );
    r.git(&["add", "-A"]);
    r.git(&[
        "commit",
        "-q",
        "--author",
        "Dana <dana@example.com>",
        "-m",
        "drop age",
    ]);
    let h = r.head();
    r.checkout("main");
    h
}

fn remote(prefix: &str) -> RemoteConfig {
    RemoteConfig {
        prefix: prefix.to_string(),
        ..RemoteConfig::default()
    }
}

fn mirrors(dir: &Path, remotes: Vec<RemoteConfig>) -> Arc<Mirrors> {
    let config = MirrorConfig {
        remotes,
        fetch_timeout_secs: Some(20),
        ..MirrorConfig::default()
    };
    Arc::new(Mirrors::new(dir, &config).unwrap())
}

async fn server(backend: Backend, m: Arc<Mirrors>, github_api: Option<String>) -> TestServer {
    TestServer::start_opts(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Options {
            mirrors: Some(m),
            github_api,
            ..Options::default()
        },
    )
    .await
}

async fn audit_size(srv: &TestServer) -> u64 {
    srv.db.store().head().await.unwrap().size
}

async fn change_count(srv: &TestServer) -> usize {
    let (_, list) = srv.get("/api/v1/changes", &srv.admin).await;
    list["changes"].as_array().unwrap().len()
}

/// The entries of the mirror directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn facet_kinds(c: &Value) -> Vec<String> {
    c["classification"]["facets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

both!(a_change_by_url_is_classified_from_the_mirror_on_create_and_push);
async fn a_change_by_url_is_classified_from_the_mirror_on_create_and_push(backend: Backend) {
    let (work, base, head) = work_repo();
    let served = tempfile::tempdir().unwrap();
    let bare = gitserver::publish(work.path(), served.path(), "acme/svc.git");
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    let srv = server(
        backend,
        mirrors(mdir.path(), vec![remote(&daemon.prefix())]),
        None,
    )
    .await;
    let alice = srv.token("alice").await;
    let url = daemon.url("acme/svc.git");
    let started = std::time::Instant::now();
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"repository": url, "base_commit": base, "head_commit": head, "submit": true}),
        )
        .await;
    let first = started.elapsed();
    assert_eq!(st, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let c = &b["change"];
    assert_eq!(c["repository"], url.as_str());
    assert_eq!(c["classification"]["category"], 2, "{c}");
    assert_eq!(facet_kinds(c), ["dep-minor"]);
    assert_eq!(
        c["provenance"]["classification"],
        json!({"observed": ["repository"]})
    );
    // Authors from git: Bob (author) and the kit's committer, Carl from the trailer.
    assert_eq!(c["authors"], json!(["bob@example.com", "dev@example.com"]));
    assert_eq!(c["co_authors"], json!(["carl@example.com"]));
    // One bare mirror, named from the URL.
    let names = entries(mdir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("acme-svc-") && names[0].ends_with(".git"),
        "{names:?}"
    );
    let mirror = mdir.path().join(&names[0]);
    assert_eq!(
        changegate_testkit::git_in(&mirror, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    // A token allowed to classify adds to the server's verdict (the existing merge rule).
    let again = std::time::Instant::now();
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": url, "base_commit": base, "head_commit": head,
                    "classification": {"category": 1, "facets": [], "required_roles": ["qa"]}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    eprintln!(
        "create by URL: {} ms with the first fetch, {} ms from the mirror",
        first.as_millis(),
        again.elapsed().as_millis()
    );
    assert_eq!(b["change"]["classification"]["category"], 2);
    let roles = b["change"]["classification"]["required_roles"]
        .as_array()
        .unwrap();
    assert!(roles.contains(&json!("qa")) && roles.len() > 1, "{b}");
    // An author's token still may not send one.
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"repository": url, "base_commit": base, "head_commit": head,
                    "classification": {"category": 1, "facets": []}}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("classification-not-allowed"))
    );

    // A push of new commits: the server fetches them and re-classifies base..new head.
    let ops = format!("/api/v1/changes/{id}/ops");
    let head2 = drop_column(&work);
    // Not on the remote yet: the fetch cannot find it, nothing changes.
    let size = audit_size(&srv).await;
    let (st, b) = srv
        .post(
            &ops,
            &alice,
            &json!({"op": "push", "commit": head2, "by": "alice"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("classify-failed")),
        "{b}"
    );
    let msg = b["message"].as_str().unwrap();
    assert!(
        !msg.contains(&mdir.path().display().to_string()) && !msg.contains(&names[0]),
        "no server path in {msg}"
    );
    assert_eq!(audit_size(&srv).await, size);
    gitserver::push_all(work.path(), &bare);
    let (st, b) = srv
        .post(
            &ops,
            &alice,
            &json!({"op": "push", "commit": head2, "by": "alice"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let c = &b["change"];
    assert_eq!(c["head_commit"], head2.as_str());
    assert_eq!(c["classification"]["category"], 3, "a dropped column: {c}");
    assert!(
        facet_kinds(c).contains(&"schema-column-dropped".to_string()),
        "{c}"
    );
    let authors = c["authors"].as_array().unwrap();
    assert!(authors.contains(&json!("dana@example.com")), "{c}");
    assert_eq!(entries(mdir.path()), names, "still one mirror");
}

both!(an_unreachable_remote_is_a_502_naming_it_and_nothing_is_stored);
async fn an_unreachable_remote_is_a_502_naming_it_and_nothing_is_stored(backend: Backend) {
    let port = gitserver::closed_port();
    let prefix = format!("git://127.0.0.1:{port}/");
    let served = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    let srv = server(
        backend,
        mirrors(mdir.path(), vec![remote(&prefix), remote(&daemon.prefix())]),
        None,
    )
    .await;
    let before = audit_size(&srv).await;
    let url = format!("{prefix}acme/svc.git");
    let body =
        json!({"repository": url, "base_commit": "a".repeat(40), "head_commit": "b".repeat(40)});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(
        (st, b["code"].as_str(), b["location"].as_str()),
        (502, Some("remote-unreachable"), Some("body `repository`")),
        "{b}"
    );
    let msg = b["message"].as_str().unwrap();
    assert!(msg.contains(&url), "names the remote: {msg}");
    assert!(
        !msg.contains(&mdir.path().display().to_string()) && !msg.contains("/tmp"),
        "no server path: {msg}"
    );
    // A reachable server without the repository: the remote answered, the fetch failed.
    let missing = daemon.url("acme/nope.git");
    let body = json!({"repository": missing, "base_commit": "a".repeat(40), "head_commit": "b".repeat(40)});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (502, Some("remote-fetch-failed")),
        "{b}"
    );
    assert!(b["message"].as_str().unwrap().contains(&missing), "{b}");
    assert_eq!(audit_size(&srv).await, before, "nothing stored");
    assert_eq!(change_count(&srv).await, 0);
}

both!(a_url_outside_the_allow_list_is_refused_before_any_fetch);
async fn a_url_outside_the_allow_list_is_refused_before_any_fetch(backend: Backend) {
    let (work, base, head) = work_repo();
    let served = tempfile::tempdir().unwrap();
    gitserver::publish(work.path(), served.path(), "acme/svc.git");
    gitserver::publish(work.path(), served.path(), "acme-evil/svc.git");
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    // Only `other/` of the daemon is allowed (and a name mapped inside it).
    let allowed = format!("{}other/", daemon.prefix());
    let srv = server(backend, mirrors(mdir.path(), vec![remote(&allowed)]), None).await;
    let before = audit_size(&srv).await;
    let p = daemon.port();
    for (repo, code) in [
        (daemon.url("acme/svc.git"), "repository-not-allowed"),
        (daemon.url("other-evil/svc.git"), "repository-not-allowed"),
        (
            format!("git://localhost:{p}/other/svc.git"),
            "repository-not-allowed",
        ),
        (
            format!("http://127.0.0.1:{p}/other/svc.git"),
            "repository-not-allowed",
        ),
        (
            format!("git://127.0.0.1:{p}/other/../acme/svc.git"),
            "invalid-repository-url",
        ),
        (
            format!("git://127.0.0.1:{p}/other/%2e%2e/acme/svc.git"),
            "invalid-repository-url",
        ),
        (
            format!("git://127.0.0.1:{p}/other/..%2f..%2fetc"),
            "invalid-repository-url",
        ),
        (
            format!("git://127.0.0.1:{p}/other//svc.git"),
            "invalid-repository-url",
        ),
        (
            format!("git://127.0.0.1:{p}/other/svc.git?x=1"),
            "invalid-repository-url",
        ),
        ("file:///etc/passwd".to_string(), "invalid-repository-url"),
        (
            format!("https://user:hunter2@127.0.0.1:{p}/other/svc.git"),
            "invalid-repository-url",
        ),
        (
            "git@github.com:acme/svc.git".to_string(),
            "invalid-repository-url",
        ),
        (
            "ext::sh -c touch% /tmp/pwned".to_string(),
            "classification-required",
        ),
        ("../../etc".to_string(), "classification-required"),
    ] {
        let body = json!({"repository": repo, "base_commit": base, "head_commit": head});
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_eq!(
            (st, b["code"].as_str(), b["location"].as_str()),
            (
                400,
                Some(code),
                Some(if code == "classification-required" {
                    "body `classification`"
                } else {
                    "body `repository`"
                })
            ),
            "{repo}: {b}"
        );
        assert!(!b["message"].as_str().unwrap().contains("hunter2"), "{b}");
    }
    assert!(entries(mdir.path()).is_empty(), "no fetch was attempted");
    assert_eq!(audit_size(&srv).await, before, "nothing stored");
    assert_eq!(change_count(&srv).await, 0);
    // Inside the allow-list, a name made of dots and odd characters still gets a safe mirror
    // directory (the daemon does not have it: a 502, and no directory outside the mirror dir).
    let odd = format!("git://127.0.0.1:{p}/other/..svc~+.git");
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": odd, "base_commit": base, "head_commit": head}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (502, Some("remote-fetch-failed")),
        "{b}"
    );
    for e in entries(mdir.path()) {
        assert!(
            !e.starts_with('.') && e.starts_with("other-") && !e.contains('/'),
            "{e}"
        );
    }
    assert!(!served.path().join("other").exists());
}

both!(concurrent_creates_on_one_repository_share_one_sound_mirror);
async fn concurrent_creates_on_one_repository_share_one_sound_mirror(backend: Backend) {
    let (work, base, head) = work_repo();
    let served = tempfile::tempdir().unwrap();
    gitserver::publish(work.path(), served.path(), "acme/svc.git");
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    let srv = Arc::new(
        server(
            backend,
            mirrors(mdir.path(), vec![remote(&daemon.prefix())]),
            None,
        )
        .await,
    );
    let url = daemon.url("acme/svc.git");
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (srv, url, base, head) = (srv.clone(), url.clone(), base.clone(), head.clone());
            tokio::spawn(async move {
                let body = json!({"id": format!("chg-{i}"), "repository": url, "base_commit": base, "head_commit": head});
                srv.post("/api/v1/changes", &srv.admin, &body).await
            })
        })
        .collect();
    for t in tasks {
        let (st, b) = t.await.unwrap();
        assert_eq!(st, 201, "{b}");
        assert_eq!(b["change"]["classification"]["category"], 2, "{b}");
    }
    eprintln!(
        "8 concurrent creates on one mirror: {} ms",
        started.elapsed().as_millis()
    );
    let names = entries(mdir.path());
    assert_eq!(names.len(), 1, "one mirror, no leftovers: {names:?}");
    changegate_testkit::git_in(&mdir.path().join(&names[0]), &["fsck", "--no-progress"]);
    assert_eq!(change_count(&srv).await, 8);
}

both!(https_style_credentials_are_sent_and_a_wrong_one_is_a_clear_502);
async fn https_style_credentials_are_sent_and_a_wrong_one_is_a_clear_502(backend: Backend) {
    logs();
    let (work, base, head) = work_repo();
    let served = tempfile::tempdir().unwrap();
    gitserver::publish(work.path(), served.path(), "acme/svc.git");
    // Basic x-access-token:s3cret-t0ken, as GitHub wants for git over HTTPS.
    let want = "Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0LXQwa2Vu".to_string();
    let http = HttpGitServer::start(served.path(), Some(want.clone()));
    // And a server that wants `Bearer <token>` (no username in the config).
    let bearer = HttpGitServer::start(served.path(), Some("Bearer b34rer-t0ken".into()));
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("git-token");
    std::fs::write(&token_file, "wrong-t0ken\n").unwrap();
    let bearer_file = secrets.path().join("bearer-token");
    std::fs::write(&bearer_file, "b34rer-t0ken").unwrap();
    let mdir = tempfile::tempdir().unwrap();
    let srv = server(
        backend,
        mirrors(
            mdir.path(),
            vec![
                RemoteConfig {
                    prefix: http.prefix(),
                    token_file: Some(token_file.clone()),
                    username: Some("x-access-token".into()),
                    ..RemoteConfig::default()
                },
                RemoteConfig {
                    prefix: bearer.prefix(),
                    token_file: Some(bearer_file),
                    ..RemoteConfig::default()
                },
            ],
        ),
        None,
    )
    .await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": bearer.url("acme/svc.git"), "base_commit": base, "head_commit": head}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let seen = bearer.authorizations();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == "Bearer b34rer-t0ken"),
        "{seen:?}"
    );
    let url = http.url("acme/svc.git");
    let body = json!({"repository": url, "base_commit": base, "head_commit": head});
    let before = audit_size(&srv).await;
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (502, Some("remote-auth-failed")),
        "{b}"
    );
    let msg = b["message"].as_str().unwrap();
    assert!(msg.contains(&url), "{msg}");
    assert!(
        !msg.contains("wrong-t0ken")
            && !msg.contains("eC1hY2Nlc3MtdG9rZW46")
            && !msg.contains(&secrets.path().display().to_string()),
        "no credential in {msg}"
    );
    assert_eq!(audit_size(&srv).await, before, "nothing stored");
    let seen = http.authorizations();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a.starts_with("Basic ") && *a != want),
        "{seen:?}"
    );
    // The token file is read at each fetch: the right token now.
    std::fs::write(&token_file, "s3cret-t0ken\n").unwrap();
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["change"]["classification"]["category"], 2);
    let seen = http.authorizations();
    assert!(seen.last() == Some(&want), "{seen:?}");
    // The server logged the refused fetch (git's redacted stderr), never a credential.
    let log = logs();
    assert!(log.contains("git fetch failed"), "{log}");
    for secret in [
        "b34rer-t0ken",
        "wrong-t0ken",
        "s3cret-t0ken",
        "eC1hY2Nlc3MtdG9rZW46",
        "Authorization",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// A stand-in for GitHub's REST API (it cannot run offline): `GET /repos/acme/svc/pulls/7`
/// answers the documented pull-request shape, `base.repo.clone_url` and `head.repo.clone_url`
/// pointing at `clone_url`.
async fn fake_github(base: String, head: String, clone_url: String) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/repos/{owner}/{repo}/pulls/{n}",
        get(move |axum::extract::Path((owner, repo, n)): axum::extract::Path<(String, String, u64)>| {
            let (base, head, clone_url) = (base.clone(), head.clone(), clone_url.clone());
            async move {
                if owner != "acme" || repo != "svc" || n != 7 {
                    return (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/pulls/pulls#get-a-pull-request", "status": "404"})));
                }
                let repo = json!({
                    "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "svc", "full_name": "acme/svc",
                    "private": true, "owner": {"login": "acme", "id": 1, "type": "Organization"},
                    "html_url": "https://github.com/acme/svc", "url": "https://api.github.com/repos/acme/svc",
                    "clone_url": clone_url, "git_url": "git://github.com/acme/svc.git",
                    "ssh_url": "git@github.com:acme/svc.git", "default_branch": "main",
                });
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({
                        "url": "https://api.github.com/repos/acme/svc/pulls/7", "id": 1, "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==",
                        "html_url": "https://github.com/acme/svc/pull/7", "number": 7, "state": "open", "locked": false,
                        "title": "Bump express", "user": {"login": "alice", "id": 2, "type": "User"},
                        "body": "Please pull these awesome changes", "draft": false,
                        "head": {"label": "acme:bump", "ref": "bump", "sha": head, "user": {"login": "alice", "id": 2}, "repo": repo},
                        "base": {"label": "acme:main", "ref": "main", "sha": base, "user": {"login": "acme", "id": 1}, "repo": repo},
                        "merged": false, "mergeable": true, "commits": 1,
                    })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

both!(a_pull_request_is_fetched_from_its_clone_url_and_classified_by_the_server);
async fn a_pull_request_is_fetched_from_its_clone_url_and_classified_by_the_server(
    backend: Backend,
) {
    let (work, base, _) = work_repo();
    let served = tempfile::tempdir().unwrap();
    let bare = gitserver::publish(work.path(), served.path(), "acme/svc.git");
    // The PR's head is on no branch of the remote: only refs/pull/7/head has it.
    let head = drop_column(&work);
    changegate_testkit::git_in(work.path(), &["branch", "-q", "-D", "feature"]);
    changegate_testkit::git_in(
        work.path(),
        &[
            "push",
            "-q",
            &bare.display().to_string(),
            &format!("{head}:refs/pull/7/head"),
        ],
    );
    let daemon = GitDaemon::start(served.path());
    let clone_url = daemon.url("acme/svc.git");
    let api = fake_github(base.clone(), head.clone(), clone_url.clone()).await;
    let mdir = tempfile::tempdir().unwrap();
    let srv = server(
        backend,
        mirrors(mdir.path(), vec![remote(&daemon.prefix())]),
        Some(api),
    )
    .await;
    let alice = srv.token("alice").await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"pr": "acme/svc#7", "submit": true}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let c = &b["change"];
    assert_eq!(c["repository"], clone_url.as_str());
    assert_eq!(
        (c["base_commit"].as_str(), c["head_commit"].as_str()),
        (Some(base.as_str()), Some(head.as_str()))
    );
    assert_eq!(c["pr_link"], "https://github.com/acme/svc/pull/7");
    assert_eq!(c["classification"]["category"], 3, "a dropped column: {c}");
    assert_eq!(
        c["provenance"]["classification"],
        json!({"observed": ["repository"]})
    );
    // The PR's author (GitHub), then every commit's author and committer (git).
    assert_eq!(
        c["authors"],
        json!([
            "alice",
            "bob@example.com",
            "dev@example.com",
            "dana@example.com"
        ]),
        "{c}"
    );
    assert_eq!(c["co_authors"], json!(["carl@example.com"]));
    // A push to the PR: the server fetches refs/pull/7/head again.
    work.checkout("main");
    work.git(&["checkout", "-q", &head]);
    work.write("README.md", "# svc\n");
    let head2 = work.commit("docs");
    work.git(&[
        "push",
        "-q",
        "--force",
        &bare.display().to_string(),
        &format!("{head2}:refs/pull/7/head"),
    ]);
    let id = b["id"].as_str().unwrap();
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &alice,
            &json!({"op": "push", "commit": head2, "by": "alice"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["change"]["head_commit"], head2.as_str());
    assert_eq!(b["change"]["classification"]["category"], 3);
}

both!(a_pull_request_whose_clone_url_is_not_allowed_is_refused);
async fn a_pull_request_whose_clone_url_is_not_allowed_is_refused(backend: Backend) {
    let daemon_root = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(daemon_root.path());
    let api = fake_github(
        "a".repeat(40),
        "b".repeat(40),
        "https://evil.example.com/acme/svc.git".into(),
    )
    .await;
    let mdir = tempfile::tempdir().unwrap();
    let srv = server(
        backend,
        mirrors(mdir.path(), vec![remote(&daemon.prefix())]),
        Some(api),
    )
    .await;
    let before = audit_size(&srv).await;
    let (st, b) = srv
        .post("/api/v1/changes", &srv.admin, &json!({"pr": "acme/svc#7"}))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("repository-not-allowed")),
        "{b}"
    );
    assert!(entries(mdir.path()).is_empty());
    assert_eq!(audit_size(&srv).await, before);
}

both!(a_repository_name_of_the_config_is_fetched_from_its_url);
async fn a_repository_name_of_the_config_is_fetched_from_its_url(backend: Backend) {
    let (work, base, head) = work_repo();
    let served = tempfile::tempdir().unwrap();
    let bare = gitserver::publish(work.path(), served.path(), "acme/svc.git");
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    let config = MirrorConfig {
        remotes: vec![remote(&daemon.prefix())],
        repositories: [("svc".to_string(), daemon.url("acme/svc.git"))].into(),
        ..MirrorConfig::default()
    };
    let m = Arc::new(Mirrors::new(mdir.path(), &config).unwrap());
    let srv = server(backend, m, None).await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": "svc", "base_commit": base, "head_commit": head}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["change"]["repository"], "svc");
    assert_eq!(b["change"]["classification"]["category"], 2);
    // A push is fetched through the name as well.
    let head2 = drop_column(&work);
    gitserver::push_all(work.path(), &bare);
    let id = b["id"].as_str().unwrap();
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &srv.admin,
            &json!({"op": "push", "commit": head2, "by": "admin"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["change"]["classification"]["category"], 3);
    // Another name is no URL and not under a repo root.
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": "other", "base_commit": base, "head_commit": head}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("classification-required")),
        "{b}"
    );
}

both!(a_remote_that_never_answers_is_cut_off_by_the_fetch_timeout);
async fn a_remote_that_never_answers_is_cut_off_by_the_fetch_timeout(backend: Backend) {
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let prefix = format!("git://{}/", silent.local_addr().unwrap());
    let mdir = tempfile::tempdir().unwrap();
    let config = MirrorConfig {
        remotes: vec![remote(&prefix)],
        fetch_timeout_secs: Some(1),
        ..MirrorConfig::default()
    };
    let srv = server(
        backend,
        Arc::new(Mirrors::new(mdir.path(), &config).unwrap()),
        None,
    )
    .await;
    let before = audit_size(&srv).await;
    let started = std::time::Instant::now();
    let body = json!({"repository": format!("{prefix}acme/svc.git"), "base_commit": "a".repeat(40), "head_commit": "b".repeat(40)});
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    let took = started.elapsed();
    assert_eq!(
        (st, b["code"].as_str()),
        (502, Some("remote-unreachable")),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s"),
        "{b}"
    );
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(audit_size(&srv).await, before);
    drop(silent);
}

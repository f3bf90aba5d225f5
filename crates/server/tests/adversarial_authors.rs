//! Issue 13, "classification is the server's" and "authors from git", tried as an attacker would:
//! an author lowering their change's category (in the create body, or with `op push`), and a
//! backend lead naming someone else as author and last pusher of their own commit to approve it.
//! Each attack is refused (its code) and leaves nothing stored, on SQLite and PostgreSQL.

use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn manifest(v: &str) -> String {
    format!(r#"{{ "dependencies": {{ "express": "{v}" }} }}"#)
}

/// A repository at `repo` whose one change moves express from 4.19.2 to `to` (5.0.0 is a major
/// upgrade, category 3; 4.21.0 a minor one, category 2), committed by `author` (`Name <email>`,
/// or the kit's identity): (base, head).
fn express_repo(
    repo: &std::path::Path,
    to: &str,
    author: Option<&str>,
) -> (GitRepo, String, String) {
    let r = GitRepo::init_at(repo);
    r.write("package.json", &manifest("4.19.2"));
    let base = r.commit("base");
    r.write("package.json", &manifest(to));
    let head = match author {
        None => r.commit("bump express"),
        Some(a) => {
            r.git(&["add", "-A"]);
            r.git(&[
                "commit",
                "-q",
                "--author",
                a,
                "-m",
                "bump express\n\nCo-authored-by: Carl <Carl@Example.com>",
            ]);
            r.head()
        }
    };
    (r, base, head)
}

async fn server_with_root(backend: Backend, root: &std::path::Path) -> TestServer {
    TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Some(root.to_path_buf()),
        None,
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

/// The audit events of a change, oldest first.
async fn events(srv: &TestServer, id: &str) -> Vec<Value> {
    let filter = changegate_store::EventFilter {
        change_id: Some(id.to_string()),
        ..Default::default()
    };
    let all = srv.db.store().events(&filter).await.unwrap();
    all.into_iter()
        .map(|e| serde_json::to_value(e.record).unwrap())
        .collect()
}

both!(an_author_cannot_lower_the_category_of_their_change);
async fn an_author_cannot_lower_the_category_of_their_change(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let (_r, base, head) = express_repo(&root.path().join("svc"), "5.0.0", None);
    let srv = server_with_root(backend, root.path()).await;
    let alice = srv.token("alice").await;
    let before = audit_size(&srv).await;
    // The attack: the author's own token says category 1.
    let lowered = json!({
        "repository": "svc", "base_commit": base, "head_commit": head, "submit": true,
        "classification": {"category": 1, "facets": []},
    });
    let (st, b) = srv.post("/api/v1/changes", &alice, &lowered).await;
    assert_eq!(
        (st, b["code"].as_str(), b["location"].as_str()),
        (
            403,
            Some("classification-not-allowed"),
            Some("body `classification`")
        ),
        "{b}"
    );
    assert_eq!(
        audit_size(&srv).await,
        before,
        "a refused create stores nothing"
    );
    assert_eq!(change_count(&srv).await, 0);
    // Without it the server classifies the commits itself: category 3, observed.
    let mut plain = lowered.clone();
    plain.as_object_mut().unwrap().remove("classification");
    let (st, b) = srv.post("/api/v1/changes", &alice, &plain).await;
    assert_eq!(st, 201, "{b}");
    let c = &b["change"];
    assert_eq!(c["classification"]["category"], 3, "{c}");
    assert_eq!(
        c["provenance"]["classification"],
        json!({"observed": ["repository"]})
    );
    // A token allowed to classify (the admin's, today) may add to the server's verdict, never
    // lower it: the higher category and the union of roles win, and it is recorded as vouched.
    let vouched = json!({
        "repository": "svc", "base_commit": base, "head_commit": head,
        "classification": {"category": 1, "facets": [], "required_roles": ["qa"]},
    });
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &vouched).await;
    assert_eq!(st, 201, "{b}");
    let c = &b["change"];
    assert_eq!(c["classification"]["category"], 3, "{c}");
    let roles = c["classification"]["required_roles"].as_array().unwrap();
    assert!(roles.contains(&json!("qa")) && roles.len() > 1, "{c}");
    let admin_token = srv.admin.split('_').nth(1).unwrap();
    assert_eq!(
        c["provenance"]["classification"],
        json!({"observed": ["repository"], "vouched": [{"token": admin_token, "person": "admin"}]})
    );
    let id = b["id"].as_str().unwrap();
    let created = &events(&srv, id).await[0];
    assert_eq!(
        created["details"]["provenance"]["classification"]["vouched"][0]["token"], admin_token,
        "the audit event records the vouching token: {created}"
    );
}

both!(a_person_may_not_classify_what_the_server_cannot);
async fn a_person_may_not_classify_what_the_server_cannot(backend: Backend) {
    // No repo root at all, and a repository outside the root: the classification would be the
    // person's word alone.
    let root = tempfile::tempdir().unwrap();
    let with_root = server_with_root(backend, root.path()).await;
    let without = TestServer::start(backend, people_policy(), at("2026-03-10T10:30:00Z")).await;
    for srv in [&with_root, &without] {
        let alice = srv.token("alice").await;
        let before = audit_size(srv).await;
        let body = json!({
            "repository": "acme/chat", "base_commit": "a1", "head_commit": "b1",
            "classification": {"category": 1, "facets": []},
        });
        let (st, b) = srv.post("/api/v1/changes", &alice, &body).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("classification-not-allowed")),
            "{b}"
        );
        assert_eq!(audit_size(srv).await, before);
        assert_eq!(change_count(srv).await, 0);
        // The admin may vouch for it; the change records that it did.
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_eq!(st, 201, "{b}");
        assert_eq!(b["change"]["classification"]["category"], 1);
        assert_eq!(
            b["change"]["provenance"]["classification"]["vouched"][0]["person"],
            "admin"
        );
        assert!(b["change"]["provenance"]["classification"]["observed"].is_null());
    }
}

both!(the_git_author_stays_the_author_whatever_the_body_says);
async fn the_git_author_stays_the_author_whatever_the_body_says(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    // Bob, the backend lead, commits a minor bump (category 2, needs backend-lead).
    let (_r, base, head) = express_repo(
        &root.path().join("svc"),
        "4.21.0",
        Some("Bob Builder <Bob@Example.com>"),
    );
    let srv = server_with_root(backend, root.path()).await;
    srv.alias("bob@example.com", "bob").await;
    let bob = srv.token("bob").await;
    let before = audit_size(&srv).await;
    // The attack: bob records his change naming alice as author and last pusher.
    let claim = json!({
        "repository": "svc", "base_commit": base, "head_commit": head, "submit": true,
        "authors": ["alice"], "last_pusher": "alice",
    });
    let (st, b) = srv.post("/api/v1/changes", &bob, &claim).await;
    assert_eq!(
        (st, b["code"].as_str(), b["location"].as_str()),
        (
            403,
            Some("last-pusher-not-allowed"),
            Some("body `last_pusher`")
        ),
        "{b}"
    );
    assert_eq!(audit_size(&srv).await, before);
    assert_eq!(change_count(&srv).await, 0);
    // Naming only alice as author: git's author is kept, the body only adds.
    let mut as_author = claim.clone();
    as_author.as_object_mut().unwrap().remove("last_pusher");
    let (st, b) = srv.post("/api/v1/changes", &bob, &as_author).await;
    assert_eq!(st, 201, "{b}");
    let c = &b["change"];
    assert_eq!(
        c["authors"],
        json!(["bob", "dev@example.com", "alice"]),
        "git's author (mapped by the alias) and committer, then the body's: {c}"
    );
    assert_eq!(
        c["co_authors"],
        json!(["carl@example.com"]),
        "unmapped identities are kept as they are"
    );
    assert_eq!(c["last_pusher"], "bob");
    assert_eq!(
        c["provenance"]["authors"]["observed"],
        json!(["repository"])
    );
    // Even where an integration names the last pusher (the admin token may), the commit's
    // author is recorded.
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &claim).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["change"]["last_pusher"], "alice");
    assert!(
        b["change"]["authors"]
            .as_array()
            .unwrap()
            .contains(&json!("bob")),
        "{b}"
    );
    // Bob's approval of either change is refused by separation of duties; nothing changes.
    for id in [b["id"].as_str().unwrap(), c["id"].as_str().unwrap()] {
        let (_, before_change) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
        let size = audit_size(&srv).await;
        let (st, r) = srv
            .post(
                &format!("/api/v1/changes/{id}/approvals"),
                &bob,
                &json!({"role": "backend-lead"}),
            )
            .await;
        assert_eq!(
            (st, r["code"].as_str()),
            (422, Some("approval-self")),
            "{r}"
        );
        let (_, after) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
        assert_eq!(after, before_change);
        assert_eq!(audit_size(&srv).await, size);
    }
    // The same change committed by someone else: bob may approve it, so the refusals above were
    // about bob's commit.
    let (_r2, base2, head2) = express_repo(&root.path().join("svc2"), "4.21.0", None);
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({"repository": "svc2", "base_commit": base2, "head_commit": head2, "submit": true, "authors": ["alice"]}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, r) = srv
        .post(
            &format!("/api/v1/changes/{}/approvals", b["id"].as_str().unwrap()),
            &bob,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert_eq!(st, 201, "{r}");
}

both!(a_push_carries_commits_never_a_classification);
async fn a_push_carries_commits_never_a_classification(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let (r, base, head) = express_repo(&root.path().join("svc"), "5.0.0", None);
    r.write("README.md", "svc");
    let head2 = r.commit("docs");
    let srv = server_with_root(backend, root.path()).await;
    let alice = srv.token("alice").await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"repository": "svc", "base_commit": base, "head_commit": head, "submit": true}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["change"]["classification"]["category"], 3);
    let id = b["id"].as_str().unwrap().to_string();
    let ops = format!("/api/v1/changes/{id}/ops");
    let (_, stored) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    let size = audit_size(&srv).await;
    // A classification in the push: the command has no such field.
    let (st, b) = srv
        .post(
            &ops,
            &alice,
            &json!({"op": "push", "commit": head2, "by": "alice", "classification": {"category": 1, "facets": []}}),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-json")), "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("classification"),
        "{b}"
    );
    // Nor may a request pass off its own "observation", not even the admin's.
    let forged = json!({
        "op": "push", "commit": head2, "by": "alice",
        "observed": {"classification": {"category": 1, "facets": []}, "token": {"token": "x", "person": "ci"}},
    });
    for token in [&alice, &srv.admin] {
        let (st, b) = srv.post(&ops, token, &forged).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("observation-not-allowed")),
            "{b}"
        );
    }
    // A commit the repository does not have cannot be classified: refused.
    let (st, b) = srv
        .post(
            &ops,
            &alice,
            &json!({"op": "push", "commit": "0".repeat(40), "by": "alice"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("classify-failed")),
        "{b}"
    );
    let (_, after) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(after, stored, "refused pushes change nothing");
    assert_eq!(audit_size(&srv).await, size);
    // A real push: the server re-classifies base..new head (still the major upgrade).
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
    assert_eq!(c["classification"]["category"], 3, "{c}");
    assert_eq!(c["last_pusher"], "alice");
    let alice_id = alice.split('_').nth(1).unwrap();
    assert_eq!(
        c["provenance"]["last_pusher"],
        json!({"vouched": [{"token": alice_id, "person": "alice"}]})
    );
    let pushed = events(&srv, &id).await.pop().unwrap();
    assert_eq!(
        pushed["details"]["op"]["observed"]["classification"]["category"], 3,
        "the push's audit event carries what the server observed: {pushed}"
    );
}

both!(a_push_keeps_a_vouched_classification_it_cannot_reread);
async fn a_push_keeps_a_vouched_classification_it_cannot_reread(backend: Backend) {
    // No repository the server can read: a push keeps the stored (vouched) classification.
    let srv = TestServer::start(backend, people_policy(), at("2026-03-10T10:30:00Z")).await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &srv.admin,
            &json!({
                "repository": "acme/chat", "base_commit": "a1", "head_commit": "b1", "authors": ["alice"],
                "classification": {"category": 3, "facets": [], "required_roles": []}, "submit": true,
            }),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    let alice = srv.token("alice").await;
    let (st, b) = srv
        .post(
            &format!("/api/v1/changes/{id}/ops"),
            &alice,
            &json!({"op": "push", "commit": "b2", "by": "alice", "authors": ["dave"]}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let c = &b["change"];
    assert_eq!(c["classification"]["category"], 3);
    assert_eq!(c["authors"], json!(["alice", "dave"]));
    assert_eq!(
        c["provenance"]["authors"]["vouched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["person"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["admin", "alice"]
    );
}

//! Issue 15, "In: webhooks": GitHub webhooks end to end, on SQLite and PostgreSQL. The payloads
//! are GitHub's own examples (`tests/data/github`, from `@octokit/webhooks-examples`), rewritten
//! only where a scenario needs it (SHAs, clone URL, logins, review state) and signed like GitHub
//! signs them. The repository is a real git repository served by `git daemon` on loopback: the
//! server fetches the pull request into its mirror and classifies it itself.
//!
//! Covered: GitHub's documented HMAC test vector; unsigned, wrongly signed and replayed
//! deliveries; a pull request opened → classified from the remote → two approvals through PR
//! reviews → CI evidence from `workflow_run` → `deployment_status` success in the audit trail;
//! `synchronize` (new head, approvals of the old head no longer count, the sender as last pusher);
//! `closed` unmerged (cancelled) and merged (merge commit); review `dismissed`; the attacks: an
//! unmapped reviewer, a reviewer without the role, an approve command by a non-holder, a payload
//! whose PR author is not who wrote the commits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use changegate_server::AppState;
use changegate_server::deliveries::WorkerConfig;
use changegate_server::mirror::{MirrorConfig, Mirrors, RemoteConfig};
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, policy_with, t};
use changegate_testkit::gitserver::{self, GitDaemon};
use changegate_testkit::server::{Backend, Options, TestServer};
use jiff::SignedDuration;
use serde_json::{Value, json};

const SECRET: &str = "gh-webhook-secret";
const PATH: &str = "/api/v1/webhooks/github";
const REPO: &str = "Codertocat/Hello-World";
const CHANGE: &str = "gh-codertocat-hello-world-2";

/// Two approvals for a category-2 change (backend lead and SRE lead), GitHub logins for the
/// corpus' people, reviews approving.
const POLICY: &str = r#"
[categories.medium-risk]
approvers = ["backend-lead", "sre-lead"]
deploy_approvers = []

[people.bob]
github = "bob-gh"
[people.sam]
github = "sam-gh"
github_id = 4242
[people.paula]
github = "paula-gh"
[people.ann]
github = "ann-gh"

[integrations.github]
approvals = "reviews"
"#;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", Secret::new(secret).unwrap().sign_hex(body))
}

struct Gh {
    srv: TestServer,
    worker: tokio::task::JoinHandle<()>,
    url: String,
    base: String,
    head: String,
    work: GitRepo,
    bare: std::path::PathBuf,
    _daemon: GitDaemon,
    _served: tempfile::TempDir,
    _mirrors: tempfile::TempDir,
    n: std::sync::atomic::AtomicU32,
}

impl Drop for Gh {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

const MANIFEST: &str = r#"{ "dependencies": { "express": "4.19.2" } }"#;

/// `base` (express 4.19.2), and on `feature` a minor express upgrade (category 2) written by
/// `author` (`Name <email>`).
fn work_repo(author: &str) -> (GitRepo, String, String) {
    let r = GitRepo::new();
    r.write("package.json", MANIFEST);
    let base = r.commit("base");
    r.branch("feature");
    r.write("package.json", &MANIFEST.replace("4.19.2", "4.21.0"));
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "--author", author, "-m", "bump express"]);
    let head = r.head();
    r.checkout("main");
    (r, base, head)
}

async fn start(backend: Backend, author: &str) -> Gh {
    start_with(backend, author, POLICY).await
}

async fn start_with(backend: Backend, author: &str, policy: &str) -> Gh {
    let (work, base, head) = work_repo(author);
    let served = tempfile::tempdir().unwrap();
    let bare = gitserver::publish(work.path(), served.path(), "Codertocat/Hello-World.git");
    changegate_testkit::git_in(&bare, &["update-ref", "refs/pull/2/head", &head]);
    let daemon = GitDaemon::start(served.path());
    let mdir = tempfile::tempdir().unwrap();
    let config = MirrorConfig {
        remotes: vec![RemoteConfig {
            prefix: daemon.prefix(),
            ..RemoteConfig::default()
        }],
        fetch_timeout_secs: Some(20),
        ..MirrorConfig::default()
    };
    let mirrors = Arc::new(Mirrors::new(mdir.path(), &config).unwrap());
    let captured: Arc<Mutex<Option<AppState>>> = Arc::default();
    let slot = captured.clone();
    let srv = TestServer::start_full(
        backend,
        policy_with(policy),
        t(TUE),
        Options {
            mirrors: Some(mirrors),
            ..Options::default()
        },
        move |s| {
            s.webhooks = Webhooks {
                github_secrets: Arc::new(vec![Secret::new(SECRET).unwrap()]),
                ..Webhooks::default()
            };
            *slot.lock().unwrap() = Some(s.clone());
        },
    )
    .await;
    let state = captured.lock().unwrap().take().unwrap();
    let worker = changegate_server::deliveries::spawn(
        state,
        WorkerConfig {
            poll: Duration::from_millis(50),
            backoff: SignedDuration::from_millis(100),
            ..WorkerConfig::default()
        },
    );
    let url = daemon.url("Codertocat/Hello-World.git");
    Gh {
        srv,
        worker,
        url,
        base,
        head,
        work,
        bare,
        _daemon: daemon,
        _served: served,
        _mirrors: mdir,
        n: Default::default(),
    }
}

impl Gh {
    /// POST `body` as GitHub would: signed with `secret`, with a delivery GUID.
    async fn send_as(
        &self,
        event: &str,
        body: &Value,
        guid: &str,
        signature: Option<String>,
    ) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut r = self
            .srv
            .http
            .post(format!("{}{PATH}", self.srv.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", guid)
            .body(bytes.clone());
        if let Some(sig) = signature {
            r = r.header("x-hub-signature-256", sig);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Send, signed, with a fresh GUID; expect it stored, then wait until it is processed and
    /// return its outcome.
    async fn deliver(&self, event: &str, body: &Value) -> Value {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guid = format!("72d3162e-cc78-11e3-81ab-4c9367dc{n:04}");
        let bytes = serde_json::to_vec(body).unwrap();
        let (st, b) = self
            .send_as(event, body, &guid, Some(sign(SECRET, &bytes)))
            .await;
        assert_eq!(st, 202, "{b}");
        let row = b["delivery"]["row"].as_i64().unwrap();
        self.outcome(row).await
    }

    async fn deliveries(&self) -> Vec<Value> {
        let (st, b) = self.srv.get("/api/v1/deliveries", &self.srv.admin).await;
        assert_eq!(st, 200, "{b}");
        b["deliveries"].as_array().unwrap().clone()
    }

    async fn outcome(&self, row: i64) -> Value {
        for _ in 0..600 {
            let d = self.deliveries().await;
            let d = d.iter().find(|d| d["row"] == row).unwrap();
            if d["status"] == "done" {
                return d["outcome"].clone();
            }
            assert_ne!(d["status"], "failed", "{d}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "delivery {row} not processed: {:#?}",
            self.deliveries().await
        );
    }

    async fn change(&self, id: &str) -> Value {
        let (st, b) = self
            .srv
            .get(&format!("/api/v1/changes/{id}"), &self.srv.admin)
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        self.srv.events(kind).await
    }

    /// GitHub's `pull_request` example with this action, for the served repository.
    fn pr(&self, fixture_name: &str, head: &str) -> Value {
        let mut p = fixture(fixture_name);
        p["pull_request"]["base"]["sha"] = json!(self.base);
        p["pull_request"]["head"]["sha"] = json!(head);
        p["pull_request"]["base"]["repo"]["clone_url"] = json!(self.url);
        p["repository"]["clone_url"] = json!(self.url);
        p
    }

    fn review(&self, login: &str, id: u64, state: &str, commit: &str) -> Value {
        let mut p = fixture("pull_request_review.submitted");
        p["review"]["state"] = json!(state);
        p["review"]["user"]["login"] = json!(login);
        p["review"]["user"]["id"] = json!(id);
        p["review"]["commit_id"] = json!(commit);
        p["review"]["body"] = json!("Looks good");
        p
    }

    fn comment(&self, login: &str, id: u64, body: &str) -> Value {
        let mut p = fixture("issue_comment.created");
        p["comment"]["user"]["id"] = json!(id);
        p["issue"]["number"] = json!(2);
        p["issue"]["pull_request"] =
            json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2"});
        p["comment"]["user"]["login"] = json!(login);
        p["comment"]["body"] = json!(body);
        p
    }

    async fn open(&self) -> Value {
        let out = self
            .deliver("pull_request", &self.pr("pull_request.opened", &self.head))
            .await;
        assert_eq!(out["result"], "created", "{out}");
        self.change(CHANGE).await
    }
}

/// GitHub's documented test vector (docs.github.com, "Validating webhook deliveries").
#[test]
fn githubs_documented_hmac_test_vector() {
    let secret = Secret::new("It's a Secret to Everybody").unwrap();
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        format!("sha256={}", secret.sign_hex(b"Hello, World!")),
        header
    );
    assert_eq!(
        changegate_server::signature::verify_prefixed(
            std::slice::from_ref(&secret),
            "sha256=",
            Some(header),
            b"Hello, World!"
        ),
        Ok(())
    );
    assert!(
        changegate_server::signature::verify_prefixed(
            &[secret],
            "sha256=",
            Some(header),
            b"Hello, World?"
        )
        .is_err()
    );
}

both!(forged_and_replayed_deliveries_store_nothing_more);
async fn forged_and_replayed_deliveries_store_nothing_more(backend: Backend) {
    let gh = start(backend, "Ann <ann@example.com>").await;
    let body = gh.pr("pull_request.opened", &gh.head);
    let bytes = serde_json::to_vec(&body).unwrap();
    let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    for sig in [
        None,
        Some(sign("another-secret", &bytes)),
        Some(format!("sha256={}", "0".repeat(64))),
        Some(sign(SECRET, &bytes).replace("sha256=", "sha1=")),
        Some(sign(SECRET, b"another body")),
    ] {
        let (st, b) = gh.send_as("pull_request", &body, guid, sig).await;
        assert_eq!(st, 401, "{b}");
        assert_eq!(b["code"], "github-signature-invalid");
    }
    assert!(
        gh.deliveries().await.is_empty(),
        "a refused delivery stores nothing"
    );
    let (st, b) = gh
        .send_as("pull_request", &body, guid, Some(sign(SECRET, &bytes)))
        .await;
    assert_eq!(st, 202, "{b}");
    // GitHub's redelivery: same GUID. Nothing stored or processed again.
    let (st, again) = gh
        .send_as("pull_request", &body, guid, Some(sign(SECRET, &bytes)))
        .await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["delivery"]["duplicate"], true);
    assert_eq!(gh.deliveries().await.len(), 1);
    gh.outcome(b["delivery"]["row"].as_i64().unwrap()).await;
    assert_eq!(gh.events("change.created").await.len(), 1);
    // Events changegate does not act on are answered and not stored; ping answers 200.
    let ping = fixture("ping");
    let pb = serde_json::to_vec(&ping).unwrap();
    let (st, _) = gh
        .send_as("ping", &ping, "p-1", Some(sign(SECRET, &pb)))
        .await;
    assert_eq!(st, 200);
    let mut labeled = body.clone();
    labeled["action"] = json!("labeled");
    let lb = serde_json::to_vec(&labeled).unwrap();
    let (st, b) = gh
        .send_as("pull_request", &labeled, "l-1", Some(sign(SECRET, &lb)))
        .await;
    assert_eq!((st, &b["ignored"]), (202, &json!(true)), "{b}");
    let (st, b) = gh
        .send_as(
            "pull_request",
            &body,
            "bad guid!",
            Some(sign(SECRET, &bytes)),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(gh.deliveries().await.len(), 1);
}

both!(a_pull_request_through_reviews_ci_and_deployment);
async fn a_pull_request_through_reviews_ci_and_deployment(backend: Backend) {
    let gh = start(backend, "Ann <ann@example.com>").await;
    let c = gh.open().await;
    // Classified by the server from the remote: express 4.19.2 → 4.21.0 is dep-minor.
    assert_eq!(c["change"]["classification"]["category"], 2, "{c}");
    assert_eq!(
        c["change"]["classification"]["facets"][0]["kind"],
        "dep-minor"
    );
    assert_eq!(
        c["change"]["provenance"]["classification"]["observed"],
        json!(["repository"])
    );
    assert_eq!(c["change"]["repository"], gh.url.as_str());
    assert_eq!(c["change"]["head_commit"], gh.head.as_str());
    assert_eq!(c["change"]["base_commit"], gh.base.as_str());
    assert_eq!(
        c["change"]["pr_link"],
        "https://github.com/Codertocat/Hello-World/pull/2"
    );
    assert_eq!(
        c["change"]["title"],
        "Update the README with new information."
    );
    // The PR's author (unmapped: `github:LOGIN`) and the commit's author from git.
    assert_eq!(
        c["change"]["authors"],
        json!(["github:codertocat", "ann@example.com", "dev@example.com"])
    );
    assert_eq!(c["status"], "in-review");
    assert_eq!(c["pull_request"]["repository"], REPO);
    let created = gh.events("change.created").await;
    assert_eq!(created[0]["actor"], "integration:github");
    assert_eq!(
        created[0]["details"]["delivery"]["source"], "github",
        "{}",
        created[0]
    );

    // Two approvals through PR reviews: Bob (backend lead) and Sam (SRE lead, by login and id).
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("bob-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(
        (&out["result"], &out["role"]),
        (&json!("approved"), &json!("backend-lead")),
        "{out}"
    );
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("SAM-gh", 4242, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["role"], "sre-lead", "{out}");
    let c = gh.change(CHANGE).await;
    assert_eq!(
        c["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["person"].as_str().unwrap(), a["role"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("bob", "backend-lead"), ("sam", "sre-lead")]
    );
    let granted = gh.events("approval.granted").await;
    assert_eq!(granted.len(), 2);
    assert_eq!(granted[0]["actor"], "bob");
    // Processing the same review again (a second delivery of it) changes nothing.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("bob-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "unchanged", "{out}");
    let (_, d) = gh
        .srv
        .get(&format!("/api/v1/changes/{CHANGE}/decision"), &gh.srv.admin)
        .await;
    let missing: Vec<&Value> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["code"] == "approval-missing")
        .collect();
    assert!(missing.is_empty(), "{d}");

    // CI evidence from GitHub Actions, attested by the integration.
    let mut run = fixture("workflow_run.completed");
    run["workflow_run"]["head_sha"] = json!(gh.head);
    run["workflow_run"]["pull_requests"][0]["number"] = json!(2);
    run["repository"]["full_name"] = json!(REPO);
    let out = gh.deliver("workflow_run", &run).await;
    assert_eq!(out["changes"][0]["items"], json!(["tests-pass"]), "{out}");
    let c = gh.change(CHANGE).await;
    let att = &c["attestations"][0];
    assert_eq!(
        (&att["person"], &att["item"], &att["head_commit"]),
        (
            &json!("integration:github"),
            &json!("tests-pass"),
            &json!(gh.head)
        )
    );
    // A failed run is no evidence.
    run["workflow_run"]["conclusion"] = json!("failure");
    let out = gh.deliver("workflow_run", &run).await;
    assert_eq!(out["result"], "not-evidence", "{out}");

    // Merged, then deployed: the deployment's start and finish in the audit trail.
    let mut closed = gh.pr("pull_request.closed", &gh.head);
    closed["pull_request"]["merged"] = json!(true);
    closed["pull_request"]["merge_commit_sha"] = json!("c4295bd74fb0f4fda03689c3df3f2803b658fd85");
    let out = gh.deliver("pull_request", &closed).await;
    assert_eq!(out["result"], "merged", "{out}");
    let c = gh.change(CHANGE).await;
    assert_eq!(
        c["pull_request"]["merge_commit"],
        "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    );
    assert_eq!(gh.events("change.merged").await.len(), 1);
    let mut started = fixture("deployment_status.in_progress");
    started["deployment"]["sha"] = json!("c4295bd74fb0f4fda03689c3df3f2803b658fd85");
    started["repository"]["full_name"] = json!(REPO);
    let out = gh.deliver("deployment_status", &started).await;
    assert_eq!(out["changes"][0]["phase"], "started", "{out}");
    let mut done = fixture("deployment_status.success");
    done["deployment"]["sha"] = json!(gh.head);
    done["repository"]["full_name"] = json!(REPO);
    let out = gh.deliver("deployment_status", &done).await;
    assert_eq!(out["changes"][0]["phase"], "finished", "{out}");
    let finish = gh.events("deployment.finish").await;
    assert_eq!(finish.len(), 1);
    let f = &finish[0];
    assert_eq!(f["change_id"], CHANGE, "{f}");
    assert_eq!(f["details"]["environment"], "production");
    assert_eq!(f["details"]["sha"], gh.head.as_str());
    assert_eq!(f["what"]["commit-sha"], gh.head.as_str());
    assert_eq!(gh.events("deployment.start").await.len(), 1);
    let c = gh.change(CHANGE).await;
    assert_eq!(c["deployments"].as_array().unwrap().len(), 2, "{c}");
    // The audit log still verifies with every state the webhooks wrote.
    let report = gh.srv.db.store().verify(None).await.unwrap();
    assert!(report.ok(), "{report:?}");
}

both!(pushes_invalidate_approvals_and_closing_cancels);
async fn pushes_invalidate_approvals_and_closing_cancels(backend: Backend) {
    let gh = start(backend, "Ann <ann@example.com>").await;
    gh.open().await;
    gh.deliver(
        "pull_request_review",
        &gh.review("bob-gh", 1, "approved", &gh.head),
    )
    .await;
    // A push to the PR: the server fetches the new head and reclassifies.
    gh.work.checkout("feature");
    gh.work
        .write("package.json", &MANIFEST.replace("4.19.2", "5.0.0"));
    let head2 = gh.work.commit("express 5");
    gh.work.checkout("main");
    gitserver::push_all(gh.work.path(), &gh.bare);
    changegate_testkit::git_in(&gh.bare, &["update-ref", "refs/pull/2/head", &head2]);
    let mut sync = gh.pr("pull_request.synchronize", &head2);
    sync["sender"]["login"] = json!("ann-gh");
    let out = gh.deliver("pull_request", &sync).await;
    assert_eq!(out["result"], "pushed", "{out}");
    let c = gh.change(CHANGE).await;
    assert_eq!(c["change"]["head_commit"], head2.as_str());
    assert_eq!(c["change"]["last_pusher"], "ann");
    assert_eq!(
        c["change"]["classification"]["category"], 3,
        "major upgrade: {c}"
    );
    // Bob's approval was for the old head: it no longer counts.
    let (_, d) = gh
        .srv
        .get(&format!("/api/v1/changes/{CHANGE}/decision"), &gh.srv.admin)
        .await;
    assert!(
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "approval-stale"),
        "{d}"
    );
    // The same synchronize again: nothing.
    let out = gh.deliver("pull_request", &sync).await;
    assert_eq!(out["result"], "unchanged", "{out}");
    assert_eq!(gh.events("change.classified").await.len(), 1);

    // A review approval for the new head, then dismissed: withdrawn.
    gh.deliver(
        "pull_request_review",
        &gh.review("bob-gh", 1, "approved", &head2),
    )
    .await;
    let mut dismissed = fixture("pull_request_review.dismissed");
    dismissed["review"]["user"]["login"] = json!("bob-gh");
    dismissed["review"]["commit_id"] = json!(head2);
    let out = gh.deliver("pull_request_review", &dismissed).await;
    assert_eq!(out["result"], "withdrawn", "{out}");
    let c = gh.change(CHANGE).await;
    assert!(
        c["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["head_commit"] != head2.as_str()),
        "{c}"
    );

    // Closed by someone who did not write it: the authority table refuses (an author cancels).
    let mut closed = gh.pr("pull_request.closed", &head2);
    closed["sender"]["login"] = json!("paula-gh");
    let out = gh.deliver("pull_request", &closed).await;
    assert_eq!(out["result"], "refused", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("author-required"),
        "{out}"
    );
    // Closed by the author (Ann pushed, so she is the last pusher): cancelled.
    closed["sender"]["login"] = json!("ann-gh");
    let out = gh.deliver("pull_request", &closed).await;
    assert_eq!(out["result"], "cancelled", "{out}");
    assert_eq!(gh.change(CHANGE).await["status"], "cancelled");
    // Reopened: a new change for the same pull request.
    let out = gh
        .deliver("pull_request", &gh.pr("pull_request.reopened", &head2))
        .await;
    assert_eq!(out["result"], "created", "{out}");
    assert_eq!(out["change"], format!("{CHANGE}.2"));
}

both!(reviewers_and_commenters_need_the_authority_the_api_needs);
async fn reviewers_and_commenters_need_the_authority_the_api_needs(backend: Backend) {
    // The commits are Bob's; the pull request says Ann opened it.
    let gh = start(backend, "Bob <bob@example.com>").await;
    gh.srv.alias("bob@example.com", "bob").await;
    let mut opened = gh.pr("pull_request.opened", &gh.head);
    opened["pull_request"]["user"]["login"] = json!("ann-gh");
    let out = gh.deliver("pull_request", &opened).await;
    assert_eq!(out["result"], "created", "{out}");
    let c = gh.change(CHANGE).await;
    assert_eq!(
        c["change"]["authors"],
        json!(["ann", "bob", "dev@example.com"])
    );

    // Bob wrote the commits: his review cannot approve (separation of duties), whatever the
    // payload says the author is.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("bob-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "refused", "{out}");
    // An unmapped reviewer.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("mallory", 9, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "refused", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("no person"),
        "{out}"
    );
    // A login mapped with an id, sent with another id (a re-registered login): no person.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("sam-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "refused", "{out}");
    // A reviewer who holds no required role.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("paula-gh", 5, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "refused", "{out}");
    // A commented (not approving) review approves nothing.
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("sam-gh", 4242, "commented", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "ignored", "{out}");
    // The approve command by someone who does not hold the role: the gate refuses it.
    let out = gh
        .deliver(
            "issue_comment",
            &gh.comment("paula-gh", 5, "/changegate approve sre-lead"),
        )
        .await;
    assert_eq!(out["commands"][0]["result"], "refused", "{out}");
    assert!(
        out["commands"][0]["error"]
            .as_str()
            .unwrap()
            .contains("approval-unauthorized"),
        "{out}"
    );
    assert!(
        gh.change(CHANGE).await["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(gh.events("approval.granted").await.is_empty());
    // By the holder: approved in that role; `explain` answers the decision.
    let out = gh
        .deliver(
            "issue_comment",
            &gh.comment(
                "sam-gh",
                4242,
                "Ship it\n/changegate approve sre-lead\n/changegate explain",
            ),
        )
        .await;
    assert_eq!(out["commands"][0]["result"], "approved", "{out}");
    assert_eq!(out["commands"][1]["result"], "explained", "{out}");
    assert_eq!(out["commands"][1]["allowed"], false, "{out}");
    assert_eq!(gh.events("approval.granted").await.len(), 1);
}

both!(approvals_from_github_are_opt_in);
async fn approvals_from_github_are_opt_in(backend: Backend) {
    // The seed's `approvals = "off"`: neither a review nor a command approves.
    let off = POLICY.replace("approvals = \"reviews\"", "approvals = \"off\"");
    let gh = start_with(backend, "Ann <ann@example.com>", &off).await;
    gh.open().await;
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("bob-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "ignored", "{out}");
    let out = gh
        .deliver(
            "issue_comment",
            &gh.comment("bob-gh", 1, "/changegate approve backend-lead"),
        )
        .await;
    assert_eq!(out["commands"][0]["result"], "ignored", "{out}");
    assert!(
        gh.change(CHANGE).await["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    drop(gh);
    // `commands`: a review approves only when it names the role.
    let commands = POLICY.replace("approvals = \"reviews\"", "approvals = \"commands\"");
    let gh = start_with(backend, "Ann <ann@example.com>", &commands).await;
    gh.open().await;
    let out = gh
        .deliver(
            "pull_request_review",
            &gh.review("bob-gh", 1, "approved", &gh.head),
        )
        .await;
    assert_eq!(out["result"], "ignored", "{out}");
    let mut named = gh.review("bob-gh", 1, "approved", &gh.head);
    named["review"]["body"] = json!("/changegate approve backend-lead");
    let out = gh.deliver("pull_request_review", &named).await;
    assert_eq!(
        (&out["result"], &out["role"]),
        (&json!("approved"), &json!("backend-lead")),
        "{out}"
    );
}

//! Issue 15, "team membership read from GitHub teams where configured", on SQLite and
//! PostgreSQL. The policy's `backend-lead` is held by `team:backend`, which
//! `[integrations.github] teams` maps to the GitHub team `acme-org/backend-leads`. The server,
//! as a GitHub App, reads the team's members from the local stand-in of GitHub's REST API
//! (`GET /orgs/{org}/teams/{team_slug}/members`, paginated, checked against GitHub's OpenAPI
//! description like every other call) with its installation token, and uses them for the
//! authority of approvals from PR reviews and comments: a person (mapped by GitHub login) in the
//! team holds the role, one who is not is refused; the members are kept `team_ttl_secs`, and
//! once read again after GitHub removed someone, their approval no longer counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use changegate_server::AppState;
use changegate_server::deliveries::WorkerConfig;
use changegate_server::github_out::app::{AppAuth, Auth, Outgoing};
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::fake_github::FakeGitHub;
use changegate_testkit::gate::{TUE, policy_with, t};
use changegate_testkit::github_api;
use changegate_testkit::server::{Backend, Options, TestServer};
use jiff::SignedDuration;
use serde_json::{Value, json};

const SECRET: &str = "gh-webhook-secret";
const REPO: &str = "Codertocat/Hello-World";
const CHANGE: &str = "gh-codertocat-hello-world-2";
const TEAM: &str = "acme-org/backend-leads";
const INSTALLATION: u64 = 4_242;

/// Category 2 needs a backend lead and an SRE lead. The backend lead is whoever GitHub lists in
/// the team; `sam` holds `sre-lead` by name; `carl` and `bob` are mapped by login, nothing more.
const POLICY: &str = r#"
[categories.medium-risk]
approvers = ["backend-lead", "sre-lead"]
deploy_approvers = []

[roles.backend-lead]
holders = ["team:backend"]

[people.bob]
github = "bob-gh"
github_id = 1001
[people.sam]
github = "sam-gh"
[people.carl]
github = "carl-gh"

[integrations.github]
approvals = "reviews"
teams = { backend = "acme-org/backend-leads" }
team_ttl_secs = 300
"#;

const MANIFEST: &str = r#"{ "dependencies": { "express": "4.19.2" } }"#;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Env {
    gh: FakeGitHub,
    srv: TestServer,
    worker: tokio::task::JoinHandle<()>,
    base: String,
    head: String,
    _root: tempfile::TempDir,
    n: std::sync::atomic::AtomicU32,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

/// 130 unmapped members first, so bob (GitHub id 1001) is on the second page of 100.
fn members(with_bob: bool) -> Vec<(String, u64)> {
    let mut m: Vec<(String, u64)> = (1..=130).map(|i| (format!("member-{i}"), i)).collect();
    if with_bob {
        m.push(("bob-gh".into(), 1001));
    }
    m
}

fn set_team(gh: &FakeGitHub, with_bob: bool) {
    let m = members(with_bob);
    let refs: Vec<(&str, u64)> = m.iter().map(|(l, i)| (l.as_str(), *i)).collect();
    gh.rest.set_team(TEAM, &refs);
}

async fn start(backend: Backend) -> Env {
    // The repository under the server's repo root, as `owner/name`.
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(REPO);
    std::fs::create_dir_all(&path).unwrap();
    let r = GitRepo::init_at(&path);
    r.write("package.json", MANIFEST);
    let base = r.commit("base");
    r.write("package.json", &MANIFEST.replace("4.19.2", "4.21.0"));
    let head = r.commit("bump express");

    let gh = FakeGitHub::start().await;
    gh.rest
        .expect_app(77, github_api::TEST_APP_PUBLIC_KEY, INSTALLATION, &[REPO]);
    set_team(&gh, true);
    let out = Arc::new(Outgoing::new(
        &gh.api,
        Auth::App(AppAuth::from_pem(77, github_api::TEST_APP_KEY.as_bytes()).unwrap()),
    ));
    let captured: Arc<Mutex<Option<AppState>>> = Arc::default();
    let slot = captured.clone();
    let srv = TestServer::start_full(
        backend,
        policy_with(POLICY),
        t(TUE),
        Options {
            repo_root: Some(root.path().to_path_buf()),
            ..Options::default()
        },
        move |s| {
            s.webhooks = Webhooks {
                github_secrets: Arc::new(vec![Secret::new(SECRET).unwrap()]),
                ..Webhooks::default()
            };
            s.github_out = Some(out);
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
    Env {
        gh,
        srv,
        worker,
        base,
        head,
        _root: root,
        n: Default::default(),
    }
}

impl Env {
    async fn deliver(&self, event: &str, body: &Value) -> Value {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guid = format!("6a1c2b9e-0000-11f0-8000-00000000{n:04}");
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = format!("sha256={}", Secret::new(SECRET).unwrap().sign_hex(&bytes));
        let resp = self
            .srv
            .http
            .post(format!("{}/api/v1/webhooks/github", self.srv.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", guid)
            .header("x-hub-signature-256", sig)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let b: Value = resp.json().await.unwrap();
        let row = b["delivery"]["row"].as_i64().unwrap();
        for _ in 0..600 {
            let (_, list) = self.srv.get("/api/v1/deliveries", &self.srv.admin).await;
            let d = list["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["row"] == row)
                .cloned()
                .unwrap();
            if d["status"] == "done" {
                return d["outcome"].clone();
            }
            assert_ne!(d["status"], "failed", "{d}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("delivery {row} not processed");
    }

    /// The pull request opened (base and head of the repository): the delivery's outcome.
    async fn open_pr(&self) -> Value {
        let mut opened = fixture("pull_request.opened");
        opened["pull_request"]["base"]["sha"] = json!(self.base);
        opened["pull_request"]["head"]["sha"] = json!(self.head);
        self.deliver("pull_request", &opened).await
    }

    fn review(&self, login: &str, id: u64) -> Value {
        let mut p = fixture("pull_request_review.submitted");
        p["review"]["state"] = json!("approved");
        p["review"]["user"]["login"] = json!(login);
        p["review"]["user"]["id"] = json!(id);
        p["review"]["commit_id"] = json!(self.head);
        p["review"]["body"] = json!("Looks good");
        p
    }

    fn comment(&self, login: &str, id: u64, body: &str) -> Value {
        let mut p = fixture("issue_comment.created");
        p["issue"]["number"] = json!(2);
        p["issue"]["pull_request"] =
            json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2"});
        p["comment"]["user"]["login"] = json!(login);
        p["comment"]["user"]["id"] = json!(id);
        p["comment"]["body"] = json!(body);
        p
    }

    /// The audit records of `kind`, in log order.
    async fn events(&self, kind: &str) -> Vec<Value> {
        self.srv.events(kind).await
    }

    fn member_requests(&self) -> Vec<github_api::Recorded> {
        self.gh.rest.requests("teams/list-members-in-org")
    }

    async fn approvals(&self) -> Vec<(String, String)> {
        let (st, c) = self
            .srv
            .get(&format!("/api/v1/changes/{CHANGE}"), &self.srv.admin)
            .await;
        assert_eq!(st, 200, "{c}");
        c["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["person"].as_str().unwrap().to_string(),
                    a["role"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn missing_roles(&self) -> Vec<String> {
        let (st, d) = self
            .srv
            .get(
                &format!("/api/v1/changes/{CHANGE}/decision"),
                &self.srv.admin,
            )
            .await;
        assert_eq!(st, 200, "{d}");
        serde_json::from_value(d["missing_roles"].clone()).unwrap()
    }
}

both!(github_team_members_hold_the_role_and_others_are_refused);
async fn github_team_members_hold_the_role_and_others_are_refused(backend: Backend) {
    let e = start(backend).await;
    let out = e.open_pr().await;
    assert_eq!(out["result"], "created", "{out}");
    assert!(e.member_requests().is_empty(), "read only for approvals");

    // sam holds sre-lead by name; approving reads the team (two pages) with the App's
    // installation token.
    let out = e
        .deliver("pull_request_review", &e.review("sam-gh", 7))
        .await;
    assert_eq!(
        (out["result"].as_str(), out["role"].as_str()),
        (Some("approved"), Some("sre-lead")),
        "{out}"
    );
    let reads = e.member_requests();
    assert_eq!(reads.len(), 2, "131 members, 100 a page");
    assert_eq!(reads[0].query, "per_page=100&page=1");
    assert_eq!(reads[1].query, "per_page=100&page=2");
    let token = e.gh.rest.tokens()[0].1.clone();
    assert!(
        reads
            .iter()
            .all(|r| r.authorization.as_deref() == Some(format!("Bearer {token}").as_str()))
    );
    let teams = &out["github_teams"][0];
    assert_eq!(teams["members"], json!(["bob"]), "{out}");
    assert_eq!(teams["unmapped"].as_array().unwrap().len(), 130);
    // Recorded as the team's membership, observed from GitHub and audited.
    let synced = e.events("team.synced").await;
    assert_eq!(synced.len(), 1);
    let rec = synced[0].clone();
    let details = &rec["details"];
    assert_eq!(details["github_team"], TEAM, "{rec}");
    assert_eq!(details["op"]["members"], json!(["bob"]), "{rec}");
    assert_eq!(details["observed"], "github");
    assert_eq!(rec["actor"], "integration:github");

    // carl is mapped by login but not in the team: asking for backend-lead is refused, and
    // nothing is read again (the members are kept five minutes).
    let out = e
        .deliver(
            "issue_comment",
            &e.comment("carl-gh", 8, "/changegate approve backend-lead"),
        )
        .await;
    let r = &out["commands"][0];
    assert_eq!(r["result"], "refused", "{out}");
    assert!(
        r["error"].as_str().unwrap().contains("backend-lead"),
        "{out}"
    );
    assert_eq!(e.member_requests().len(), 2, "from the cache");
    assert_eq!(e.approvals().await, [("sam".into(), "sre-lead".into())]);

    // bob is in the team (by login and GitHub id): his review approves as backend lead.
    let out = e
        .deliver("pull_request_review", &e.review("bob-gh", 1001))
        .await;
    assert_eq!(
        (out["result"].as_str(), out["role"].as_str()),
        (Some("approved"), Some("backend-lead")),
        "{out}"
    );
    let granted = e.events("approval.granted").await;
    let bob = granted.iter().find(|g| g["actor"] == "bob").unwrap();
    assert!(
        bob.to_string().contains(r#""via":"team""#),
        "held through the team: {bob}"
    );
    assert!(e.missing_roles().await.is_empty());
    assert_eq!(e.member_requests().len(), 2);

    // GitHub removes bob from the team. Within the five minutes nothing changes; after them the
    // next approval reads the team again, bob's membership is gone, and his approval no longer
    // counts.
    set_team(&e.gh, false);
    e.srv
        .set_now(t(TUE).checked_add(SignedDuration::from_secs(301)).unwrap());
    let out = e
        .deliver(
            "issue_comment",
            &e.comment("bob-gh", 1001, "/changegate approve backend-lead"),
        )
        .await;
    assert_eq!(e.member_requests().len(), 4, "read again after the TTL");
    // The approval stays in the record (it was given by a holder); it no longer counts, and
    // approving again is refused like any non-holder's approval (not `unchanged`).
    assert_eq!(out["commands"][0]["result"], "refused", "{out}");
    assert_eq!(e.missing_roles().await, ["backend-lead"]);
    let (_, d) = e
        .srv
        .get(&format!("/api/v1/changes/{CHANGE}/decision"), &e.srv.admin)
        .await;
    assert!(
        d.to_string().contains("approval-unauthorized"),
        "bob no longer holds backend-lead: {d}"
    );
    let synced = e.events("team.synced").await;
    assert_eq!(synced.len(), 2);
    e.gh.rest.assert_conforming();
}

both!(an_unreadable_team_refuses_the_approval);
async fn an_unreadable_team_refuses_the_approval(backend: Backend) {
    let e = start(backend).await;
    // GitHub does not show the team (renamed, or the App may not read members).
    e.gh.rest
        .set_team("acme-org/someone-else", &[("bob-gh", 1001)]);
    e.gh.rest.clear_team(TEAM);
    e.open_pr().await;
    let out = e
        .deliver("pull_request_review", &e.review("bob-gh", 1001))
        .await;
    assert_eq!(out["result"], "refused", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains(TEAM),
        "names the team: {out}"
    );
    assert!(e.approvals().await.is_empty());
    e.gh.rest.assert_conforming();
}

both!(a_team_read_from_github_cannot_be_set_by_hand);
async fn a_team_read_from_github_cannot_be_set_by_hand(backend: Backend) {
    let e = start(backend).await;
    let before = e.srv.db.world().await.unwrap();
    // An admin setting the mapped team's members is refused (GitHub's list would overwrite it
    // at the next read), and nothing is written.
    let (status, body) = e
        .srv
        .put(
            "/api/v1/teams/backend",
            &e.srv.admin,
            &json!({ "members": ["carl"] }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "team-managed-by-github", "{body}");
    assert!(body["message"].as_str().unwrap().contains(TEAM), "{body}");
    let after = e.srv.db.world().await.unwrap();
    assert_eq!(after.version, before.version, "nothing written");
    // A team the policy does not map is still set by hand.
    let (status, body) = e
        .srv
        .put(
            "/api/v1/teams/release",
            &e.srv.admin,
            &json!({ "members": ["carl"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["teams"]["release"], json!(["carl"]), "{body}");
}

both!(api_and_dashboard_approvals_read_the_team_too);
/// An approval through the API (the dashboard's form takes the same path) reads the team like a
/// review's does: a member holds the role; once GitHub removed him and the members are read
/// again, he approves no longer; a team GitHub does not show refuses the approval, nothing
/// recorded.
async fn api_and_dashboard_approvals_read_the_team_too(backend: Backend) {
    let e = start(backend).await;
    e.open_pr().await;
    let bob = e.srv.token("bob").await;
    let approve = |token: String| {
        let srv = &e.srv;
        async move {
            srv.post(
                &format!("/api/v1/changes/{CHANGE}/approvals"),
                &token,
                &json!({ "role": "backend-lead" }),
            )
            .await
        }
    };
    let (st, b) = approve(bob.clone()).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(e.member_requests().len(), 2, "both pages read");
    assert_eq!(e.approvals().await, [("bob".into(), "backend-lead".into())]);
    assert_eq!(e.missing_roles().await, ["sre-lead"]);
    let synced = e.events("team.synced").await;
    let first = synced[0].clone();
    assert_eq!(first["details"]["request"]["person"], "bob", "{first}");

    // GitHub removes bob; after the TTL his approval through the API is refused.
    set_team(&e.gh, false);
    e.srv
        .set_now(t(TUE).checked_add(SignedDuration::from_secs(301)).unwrap());
    let (st, b) = approve(bob.clone()).await;
    assert_eq!(e.member_requests().len(), 4, "read again after the TTL");
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["code"], "approval-unauthorized", "{b}");
    assert_eq!(e.missing_roles().await, ["backend-lead", "sre-lead"]);

    // GitHub no longer shows the team: refused with GitHub named, nothing recorded.
    e.gh.rest.clear_team(TEAM);
    e.srv
        .set_now(t(TUE).checked_add(SignedDuration::from_secs(700)).unwrap());
    let before = e.approvals().await;
    let (st, b) = approve(e.srv.token("carl").await).await;
    assert_eq!(st, 502, "{b}");
    assert_eq!(b["code"], "github-error", "{b}");
    assert!(b["message"].as_str().unwrap().contains(TEAM), "{b}");
    assert_eq!(e.approvals().await, before);
    e.gh.rest.assert_conforming();
}

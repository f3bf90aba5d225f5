//! Issue 15 end to end: both halves of the GitHub integration in one server, on SQLite and
//! PostgreSQL. Signed deliveries in (GitHub's own example payloads from
//! `@octokit/webhooks-examples`, `tests/data/github`), the repository a real git repository served
//! by `git daemon` on loopback (the server fetches and classifies the pull request itself), and
//! everything the server sends back to GitHub going to the local stand-in of GitHub's REST API
//! (`changegate_testkit::github_api`), which checks each request against GitHub's published
//! OpenAPI description. The server's clock is a manual one.
//!
//! One pull request's life: opened → a `changegate` check run `action_required` on its head and
//! one PR comment; two approvals through reviews (and CI evidence from `workflow_run`) → the same
//! check run updated in place to `success`, the same comment edited; a deployment protection rule
//! requested on a Saturday → a status report through the callback, no approval; the clock at the
//! next slot → the scheduler approves, once; `deployment_status` success → `deployment.finish` in
//! the audit trail, which still verifies; no request the stand-in saw strays from GitHub's API
//! description.

#[path = "../../rollout/tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use changegate_server::AppState;
use changegate_server::deliveries::WorkerConfig;
use changegate_server::github_out::app::{Auth, Outgoing};
use changegate_server::github_out::protection;
use changegate_server::github_out::render;
use changegate_server::mirror::{MirrorConfig, Mirrors, RemoteConfig};
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::fake_github::FakeGitHub;
use changegate_testkit::gate::{SAT, TUE, policy_with, t};
use changegate_testkit::github_api::protection_rule_requested;
use changegate_testkit::gitserver::{self, GitDaemon};
use changegate_testkit::server::{Backend, Options, TestServer};
use jiff::SignedDuration;
use serde_json::{Value, json};

const SECRET: &str = "gh-webhook-secret";
const PATH: &str = "/api/v1/webhooks/github";
const REPO: &str = "Codertocat/Hello-World";
const CHANGE: &str = "gh-codertocat-hello-world-2";
const DETAILS: &str = "https://changegate.example";
const RUN: u64 = 4_711;

/// Two approvals for a category-2 change (backend lead and SRE lead) through PR reviews, the
/// reviewers' GitHub logins. The pre-deployment checklist of category 2 is cut down to what this
/// scenario brings evidence for (CI from `workflow_run`; the automatic items), so that on a
/// Saturday only time stands in the way.
const POLICY: &str = r#"
[categories.medium-risk]
approvers = ["backend-lead", "sre-lead"]
deploy_approvers = []

[people.bob]
github = "bob-gh"
[people.sam]
github = "sam-gh"
github_id = 4242
[people.ann]
github = "ann-gh"

[integrations.github]
approvals = "reviews"

[checklist.pre.staging-smoke]
applies_to = [1, 3]
[checklist.pre.rollback-plan]
applies_to = [3]
[checklist.pre.feature-flags]
applies_to = [3]
[checklist.pre.dashboards]
applies_to = [3]
[checklist.pre.on-call-notified]
applies_to = [3]
"#;

const MANIFEST: &str = r#"{ "dependencies": { "express": "4.19.2" } }"#;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn sign(body: &[u8]) -> String {
    format!("sha256={}", Secret::new(SECRET).unwrap().sign_hex(body))
}

struct E2e {
    gh: FakeGitHub,
    srv: TestServer,
    state: AppState,
    worker: tokio::task::JoinHandle<()>,
    url: String,
    base: String,
    head: String,
    _work: GitRepo,
    _daemon: GitDaemon,
    _served: tempfile::TempDir,
    _mirrors: tempfile::TempDir,
    n: std::sync::atomic::AtomicU32,
}

impl Drop for E2e {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

async fn start(backend: Backend) -> E2e {
    start_with(backend, None).await
}

/// [`start`], the server reading metrics from the Prometheus of `rollouts` when given.
async fn start_with(
    backend: Backend,
    rollouts: Option<Arc<changegate_server::rollouts::Runtime>>,
) -> E2e {
    // `base` (express 4.19.2), and on `feature` a minor upgrade (category 2) written by Ann.
    let work = GitRepo::new();
    work.write("package.json", MANIFEST);
    let base = work.commit("base");
    work.branch("feature");
    work.write("package.json", &MANIFEST.replace("4.19.2", "4.21.0"));
    work.git(&["add", "-A"]);
    work.git(&[
        "commit",
        "-q",
        "--author",
        "Ann <ann@example.com>",
        "-m",
        "bump express",
    ]);
    let head = work.head();
    work.checkout("main");
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

    let gh = FakeGitHub::start().await;
    let mut out = Outgoing::new(&gh.api, Auth::Token("ghp_test".into()));
    out.base_url = Some(DETAILS.into());
    let out = Arc::new(out);
    let captured: Arc<Mutex<Option<AppState>>> = Arc::default();
    let slot = captured.clone();
    let srv = TestServer::start_full(
        backend,
        policy_with(POLICY),
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
            s.github_out = Some(out);
            s.rollouts = rollouts;
            *slot.lock().unwrap() = Some(s.clone());
        },
    )
    .await;
    let state = captured.lock().unwrap().take().unwrap();
    let worker = changegate_server::deliveries::spawn(
        state.clone(),
        WorkerConfig {
            poll: Duration::from_millis(50),
            backoff: SignedDuration::from_millis(100),
            ..WorkerConfig::default()
        },
    );
    let url = daemon.url("Codertocat/Hello-World.git");
    E2e {
        gh,
        srv,
        state,
        worker,
        url,
        base,
        head,
        _work: work,
        _daemon: daemon,
        _served: served,
        _mirrors: mdir,
        n: Default::default(),
    }
}

impl E2e {
    /// Send `body` signed as GitHub signs it, with a fresh delivery GUID; wait until the worker
    /// processed it and return its outcome.
    async fn deliver(&self, event: &str, body: &Value) -> Value {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guid = format!("9e2e0000-cc78-11e3-81ab-4c9367dc{n:04}");
        let bytes = serde_json::to_vec(body).unwrap();
        let resp = self
            .srv
            .http
            .post(format!("{}{PATH}", self.srv.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", &guid)
            .header("x-hub-signature-256", sign(&bytes))
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let b: Value = resp.json().await.unwrap();
        assert_eq!(status, 202, "{event}: {b}");
        let row = b["delivery"]["row"].as_i64().unwrap();
        for _ in 0..600 {
            let (st, list) = self.srv.get("/api/v1/deliveries", &self.srv.admin).await;
            assert_eq!(st, 200, "{list}");
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
        panic!("delivery {row} ({event}) not processed");
    }

    async fn change(&self) -> Value {
        let (st, b) = self
            .srv
            .get(&format!("/api/v1/changes/{CHANGE}"), &self.srv.admin)
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }

    async fn decision(&self) -> Value {
        let (st, b) = self
            .srv
            .get(
                &format!("/api/v1/changes/{CHANGE}/decision"),
                &self.srv.admin,
            )
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        self.srv.events(kind).await
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

    /// The one check run at the stand-in (asserting there is exactly one): its id and body.
    fn check_run(&self) -> (u64, Value) {
        let runs = self.gh.rest.check_runs();
        assert_eq!(runs.len(), 1, "one check run: {runs:#?}");
        let (id, run) = runs.into_iter().next().unwrap();
        (id, run)
    }

    /// The callbacks to the deployment protection rule endpoint, in order.
    fn callbacks(&self) -> Vec<Value> {
        self.gh
            .rest
            .reviews()
            .into_iter()
            .map(|(repo, run, body)| {
                assert!(
                    repo.eq_ignore_ascii_case(REPO) && run == RUN,
                    "{repo} {run}"
                );
                body
            })
            .collect()
    }
}

both!(a_pull_request_from_webhook_to_check_run_to_protection_rule_to_deployment);
async fn a_pull_request_from_webhook_to_check_run_to_protection_rule_to_deployment(
    backend: Backend,
) {
    let e = start(backend).await;
    // Ann's commit address is Ann (an alias an admin set), so she is the change's author.
    e.srv.alias("ann@example.com", "ann").await;

    // 1. Opened: created and classified by the server from the remote; a check run
    //    `action_required` on the head and one comment.
    let mut opened = fixture("pull_request.opened");
    opened["pull_request"]["base"]["sha"] = json!(e.base);
    opened["pull_request"]["head"]["sha"] = json!(e.head);
    opened["pull_request"]["base"]["repo"]["clone_url"] = json!(e.url);
    opened["repository"]["clone_url"] = json!(e.url);
    let out = e.deliver("pull_request", &opened).await;
    assert_eq!(out["result"], "created", "{out}");
    let c = e.change().await;
    assert_eq!(c["change"]["classification"]["category"], 2, "{c}");
    assert_eq!(
        c["change"]["classification"]["facets"][0]["kind"],
        "dep-minor"
    );
    assert_eq!(
        c["change"]["provenance"]["classification"]["observed"],
        json!(["repository"])
    );
    assert_eq!(c["change"]["head_commit"], e.head.as_str());
    let (run_id, run) = e.check_run();
    assert_eq!(run["name"], "changegate");
    assert_eq!(run["head_sha"], e.head.as_str());
    assert_eq!(run["conclusion"], "action_required", "{run}");
    assert_eq!(run["details_url"], format!("{DETAILS}/changes/{CHANGE}"));
    // The annotations come from the server's own classification of the fetched commits.
    let notes = e.gh.rest.annotations(run_id);
    assert!(
        !notes.is_empty() && notes.iter().all(|a| a["path"] == "package.json"),
        "{notes:?}"
    );
    let comments = e.gh.rest.comments(REPO, 2);
    assert_eq!(comments.len(), 1);
    let comment_id = comments[0]["id"].clone();
    assert!(
        comments[0]["body"]
            .as_str()
            .unwrap()
            .starts_with(&render::marker(CHANGE))
    );

    // 2. Two approvals through PR reviews from mapped holders of the required roles, and CI
    //    evidence: the same check run, updated in place to `success`; the comment edited.
    let out = e
        .deliver("pull_request_review", &e.review("bob-gh", 1))
        .await;
    assert_eq!(
        (&out["result"], &out["role"]),
        (&json!("approved"), &json!("backend-lead")),
        "{out}"
    );
    assert_eq!(
        e.check_run().1["conclusion"],
        "action_required",
        "one approval of two"
    );
    let out = e
        .deliver("pull_request_review", &e.review("sam-gh", 4242))
        .await;
    assert_eq!(out["role"], "sre-lead", "{out}");
    let (id2, run) = e.check_run();
    assert_eq!(id2, run_id, "updated in place");
    assert_eq!(run["conclusion"], "success", "{}", run["output"]["summary"]);
    let mut ci = fixture("workflow_run.completed");
    ci["workflow_run"]["head_sha"] = json!(e.head);
    ci["workflow_run"]["pull_requests"][0]["number"] = json!(2);
    ci["repository"]["full_name"] = json!(REPO);
    let out = e.deliver("workflow_run", &ci).await;
    assert_eq!(out["changes"][0]["items"], json!(["tests-pass"]), "{out}");
    assert_eq!(
        e.gh.rest.requests("checks/create").len(),
        1,
        "no second check run"
    );
    assert!(!e.gh.rest.requests("checks/update").is_empty());
    let comments = e.gh.rest.comments(REPO, 2);
    assert_eq!(comments.len(), 1, "one comment, edited in place");
    assert_eq!(comments[0]["id"], comment_id);
    assert!(!e.gh.rest.requests("issues/update-comment").is_empty());
    assert_eq!(e.gh.rest.requests("issues/create-comment").len(), 1);
    // The author marks it approved (the authority table: an author's transition).
    let ann = e.srv.token("ann").await;
    let (st, b) = e
        .srv
        .post(
            &format!("/api/v1/changes/{CHANGE}/ops"),
            &ann,
            &json!({"op": "transition", "event": "approve"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let d = e.decision().await;
    assert_eq!(d["allowed"], true, "on Tuesday in the window: {d}");

    // 3. A protection rule requested on a Saturday: only time stands in the way, so a status
    //    report through the callback and no approval.
    e.srv.set_now(t(SAT));
    let d = e.decision().await;
    assert_eq!(d["allowed"], false, "{d}");
    let rule = protection_rule_requested(&e.gh.api, REPO, RUN, "production", &e.head, 555);
    let out = e.deliver("deployment_protection_rule", &rule).await;
    assert_eq!(out["result"], "answered", "{out}");
    let calls = e.callbacks();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(
        calls[0].get("state").is_none(),
        "a status report, not an answer: {}",
        calls[0]
    );
    assert_eq!(calls[0]["environment_name"], "production");
    let report = calls[0]["comment"].as_str().unwrap();
    assert!(
        report.contains("waiting") && report.contains(CHANGE),
        "{report}"
    );
    let gates = e.srv.db.list_github_gates(10).await.unwrap();
    assert_eq!(gates.len(), 1);
    assert_eq!(gates[0].status, "pending");
    let slot = gates[0].due_at;
    assert!(slot > t(SAT), "due at the next slot, not now: {slot}");
    assert!(report.contains(&slot.to_string()), "names {slot}: {report}");
    // Before the slot the scheduler does nothing.
    e.srv
        .set_now(slot.checked_sub(SignedDuration::from_secs(1)).unwrap());
    assert_eq!(protection::run_once(&e.state).await.unwrap(), 0);
    assert_eq!(e.callbacks().len(), 1);
    // At the slot: approved through the callback, once.
    e.srv.set_now(slot);
    assert_eq!(protection::run_once(&e.state).await.unwrap(), 1);
    assert_eq!(
        protection::run_once(&e.state).await.unwrap(),
        0,
        "answered once"
    );
    let calls = e.callbacks();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let answers: Vec<&Value> = calls.iter().filter(|c| c.get("state").is_some()).collect();
    assert_eq!(answers.len(), 1, "{calls:#?}");
    assert_eq!(answers[0]["state"], "approved", "{}", answers[0]);
    assert_eq!(answers[0]["environment_name"], "production");
    assert_eq!(
        e.srv.db.list_github_gates(10).await.unwrap()[0].status,
        "approved"
    );
    let decisions = e.events(changegate_audit::kinds::GATE_DECISION).await;
    let results: Vec<&Value> = decisions.iter().map(|d| &d["outcome"]["result"]).collect();
    assert_eq!(
        results,
        [&json!("waiting"), &json!("allowed")],
        "{decisions:#?}"
    );

    // 4. The deployment ran: its success in the audit trail with environment and commit.
    let mut done = fixture("deployment_status.success");
    done["deployment"]["sha"] = json!(e.head);
    done["repository"]["full_name"] = json!(REPO);
    let out = e.deliver("deployment_status", &done).await;
    assert_eq!(out["changes"][0]["phase"], "finished", "{out}");
    let finish = e.events("deployment.finish").await;
    assert_eq!(finish.len(), 1, "{finish:#?}");
    let f = &finish[0];
    assert_eq!(f["change_id"], CHANGE, "{f}");
    assert_eq!(f["details"]["environment"], "production");
    assert_eq!(f["details"]["sha"], e.head.as_str());
    assert_eq!(f["what"]["commit-sha"], e.head.as_str());
    // Still exactly one approval sent, one check run, one comment.
    assert_eq!(
        e.callbacks()
            .iter()
            .filter(|c| c["state"] == "approved")
            .count(),
        1
    );
    assert_eq!(e.gh.rest.requests("checks/create").len(), 1);
    assert_eq!(e.gh.rest.comments(REPO, 2).len(), 1);
    let report = e.srv.db.store().verify(None).await.unwrap();
    assert!(report.ok(), "{report:?}");

    // 5. Every request the stand-in saw matched GitHub's OpenAPI description.
    assert!(e.gh.rest.rejections().is_empty());
    e.gh.rest.assert_conforming();
}

// Issue 17, "what every production change must carry", on the GitHub path: a pull request the
// server classified from the remote, approved through reviews, deployed as GitHub reports it
// (`deployment_status` in progress, then success), with the server reading the error rate and
// latency from its Prometheus at both: the report row has every field.
both!(a_github_deployment_fills_every_field_of_its_report_row);
async fn a_github_deployment_fills_every_field_of_its_report_row(backend: Backend) {
    use support::{Profile, Prometheus, TestService};
    let svc = TestService::start(Profile::healthy()).await;
    let prom = Prometheus::start(&[("chat", svc.addr)], Duration::from_secs(1)).await;
    prom.wait_for_samples(r#"service="chat""#, 3).await;
    let cfg = changegate_server::rollouts::RolloutConfig::from_toml(&format!(
        "prometheus = \"{}\"\nselector = 'service=\"chat\"'\n[actions]\nrollback = \"true\"\n[guard]\nrate_window = \"15s\"\n",
        prom.url
    ))
    .unwrap();
    let rt = changegate_server::rollouts::Runtime::new(cfg, None).unwrap();
    let e = start_with(backend, Some(Arc::new(rt))).await;
    e.srv.alias("ann@example.com", "ann").await;
    let mut opened = fixture("pull_request.opened");
    opened["pull_request"]["title"] = json!("CHAT-42: bump express");
    opened["pull_request"]["base"]["sha"] = json!(e.base);
    opened["pull_request"]["head"]["sha"] = json!(e.head);
    opened["pull_request"]["base"]["repo"]["clone_url"] = json!(e.url);
    opened["repository"]["clone_url"] = json!(e.url);
    let out = e.deliver("pull_request", &opened).await;
    assert_eq!(out["result"], "created", "{out}");
    let created = e.events("change.created").await;
    assert_eq!(
        created[0]["what"]["changed-files"],
        json!(["package.json"]),
        "the paths git lists for the PR's commits: {}",
        created[0]
    );
    e.deliver("pull_request_review", &e.review("bob-gh", 1))
        .await;
    e.deliver("pull_request_review", &e.review("sam-gh", 4242))
        .await;
    // The change remediates an incident (a P3: no freeze), linked by an SRE lead.
    let (st, b) = e
        .srv
        .post(
            "/api/v1/incidents",
            &e.srv.admin,
            &json!({"id": "INC-9", "severity": "P3", "title": "slow search", "commander": "bob"}),
        )
        .await;
    assert!(st == 200 || st == 201, "{b}");
    let sam = e.srv.token("sam").await;
    let (st, b) = e
        .srv
        .post(
            &format!("/api/v1/changes/{CHANGE}/ops"),
            &sam,
            &json!({"op": "remediates", "incident": "INC-9"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // GitHub deploys tag v1.4.0 of the head: in progress, then success, both by Bob.
    let mut status = fixture("deployment_status.success");
    status["deployment"]["sha"] = json!(e.head);
    status["deployment"]["ref"] = json!("v1.4.0");
    status["deployment_status"]["creator"]["login"] = json!("bob-gh");
    status["repository"]["full_name"] = json!(REPO);
    let mut running = status.clone();
    running["deployment_status"]["state"] = json!("in_progress");
    let out = e.deliver("deployment_status", &running).await;
    assert_eq!(out["changes"][0]["phase"], "started", "{out}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = e.deliver("deployment_status", &status).await;
    assert_eq!(out["changes"][0]["phase"], "finished", "{out}");
    let started = e.events("deployment.start").await;
    assert_eq!(
        started[0]["details"]["observed"]["phase"], "before",
        "{}",
        started[0]
    );
    let finish = e.events("deployment.finish").await;
    assert_eq!(
        finish[0]["details"]["observed"]["phase"], "after",
        "{}",
        finish[0]
    );
    assert!(
        finish[0]["when"]["duration"].as_i64().is_some(),
        "{}",
        finish[0]
    );

    let month = changegate_report::Period::containing(
        changegate_report::ReportKind::Monthly,
        e.srv.db.store().now(),
    );
    let (st, rep) = e
        .srv
        .get(&format!("/api/v1/reports/monthly/{month}"), &e.srv.admin)
        .await;
    assert_eq!(st, 200, "{rep}");
    let row = rep["body"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change_id"] == CHANGE)
        .cloned()
        .unwrap_or_else(|| panic!("{CHANGE} in the population: {rep:#}"));
    let d: changegate_report::Deployment = serde_json::from_value(row.clone()).unwrap();
    assert_eq!(d.commit.as_deref(), Some(e.head.as_str()), "{row:#}");
    assert_eq!(d.artifact_version.as_deref(), Some("v1.4.0"));
    assert_eq!(d.environment.as_deref(), Some("production"));
    assert_eq!(d.changed_files, ["package.json"]);
    assert_eq!(d.deployer, "bob");
    let mut approvers: Vec<&str> = d.approvals.iter().map(|a| a.person.as_str()).collect();
    approvers.sort_unstable();
    assert_eq!(approvers, ["bob", "sam"]);
    assert!(d.finished_at.is_some() && d.duration_s.is_some(), "{row:#}");
    assert!(d.pr_link.as_deref().unwrap().contains("/pull/2"), "{row:#}");
    assert_eq!(d.ticket.as_deref(), Some("CHAT-42"));
    assert_eq!(d.incident.as_deref(), Some("INC-9"));
    assert_eq!(d.outcome, changegate_report::facts::Outcome::Success);
    for (what, v, lo, hi) in [
        ("error rate before", d.error_rate_before, 0.0, 1.0),
        ("error rate after", d.error_rate_after, 0.0, 1.0),
        ("p95 before", d.latency_before_ms, 10.0, 250.0),
        ("p95 after", d.latency_after_ms, 10.0, 250.0),
    ] {
        let v = v.unwrap_or_else(|| panic!("{what} missing: {row:#}"));
        assert!((lo..=hi).contains(&v), "{what} = {v}");
    }
}

//! The delivery worker under a burst of GitHub deliveries, on SQLite and PostgreSQL: what makes
//! it keep up without giving up at-least-once processing or idempotency.
//!
//! - A run of pushes queued for one pull request is coalesced: the newest head is fetched and
//!   classified once, the older deliveries are `done` as superseded (their outcome names the one
//!   that superseded them) and audited (`delivery.superseded`, and the push's
//!   `change.classified` lists them). A delivery of anything else between two pushes ends the
//!   run: each side is processed on its own, in order.
//! - The server's observations are cached by (repository, base, head) of full commit ids: pull
//!   requests on the same commits read the repository once.
//! - Deliveries of different pull requests run concurrently and all end `done`, with every
//!   change write applied (a deployment of a commit several changes share reaches all of them).
//!
//! Timings are not asserted here; `cargo bench --bench webhook_burst` prints them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use changegate_server::AppState;
use changegate_server::deliveries::{self, WorkerConfig};
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_store::DeliveryStatus;
use changegate_testkit::GitRepo;
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, policy_with, t};
use changegate_testkit::server::{Backend, Options, TestServer};
use jiff::SignedDuration;
use serde_json::{Value, json};

const SECRET: &str = "gh-webhook-secret";
const REPO: &str = "Codertocat/Hello-World";
const CHANGE: &str = "gh-codertocat-hello-world-2";

const POLICY: &str = r#"
[categories.medium-risk]
approvers = ["backend-lead", "sre-lead"]
deploy_approvers = []
[people.bob]
github = "bob-gh"
[people.sam]
github = "sam-gh"
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
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Env {
    srv: TestServer,
    state: AppState,
    /// base, then one commit per express version.
    commits: Vec<String>,
    _root: tempfile::TempDir,
    n: std::sync::atomic::AtomicU32,
}

async fn start(backend: Backend) -> Env {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(REPO);
    std::fs::create_dir_all(&path).unwrap();
    let r = GitRepo::init_at(&path);
    let mut commits = Vec::new();
    for v in [
        "4.19.2", "4.19.3", "4.20.0", "4.21.0", "4.21.1", "4.21.2", "4.22.0",
    ] {
        r.write(
            "package.json",
            &format!(r#"{{ "dependencies": {{ "express": "{v}" }} }}"#),
        );
        commits.push(r.commit(&format!("express {v}")));
    }
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
            *slot.lock().unwrap() = Some(s.clone());
        },
    )
    .await;
    let state = captured.lock().unwrap().take().unwrap();
    Env {
        srv,
        state,
        commits,
        _root: root,
        n: Default::default(),
    }
}

fn cfg() -> WorkerConfig {
    WorkerConfig {
        owner: "burst-test".into(),
        poll: Duration::from_millis(20),
        backoff: SignedDuration::from_millis(100),
        ..WorkerConfig::default()
    }
}

impl Env {
    /// Store a signed delivery (no worker runs unless the test starts one); its row.
    async fn send(&self, event: &str, body: &Value) -> i64 {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guid = format!("0f7e4c2a-1111-11f0-9000-0000000{n:05}");
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
        b["delivery"]["row"].as_i64().unwrap()
    }

    /// Run the worker by hand until nothing is due; how many claims took something.
    async fn drain(&self) -> usize {
        let mut rounds = 0;
        while deliveries::run_once(&self.state, &cfg()).await.unwrap() > 0 {
            rounds += 1;
        }
        rounds
    }

    /// Wait until a running worker left nothing pending.
    async fn drained(&self) {
        let started = std::time::Instant::now();
        loop {
            let pending = self
                .deliveries()
                .await
                .iter()
                .filter(|d| d.status == DeliveryStatus::Pending)
                .count();
            if pending == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{pending} still pending"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn deliveries(&self) -> Vec<changegate_store::Delivery> {
        self.srv.db.list_deliveries(None, None, 1000).await.unwrap()
    }

    async fn outcome(&self, row: i64) -> Value {
        let d = self.deliveries().await;
        let d = d.iter().find(|d| d.row == row).unwrap();
        assert_eq!(d.status, DeliveryStatus::Done, "{d:?}");
        d.outcome.clone().unwrap()
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        self.srv.events(kind).await
    }

    fn opened(&self, number: u64, head: &str) -> Value {
        let mut p = fixture("pull_request.opened");
        p["number"] = json!(number);
        p["pull_request"]["number"] = json!(number);
        p["pull_request"]["base"]["sha"] = json!(self.commits[0]);
        p["pull_request"]["head"]["sha"] = json!(head);
        p
    }

    fn push(&self, head: &str, sender: &str) -> Value {
        let mut p = fixture("pull_request.synchronize");
        p["pull_request"]["base"]["sha"] = json!(self.commits[0]);
        p["pull_request"]["head"]["sha"] = json!(head);
        p["sender"]["login"] = json!(sender);
        p
    }

    fn review(&self, number: u64, login: &str, commit: &str) -> Value {
        let mut p = fixture("pull_request_review.submitted");
        p["pull_request"]["number"] = json!(number);
        p["review"]["state"] = json!("approved");
        p["review"]["user"]["login"] = json!(login);
        p["review"]["commit_id"] = json!(commit);
        p
    }

    async fn change(&self, id: &str) -> Value {
        let (st, b) = self
            .srv
            .get(&format!("/api/v1/changes/{id}"), &self.srv.admin)
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }
}

both!(a_run_of_pushes_is_classified_once_at_the_newest_head);
async fn a_run_of_pushes_is_classified_once_at_the_newest_head(backend: Backend) {
    let e = start(backend).await;
    let c = e.commits.clone();
    let opened = e.send("pull_request", &e.opened(2, &c[1])).await;
    e.drain().await;
    assert_eq!(e.outcome(opened).await["result"], "created");
    assert_eq!(e.state.observed.reads(), 1);

    // Three pushes queued before the worker looks: one fetch and classification, of the last.
    let p2 = e.send("pull_request", &e.push(&c[2], "ann-gh")).await;
    let p3 = e.send("pull_request", &e.push(&c[3], "bob-gh")).await;
    let p4 = e.send("pull_request", &e.push(&c[4], "sam-gh")).await;
    assert_eq!(e.drain().await, 1, "one claim did the run");
    assert_eq!(e.state.observed.reads(), 2, "only the newest head was read");
    let last = e.outcome(p4).await;
    assert_eq!(last["result"], "pushed", "{last}");
    assert_eq!(last["head"], json!(c[4]));
    assert_eq!(last["superseded"], json!([p2, p3]), "{last}");
    for row in [p2, p3] {
        let o = e.outcome(row).await;
        assert_eq!(o["result"], "superseded", "{o}");
        assert_eq!(o["by"]["row"], json!(p4), "{o}");
    }
    let change = e.change(CHANGE).await;
    assert_eq!(change["change"]["head_commit"], json!(c[4]));
    assert_eq!(change["change"]["last_pusher"], "sam");
    // Audited: the push lists what it superseded, and the completion says so on its own.
    let pushes = e.events("change.classified").await;
    assert_eq!(pushes.len(), 1, "one push written");
    let listed: Vec<&str> = pushes[0]["details"]["superseded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["head"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [c[2].as_str(), c[3].as_str()]);
    let sup = e.events("delivery.superseded").await;
    assert_eq!(sup.len(), 1);
    assert_eq!(sup[0]["change_id"], CHANGE, "{}", sup[0]);
    assert_eq!(sup[0]["details"]["superseded"].as_array().unwrap().len(), 2);

    // A review between two pushes ends the run: the first push, the review of its head, then
    // the second push, each processed on its own and in order.
    let p5 = e.send("pull_request", &e.push(&c[5], "ann-gh")).await;
    let rv = e
        .send("pull_request_review", &e.review(2, "bob-gh", &c[5]))
        .await;
    let p6 = e.send("pull_request", &e.push(&c[6], "ann-gh")).await;
    assert_eq!(e.drain().await, 3);
    assert_eq!(e.outcome(p5).await["result"], "pushed");
    let r = e.outcome(rv).await;
    assert_eq!(
        (r["result"].as_str(), r["commit"].as_str()),
        (Some("approved"), Some(c[5].as_str())),
        "{r}"
    );
    assert_eq!(e.outcome(p6).await["result"], "pushed");
    assert_eq!(e.state.observed.reads(), 4);
    assert!(e.outcome(p6).await.get("superseded").is_none());
    assert_eq!(e.events("change.classified").await.len(), 3);
    assert_eq!(e.events("delivery.superseded").await.len(), 1);
}

both!(a_burst_of_pull_requests_is_drained_concurrently_and_completely);
async fn a_burst_of_pull_requests_is_drained_concurrently_and_completely(backend: Backend) {
    let e = start(backend).await;
    let c = e.commits.clone();
    const PRS: u64 = 12;
    let mut rows = Vec::new();
    // Every pull request on the same two commits (a minor upgrade: category 2); then a review
    // each, and one deployment of the commit they share.
    for n in 1..=PRS {
        rows.push(e.send("pull_request", &e.opened(n, &c[2])).await);
    }
    for n in 1..=PRS {
        rows.push(
            e.send("pull_request_review", &e.review(n, "bob-gh", &c[2]))
                .await,
        );
    }
    let worker = deliveries::spawn(e.state.clone(), cfg());
    e.drained().await;
    let mut dep = fixture("deployment_status.success");
    dep["deployment"]["sha"] = json!(c[2]);
    dep["repository"]["full_name"] = json!(REPO);
    rows.push(e.send("deployment_status", &dep).await);
    e.drained().await;
    worker.abort();
    let all = e.deliveries().await;
    assert!(
        all.iter().all(|d| d.status == DeliveryStatus::Done),
        "{all:#?}"
    );
    assert_eq!(
        e.state.observed.reads(),
        1,
        "one read for {PRS} pull requests on the same commits"
    );
    for n in 1..=PRS {
        let id = format!("gh-codertocat-hello-world-{n}");
        let ch = e.change(&id).await;
        let approvals: Vec<&str> = ch["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["person"].as_str().unwrap())
            .collect();
        assert_eq!(approvals, ["bob"], "{id}: {ch}");
        assert_eq!(ch["change"]["classification"]["category"], 2, "{id}");
    }
    // The deployment of the shared commit reached every change at it (each an audited write,
    // none lost to a concurrent review).
    let finished = e.events("deployment.finish").await;
    assert_eq!(finished.len() as u64, PRS, "{finished:#?}");
}

//! GitHub webhook burst: 1,000 signed deliveries of a mix of events (per pull request: opened, two
//! approving reviews, a `/changegate explain` comment, `workflow_run` and `check_suite` completed,
//! `deployment_status` in progress and success) sent by concurrent keep-alive clients to a real
//! server over SQLite (and the local PostgreSQL), with the delivery worker running. The pull
//! requests are of a real git repository under the server's repo root, each with its own head
//! commit, so every `opened` is classified by the server. Prints the acknowledgement latency
//! (p50, p99, max), deliveries acknowledged per second, the queue's drain time (first send until
//! nothing is pending), how many deliveries ended `done`, and how often the server read the
//! repository (fetch and classification; the rest came from its cache).
//!
//! `cargo bench -p changegate-server --bench webhook_burst` (CG_BENCH_DELIVERIES,
//! CG_BENCH_CONCURRENCY override the load; CG_BENCH_SKIP_PG=1 skips PostgreSQL;
//! CG_BENCH_WORKER_AFTER=1 starts the worker only once every delivery is acknowledged;
//! CG_BENCH_SHARED_HEAD=1 gives every pull request the same head commit, as this bench did before
//! ADR 0028: every deployment of it is then recorded on every change, one audited write each).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use changegate_server::AppState;
use changegate_server::deliveries::WorkerConfig;
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_testkit::GitRepo;
use changegate_testkit::server::{Backend, Options, TestServer};
use serde_json::{Value, json};

const SECRET: &str = "bench-secret";
const REPO: &str = "Codertocat/Hello-World";

const POLICY: &str = r#"
[categories.medium-risk]
approvers = ["backend-lead", "sre-lead"]
deploy_approvers = []
[people.bob]
github = "bob-gh"
[people.sam]
github = "sam-gh"
[integrations.github]
approvals = "reviews"
"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The deliveries of pull request `n` (head `head` on base `base`): (event, payload).
fn deliveries_of(n: u64, base: &str, head: &str) -> Vec<(&'static str, Value)> {
    let mut opened = fixture("pull_request.opened");
    opened["number"] = json!(n);
    opened["pull_request"]["number"] = json!(n);
    opened["pull_request"]["base"]["sha"] = json!(base);
    opened["pull_request"]["head"]["sha"] = json!(head);
    let review = |login: &str| {
        let mut r = fixture("pull_request_review.submitted");
        r["pull_request"]["number"] = json!(n);
        r["review"]["state"] = json!("approved");
        r["review"]["user"]["login"] = json!(login);
        r["review"]["commit_id"] = json!(head);
        r
    };
    let mut comment = fixture("issue_comment.created");
    comment["issue"]["number"] = json!(n);
    comment["issue"]["pull_request"] = json!({"url": "x"});
    comment["comment"]["body"] = json!("/changegate explain");
    let mut run = fixture("workflow_run.completed");
    run["workflow_run"]["head_sha"] = json!(head);
    run["workflow_run"]["pull_requests"][0]["number"] = json!(n);
    run["repository"]["full_name"] = json!(REPO);
    let mut suite = fixture("check_suite.completed");
    suite["check_suite"]["head_sha"] = json!(head);
    suite["check_suite"]["pull_requests"][0]["number"] = json!(n);
    suite["repository"]["full_name"] = json!(REPO);
    let status = |name: &str| {
        let mut s = fixture(name);
        s["deployment"]["id"] = json!(n);
        s["deployment"]["sha"] = json!(head);
        s["repository"]["full_name"] = json!(REPO);
        s
    };
    vec![
        ("pull_request", opened),
        ("pull_request_review", review("bob-gh")),
        ("pull_request_review", review("sam-gh")),
        ("issue_comment", comment),
        ("workflow_run", run),
        ("check_suite", suite),
        ("deployment_status", status("deployment_status.in_progress")),
        ("deployment_status", status("deployment_status.success")),
    ]
}

struct Burst {
    reads: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    acked_per_s: f64,
    drain: Duration,
    done: usize,
    failed: usize,
    errors: usize,
}

async fn run(backend: Backend, total: usize, concurrency: usize) -> Burst {
    // A repository under the server's repo root: `Codertocat/Hello-World`.
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(REPO);
    std::fs::create_dir_all(&path).unwrap();
    let r = GitRepo::init_at(&path);
    r.write(
        "package.json",
        r#"{ "dependencies": { "express": "4.19.2" } }"#,
    );
    let base = r.commit("base");
    // One head per pull request (a minor express upgrade each: category 2), unless shared.
    let per_pr = deliveries_of(1, "b", "h").len();
    let prs = total.div_ceil(per_pr) as u64;
    let shared = std::env::var("CG_BENCH_SHARED_HEAD").is_ok();
    let mut heads = Vec::new();
    for n in 1..=(if shared { 1 } else { prs }) {
        r.write(
            "package.json",
            &format!(r#"{{ "dependencies": {{ "express": "4.21.{n}" }} }}"#),
        );
        heads.push(r.commit(&format!("express 4.21.{n}")));
    }
    let head_of = |n: u64| heads[if shared { 0 } else { n as usize - 1 }].clone();

    let captured: Arc<Mutex<Option<AppState>>> = Arc::default();
    let slot = captured.clone();
    let policy = changegate_testkit::gate::policy_with(POLICY);
    let srv = TestServer::start_full(
        backend,
        policy,
        changegate_testkit::gate::t(changegate_testkit::gate::TUE),
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
    let observed = state.observed.clone();
    let config = WorkerConfig {
        poll: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    // CG_BENCH_WORKER_AFTER=1: the worker starts once every delivery is acknowledged (the
    // acknowledgements alone, for comparison).
    let after = std::env::var("CG_BENCH_WORKER_AFTER").is_ok();
    let mut idle = Some((state, config));
    let mut worker = None;
    if !after {
        let (state, config) = idle.take().unwrap();
        worker = Some(changegate_server::deliveries::spawn(state, config));
    }

    let secret = Secret::new(SECRET).unwrap();
    // Signed before the clock starts: (event, guid, body, signature).
    let mut rounds: Vec<Vec<_>> = vec![Vec::new(); per_pr];
    for n in 1..=prs {
        for (i, (event, body)) in deliveries_of(n, &base, &head_of(n)).into_iter().enumerate() {
            let bytes = serde_json::to_vec(&body).unwrap();
            let sig = format!("sha256={}", secret.sign_hex(&bytes));
            rounds[i].push((event, format!("bench-{n}-{i}"), bytes, sig));
        }
    }
    // Round by round (every pull request's `opened`, then every first review, …): concurrent
    // clients hit many subjects at once, and each pull request's events arrive in order.
    let mut all: Vec<_> = rounds.into_iter().flatten().collect();
    all.truncate(total);
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(all)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = format!("{}/api/v1/webhooks/github", srv.base);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let Some((event, guid, bytes, sig)) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let t0 = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", event)
                    .header("x-github-delivery", guid)
                    .header("x-hub-signature-256", sig)
                    .body(bytes)
                    .send()
                    .await;
                lat.push(t0.elapsed());
                match resp {
                    Ok(r) if r.status().as_u16() == 202 => {}
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let acked = started.elapsed();
    if let Some((state, config)) = idle.take() {
        worker = Some(changegate_server::deliveries::spawn(state, config));
    }
    // Drain: until nothing is pending.
    let (done, failed) = loop {
        let list = srv
            .db
            .list_deliveries(None, None, (total + 10) as i64)
            .await
            .unwrap();
        let pending = list
            .iter()
            .filter(|d| d.status == changegate_store::DeliveryStatus::Pending)
            .count();
        if pending == 0 {
            let failed = list
                .iter()
                .filter(|d| d.status == changegate_store::DeliveryStatus::Failed)
                .count();
            break (list.len() - failed, failed);
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!("the queue did not drain in 10 minutes ({pending} pending)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let drain = started.elapsed();
    if let Some(w) = worker {
        w.abort();
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    Burst {
        reads: observed.reads(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: *lat.last().unwrap(),
        acked_per_s: lat.len() as f64 / acked.as_secs_f64(),
        drain,
        done,
        failed,
        errors,
    }
}

fn main() {
    let total = env("CG_BENCH_DELIVERIES", 1000);
    let concurrency = env("CG_BENCH_CONCURRENCY", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("CG_BENCH_SKIP_PG").is_err() {
        backends.push(Backend::Postgres);
    }
    println!(
        "GitHub webhook burst: {total} signed deliveries (8 events per pull request), {concurrency} concurrent clients"
    );
    for backend in backends {
        let b = rt.block_on(run(backend, total, concurrency));
        println!(
            "{backend:?}: ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} deliveries/s acknowledged; queue drained in {:.2} s ({:.0} deliveries/s processed); {} done, {} failed, {} not acknowledged; {} repository reads",
            b.p50.as_secs_f64() * 1e3,
            b.p99.as_secs_f64() * 1e3,
            b.max.as_secs_f64() * 1e3,
            b.acked_per_s,
            b.drain.as_secs_f64(),
            total as f64 / b.drain.as_secs_f64(),
            b.done,
            b.failed,
            b.errors,
            b.reads,
        );
    }
}

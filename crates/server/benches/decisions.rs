//! Load benchmark of the decision endpoint: a Rust load generator on loopback (keep-alive HTTP/1.1
//! clients) against a real server over SQLite and over the local PostgreSQL, in one run, next to
//! two baselines measured in the same run: the unauthenticated health endpoint (HTTP stack only)
//! and `decide` called in-process (the pure decision). Prints decisions/s and p50 / p99 latency.
//!
//! `cargo bench -p changegate-server --bench decisions` (CG_BENCH_REQUESTS, CG_BENCH_CONCURRENCY
//! override the load; CG_BENCH_SKIP_PG=1 skips PostgreSQL).

use std::time::{Duration, Instant};

use changegate_gate::{ChangeState, WorldState};
use changegate_testkit::gate::{facet, ready};
use changegate_testkit::server::{Backend, TestServer};
use jiff::Timestamp;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The change the bench decides on: a category-2 change with every approval, checklist item
/// and lead time in place (the kit's `ready`, also the gate's tests' and bench's), as `CR-bench`.
fn scenario() -> (changegate_policy::Policy, ChangeState) {
    let (p, mut s) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    s.change.id = "CR-bench".into();
    (p, s)
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// `total` requests over `concurrency` keep-alive clients: a GET, or a POST of `body`.
async fn load(
    url: String,
    token: Option<String>,
    body: Option<serde_json::Value>,
    total: usize,
    concurrency: usize,
) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    // Warm up connections.
    let request = |client: &reqwest::Client, url: &str, body: &Option<serde_json::Value>| match body
    {
        Some(b) => client.post(url).json(b),
        None => client.get(url),
    };
    for _ in 0..concurrency {
        let mut r = request(&client, &url, &body);
        if let Some(t) = &token {
            r = r.bearer_auth(t);
        }
        let _ = r.send().await.unwrap().bytes().await;
    }
    let per = total / concurrency;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        let token = token.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            let mut errors = 0;
            for _ in 0..per {
                let t0 = Instant::now();
                let mut r = request(&client, &url, &body);
                if let Some(t) = &token {
                    r = r.bearer_auth(t);
                }
                let resp = r.send().await.unwrap();
                if !resp.status().is_success() {
                    errors += 1;
                }
                let _ = resp.bytes().await;
                lat.push(t0.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Stats {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[(all.len() * 99) / 100],
        errors,
    }
}

/// A server (the kit's, as the API tests use) holding the scenario's change.
async fn server(backend: Backend, at: Timestamp) -> TestServer {
    let (policy, state) = scenario();
    let srv = TestServer::start(backend, policy, at).await;
    let ev = changegate_audit::AuditEvent::new("change.imported", "bench").change("CR-bench");
    srv.db.create_change(&state, ev, None).await.unwrap();
    srv
}

fn main() {
    let total = env("CG_BENCH_REQUESTS", 20_000);
    let concurrency = env("CG_BENCH_CONCURRENCY", 16);
    let at: Timestamp = "2026-03-10T11:00:00Z".parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // In-process baseline: the pure decision alone.
    let ((p, s), w) = (scenario(), WorldState::default());
    assert!(
        changegate_gate::decide(&p, &s, &w, at).allowed,
        "the bench decides on an allowed change"
    );
    let n = 20_000;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(changegate_gate::decide(&p, &s, &w, at));
    }
    let pure = n as f64 / t0.elapsed().as_secs_f64();

    println!(
        "decision endpoint load: {total} requests, {concurrency} concurrent keep-alive clients, loopback, 2 cores shared by client and server"
    );
    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>8}",
        "target", "req/s", "p50", "p99", "errors"
    );
    println!(
        "{:<34} {:>12.0} {:>10} {:>10} {:>8}",
        "baseline: decide() in-process", pure, "-", "-", 0
    );
    let mut rows = Vec::new();
    let mut authority = Vec::new();
    for pg in [false, true] {
        if pg && std::env::var("CG_BENCH_SKIP_PG").is_ok() {
            continue;
        }
        let name = if pg { "postgres" } else { "sqlite" };
        let (health, decision, admin, person) = rt.block_on(async {
            let backend = if pg {
                Backend::Postgres
            } else {
                Backend::Sqlite
            };
            let srv = server(backend, at).await;
            let base = &srv.base;
            let health = load(
                format!("{base}/api/v1/health"),
                None,
                None,
                total,
                concurrency,
            )
            .await;
            let url = format!("{base}/api/v1/changes/CR-bench/decision?at=2026-03-10T11:00:00Z");
            let decision = load(url, Some(srv.admin.clone()), None, total, concurrency).await;
            // The authority A/B: the same dry-run start (authorise, decide, apply, store
            // nothing) with an admin token, whose authority needs no resolution, and with the
            // token of the QA lead (category 2's deploy approver) who is not an author, resolved through the policy's role
            // holders (the table's longest granting path for `start`).
            let url = format!("{base}/api/v1/changes/CR-bench/ops?dry_run=true");
            let start = serde_json::json!({"op": "transition", "event": "start"});
            let quinn = srv.token("quinn").await;
            let admin = load(
                url.clone(),
                Some(srv.admin.clone()),
                Some(start.clone()),
                total,
                concurrency,
            )
            .await;
            let person = load(url, Some(quinn), Some(start), total, concurrency).await;
            (health, decision, admin, person)
        });
        let (health, decision, admin, person) = (health, decision, admin, person);
        for (label, s) in [
            (format!("baseline: GET /health ({name})"), &health),
            (format!("GET decision ({name})"), &decision),
            (format!("dry-run start, admin ({name})"), &admin),
            (format!("dry-run start, role holder ({name})"), &person),
        ] {
            println!(
                "{:<34} {:>12.0} {:>9.2}ms {:>9.2}ms {:>8}",
                label,
                s.rps,
                s.p50.as_secs_f64() * 1e3,
                s.p99.as_secs_f64() * 1e3,
                s.errors
            );
        }
        rows.push((name, decision.rps, health.rps, decision.p99));
        authority.push((name, admin.rps, person.rps));
    }
    for (name, d, h, p99) in rows {
        println!(
            "{name}: decisions/s = {d:.0} ({:.2}x of /health, {:.3}x of in-process decide); p99 {:.2} ms (goal on SQLite: >= 5000/s, p99 < 5 ms)",
            d / h,
            d / pure,
            p99.as_secs_f64() * 1e3
        );
    }
    for (name, admin, person) in authority {
        println!(
            "{name}: authority check cost = {:.1} % of decision throughput ({person:.0} vs {admin:.0} dry-run starts/s; issue 13 goal: at most 10 %)",
            (1.0 - person / admin) * 100.0
        );
    }
}

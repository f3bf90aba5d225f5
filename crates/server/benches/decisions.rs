//! Load benchmark of the decision endpoint: a Rust load generator on loopback (keep-alive HTTP/1.1
//! clients) against a real server over SQLite and over the local PostgreSQL, in one run, next to
//! two baselines measured in the same run: the unauthenticated health endpoint (HTTP stack only)
//! and `decide` called in-process (the pure decision). Prints decisions/s and p50 / p99 latency.
//!
//! `cargo bench -p changegate-server --bench decisions` (CG_BENCH_REQUESTS, CG_BENCH_CONCURRENCY
//! override the load; CG_BENCH_SKIP_PG=1 skips PostgreSQL).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use changegate_gate::{
    Approval, Attestation, ChangeRequest, ChangeState, ClassifiedChange, ClassifiedFacet, Status,
    WorldState,
};
use changegate_server::{AppState, Clock, Db};
use changegate_store::StoreConfig;
use jiff::Timestamp;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn policy() -> changegate_policy::Policy {
    let people = "[roles.backend-lead]\nholders = [\"bob\"]\n[roles.qa]\nholders = [\"quinn\"]\n";
    changegate_policy::load(people, "bench.toml")
        .unwrap()
        .policy
}

fn state(at: Timestamp) -> ChangeState {
    let mut s = ChangeState::new(ChangeRequest {
        id: "CR-bench".into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: "bench".into(),
        base_commit: "a".into(),
        head_commit: "b".into(),
        authors: vec!["alice".into()],
        co_authors: vec![],
        last_pusher: Some("alice".into()),
        classification: ClassifiedChange {
            category: 2,
            facets: vec![ClassifiedFacet {
                kind: "api-endpoint-added".into(),
                roles: vec!["backend-lead".into()],
                category: 2,
            }],
            required_roles: vec!["backend-lead".into()],
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
    });
    s.status = Status::Approved;
    for (person, role) in [("bob", "backend-lead"), ("quinn", "qa")] {
        s.approvals.push(Approval {
            person: person.into(),
            role: role.into(),
            head_commit: "b".into(),
            at,
        });
    }
    for item in [
        "tests-pass",
        "staging-smoke",
        "rollback-plan",
        "feature-flags",
        "dashboards",
        "on-call-notified",
    ] {
        s.attestations.push(Attestation {
            person: "ci".into(),
            item: item.into(),
            evidence: Some("https://ci/1".into()),
            head_commit: "b".into(),
            at,
        });
    }
    s
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn load(url: String, token: Option<String>, total: usize, concurrency: usize) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    // Warm up connections.
    for _ in 0..concurrency {
        let mut r = client.get(&url);
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
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            let mut errors = 0;
            for _ in 0..per {
                let t0 = Instant::now();
                let mut r = client.get(&url);
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

async fn server(
    pg: bool,
    at: Timestamp,
) -> (
    String,
    String,
    tokio::task::JoinHandle<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy();
    let mut cfg = StoreConfig::new(dir.path());
    cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
        &policy.audit.fields,
    ));
    if pg {
        cfg.database_url = Some("postgres://postgres@127.0.0.1:5432/test".into());
        cfg.pg_schema = Some(format!(
            "bench_{}_{}",
            std::process::id(),
            Timestamp::now().as_second() % 100000
        ));
    }
    let db = Db::open_with(cfg).await.unwrap();
    let t = changegate_server::token::mint();
    db.insert_token(&t, "admin", true).await.unwrap();
    let ev = changegate_audit::AuditEvent::new("change.imported", "bench").change("CR-bench");
    db.create_change(&state(at), ev, None).await.unwrap();
    let app = AppState {
        policy: Arc::new(policy),
        db,
        clock: Clock::Manual(Arc::new(Mutex::new(at))),
        repo_root: None,
        github: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { changegate_server::serve(app, listener).await.unwrap() });
    (base, t.plaintext, task, dir)
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
    let (p, s, w) = (policy(), state(at), WorldState::default());
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
    for pg in [false, true] {
        if pg && std::env::var("CG_BENCH_SKIP_PG").is_ok() {
            continue;
        }
        let name = if pg { "postgres" } else { "sqlite" };
        let (health, decision) = rt.block_on(async {
            let (base, token, task, _dir) = server(pg, at).await;
            let health = load(format!("{base}/api/v1/health"), None, total, concurrency).await;
            let url = format!("{base}/api/v1/changes/CR-bench/decision?at=2026-03-10T11:00:00Z");
            let decision = load(url, Some(token), total, concurrency).await;
            task.abort();
            (health, decision)
        });
        for (label, s) in [
            (format!("baseline: GET /health ({name})"), &health),
            (format!("GET decision ({name})"), &decision),
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
    }
    for (name, d, h, p99) in rows {
        println!(
            "{name}: decisions/s = {d:.0} ({:.2}x of /health, {:.3}x of in-process decide); p99 {:.2} ms (goal on SQLite: >= 5000/s, p99 < 5 ms)",
            d / h,
            d / pure,
            p99.as_secs_f64() * 1e3
        );
    }
}

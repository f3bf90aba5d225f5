//! Issue 14, "rollouts bound to changes, run by the server": real servers over real SQLite and
//! PostgreSQL, a real Prometheus (Debian package, `scripts/services.sh`) scraping a small service
//! whose traffic, errors, latency, slow queries, Socket.IO disconnects and feature-flag percentage
//! the test controls, and the set-weight / rollback actions as webhooks into that service.
//!
//! The policy is the seed's with soaks of seconds (the server's clock starts inside the change
//! window and runs in real time), so a whole plan runs in a few seconds.

#[path = "../../rollout/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeState, Status};
use changegate_server::rollouts::{RolloutConfig, Runtime};
use changegate_server::{AppState, Clock, Db};
use changegate_store::{EventFilter, StoreConfig};
use changegate_testkit::both;
use changegate_testkit::gate::{MW, TUE, facet, ready, set_status, t, world_with_announcement};
use changegate_testkit::server::{Backend, PG_URL};
use jiff::Timestamp;
use serde_json::{Value, json};
use support::{Profile, Prometheus, TestService};

/// The seed with the plans' soaks cut to seconds and a short verification.
const FAST: &str = r#"
[rollout.plans.standard]
description = "test: 5% -> 50% -> 100%, 2 s soaks"
steps = [
  { environment = "production", weight = 5, soak = "2s" },
  { environment = "production", weight = 50, soak = "2s" },
  { environment = "production", weight = 100 },
]
monitor_after = "2s"

[rollout.plans.high-risk]
description = "test: 5% -> 25% -> 50% -> 100%, 2 s soaks"
steps = [
  { environment = "production", weight = 5, soak = "2s" },
  { environment = "production", weight = 25, soak = "2s" },
  { environment = "production", weight = 50, soak = "2s" },
  { environment = "production", weight = 100 },
]
monitor_after = "2s"

[verification]
within = "20s"
interval = "1s"

# An approved critical-bugfix exception may select the high-risk plan (the seed lists none).
[exceptions.reasons.critical-bugfix]
description = "Critical bug fixes (customer-impacting)"
plans = ["high-risk"]
"#;

fn policy() -> changegate_policy::Policy {
    changegate_testkit::gate::policy_with(FAST)
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        Timestamp::now().as_microsecond() % 1_000_000
    )
}

/// Prometheus + the service it scrapes (1 s scrape).
struct Metrics {
    svc: TestService,
    prom: Prometheus,
}

async fn metrics() -> Metrics {
    let svc = TestService::start(Profile::healthy()).await;
    let prom = Prometheus::start(&[("chat", svc.addr)], Duration::from_secs(1)).await;
    prom.wait_for_samples(r#"service="chat""#, 3).await;
    Metrics { svc, prom }
}

fn config(m: &Metrics, lease: &str) -> RolloutConfig {
    RolloutConfig::from_toml(&format!(
        r#"
prometheus = "{prom}"
service_url = "{base}"
selector = 'service="chat"'
interval = "500ms"
poll = "200ms"
lease = "{lease}"
[actions]
set_weight = "{weight}"
rollback = "{rollback}"
switched_query = 'max(feature_flag_rollout_percent{{service="chat"}})'
switched_at_most = 0.0
[guard]
rate_window = "15s"
"#,
        prom = m.prom.url,
        base = m.svc.base(),
        weight = m.svc.weight_hook(),
        rollback = m.svc.rollback_hook(),
    ))
    .unwrap()
}

/// Where a replica's database is.
#[derive(Clone)]
struct DbSpot {
    dir: Arc<tempfile::TempDir>,
    schema: Option<String>,
}

impl DbSpot {
    fn new(backend: Backend) -> Self {
        DbSpot {
            dir: Arc::new(tempfile::tempdir().unwrap()),
            schema: (backend == Backend::Postgres).then(|| unique("ro")),
        }
    }

    async fn open(&self, policy: &changegate_policy::Policy) -> Db {
        let mut cfg = StoreConfig::new(self.dir.path());
        cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
            &policy.audit.fields,
        ));
        if let Some(s) = &self.schema {
            cfg.database_url = Some(PG_URL.into());
            cfg.pg_schema = Some(s.clone());
        }
        Db::open_with(cfg).await.expect("open store")
    }
}

/// One server replica.
struct Replica {
    base: String,
    db: Db,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replica(spot: &DbSpot, clock: &Clock, cfg: Option<RolloutConfig>, owner: &str) -> Replica {
    replica_with(spot, clock, cfg, owner, policy()).await
}

async fn replica_with(
    spot: &DbSpot,
    clock: &Clock,
    cfg: Option<RolloutConfig>,
    owner: &str,
    policy: changegate_policy::Policy,
) -> Replica {
    let db = spot.open(&policy).await;
    let state = AppState {
        rollouts: cfg.map(|c| Arc::new(Runtime::new(c, Some(owner.into())).unwrap())),
        ..AppState::new(Arc::new(policy), db.clone(), clock.clone())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        changegate_server::serve(state, listener).await.unwrap();
    });
    Replica { base, db, task }
}

fn clock_at(at: &str) -> Clock {
    Clock::From {
        start: t(at),
        since: Instant::now(),
    }
}

async fn token(db: &Db, person: &str, admin: bool) -> String {
    let tk = changegate_server::token::mint();
    db.insert_token(&tk, person, admin).await.unwrap();
    tk.plaintext
}

async fn integration(db: &Db, name: &str, scopes: &[changegate_server::token::Scope]) -> String {
    let spec = changegate_server::token::TokenSpec {
        subject: changegate_server::token::Subject::Integration {
            name: name.into(),
            scopes: scopes.to_vec(),
        },
        expires_at: None,
    };
    db.issue_token(&spec, t(TUE), "changegate")
        .await
        .unwrap()
        .plaintext
}

async fn req(
    base: &str,
    method: reqwest::Method,
    path: &str,
    tok: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(tok);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

/// `POST /api/v1/changes/{id}/rollouts` with `tok`.
async fn start(base: &str, tok: &str, id: &str, body: Option<Value>) -> (u16, Value) {
    req(
        base,
        reqwest::Method::POST,
        &format!("/api/v1/changes/{id}/rollouts"),
        tok,
        body,
    )
    .await
}

/// A category-2 (or 3) change by alice, ready to deploy (every approval and item in place).
fn ready_change(level: u8, id: &str) -> ChangeState {
    let facets = match level {
        2 => vec![facet("api-endpoint-added", &["backend-lead"], 2)],
        _ => vec![facet("schema-column-dropped", &[], 3)],
    };
    let mut s = ready(level, facets).1;
    s.change.id = id.into();
    if s.status != Status::Approved {
        set_status(&mut s, Status::Approved, t("2026-03-01T10:00:00Z"));
    }
    s
}

async fn import(r: &Replica, admin: &str, state: &ChangeState) {
    let (st, b) = req(
        &r.base,
        reqwest::Method::POST,
        "/api/v1/changes/import",
        admin,
        Some(serde_json::to_value(state).unwrap()),
    )
    .await;
    assert_eq!(st, 201, "{b}");
}

async fn announce(db: &Db) {
    let w = db.world().await.unwrap();
    db.update_world(
        w.version,
        &world_with_announcement(),
        AuditEvent::new("incident.recorded", "test-setup"),
    )
    .await
    .unwrap()
    .expect("world written");
}

async fn rollouts(r: &Replica, tok: &str, id: &str) -> Vec<Value> {
    let (st, b) = req(
        &r.base,
        reqwest::Method::GET,
        &format!("/api/v1/changes/{id}/rollouts"),
        tok,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    b["rollouts"].as_array().cloned().unwrap_or_default()
}

/// Wait until the change's last rollout satisfies `done`; panics after `secs`.
async fn wait_for(
    r: &Replica,
    tok: &str,
    id: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let all = rollouts(r, tok, id).await;
        if let Some(last) = all.last()
            && done(last)
        {
            return last.clone();
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}: {:#}", json!(all));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn status_of(r: &Replica, id: &str) -> Status {
    r.db.change(id).await.unwrap().unwrap().value.status
}

async fn events(db: &Db, id: &str) -> Vec<AuditEvent> {
    let filter = EventFilter {
        change_id: Some(id.into()),
        ..Default::default()
    };
    db.store()
        .events(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.event)
        .collect()
}

fn results(evs: &[AuditEvent], kind: &str) -> Vec<String> {
    evs.iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            e.outcome
                .get("result")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn weights(m: &Metrics) -> Vec<u8> {
    m.svc.sim.lock().unwrap().weights.clone()
}

both!(category_2_change_completes_and_is_verified);
async fn category_2_change_completes_and_is_verified(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-2")).await;

    // Refused: no authority (403, nothing stored), a plan chosen (422), no deployments scope.
    let mallory = token(&r.db, "mallory", false).await;
    let ci = integration(&r.db, "ci", &[changegate_server::token::Scope::CiEvidence]).await;
    let alice = token(&r.db, "alice", false).await;
    let size = r.db.store().head().await.unwrap().size;
    let (st, b) = start(&r.base, &mallory, "CR-2", Some(json!({}))).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("deployer-required")),
        "{b}"
    );
    let (st, b) = start(&r.base, &ci, "CR-2", Some(json!({}))).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("deployer-required")),
        "{b}"
    );
    let (st, b) = start(&r.base, &alice, "CR-2", Some(json!({"plan": "emergency"}))).await;
    assert_eq!(
        (st, b["code"].as_str(), b["location"].as_str()),
        (422, Some("plan-not-selectable"), Some("body `plan`")),
        "{b}"
    );
    assert!(rollouts(&r, &admin, "CR-2").await.is_empty());
    assert_eq!(status_of(&r, "CR-2").await, Status::Approved);
    assert_eq!(
        r.db.store().head().await.unwrap().size,
        size,
        "refusals store nothing"
    );

    // The deploy pipeline starts it (integration token with the deployments scope).
    let deployer = integration(
        &r.db,
        "deploy",
        &[changegate_server::token::Scope::Deployments],
    )
    .await;
    let (st, b) = start(&r.base, &deployer, "CR-2", None).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["plan"], "standard", "the category's plan: {b}");
    assert_eq!(status_of(&r, "CR-2").await, Status::Deploying);
    // A second start while one runs is refused.
    let (st, b) = start(&r.base, &deployer, "CR-2", None).await;
    assert_eq!(st, 409, "{b}");

    let done = wait_for(&r, &admin, "CR-2", 90, "completion", |v| {
        v["phase"] == "completed"
    })
    .await;
    assert_eq!(weights(&m), [5, 50, 100], "each step's weight set once");
    assert_eq!(status_of(&r, "CR-2").await, Status::Deployed);
    assert_eq!(done["verification"]["result"], "passed", "{done:#}");
    let checks = done["verification"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for n in [
        "health:/api/v1/health",
        "health:/api/v1/health/database",
        "error-rate",
        "p95-latency",
        "slow-queries",
        "socket-disconnects",
        "feature-flag-rollout",
    ] {
        assert!(names.contains(&n), "{n} verified: {names:?}");
    }
    assert!(
        checks
            .iter()
            .all(|c| c["state"] == "passed" && !c["value"].is_null()),
        "{checks:#?}"
    );
    assert!(done["rollback"].is_null());

    let evs = events(&r.db, "CR-2").await;
    assert_eq!(results(&evs, "deployment.start"), ["allowed"]);
    let steps = results(&evs, "deployment.step");
    assert_eq!(
        steps.iter().filter(|s| *s == "promote").count(),
        3,
        "{steps:?}"
    );
    assert_eq!(results(&evs, "deployment.finish"), ["complete"]);
    assert_eq!(results(&evs, "deployment.verification"), ["verified"]);
    let promote = evs.iter().find(|e| e.kind == "deployment.step").unwrap();
    assert!(
        promote.outcome.contains_key("error-rate"),
        "the metric values that decided it: {promote:?}"
    );
    assert!(
        promote.details["decision"]["triggers"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
}

both!(category_3_change_rolls_back_with_its_switch_time);
async fn category_3_change_rolls_back_with_its_switch_time(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at("2026-03-03T02:05:00Z");
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    announce(&r.db).await;
    import(&r, &admin, &ready_change(3, "CR-3")).await;
    // At 25 % the new version answers 5 % errors: error-rate-increase (+0.3 points) fires.
    m.svc.degrade_at(
        25,
        Profile {
            error_share: 0.05,
            ..Profile::healthy()
        },
    );
    let tara = token(&r.db, "tara", false).await; // the category's deploy approver
    let (st, b) = start(&r.base, &tara, "CR-3", None).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["plan"], "high-risk");
    let _ = MW;

    let done = wait_for(&r, &admin, "CR-3", 90, "rollback", |v| {
        v["phase"] == "rolled-back"
    })
    .await;
    assert_eq!(status_of(&r, "CR-3").await, Status::RolledBack);
    assert_eq!(weights(&m), [5, 25]);
    assert_eq!(m.svc.sim.lock().unwrap().rollbacks, 1);
    let rb = &done["rollback"];
    assert_eq!(rb["trigger"], "automatic", "{rb:#}");
    assert!(
        rb["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "baseline-exceeded" && r["value"].as_f64().is_some()),
        "{rb:#}"
    );
    let timing = &rb["timing"];
    assert_eq!(timing["confirmed_by"], "metric", "{timing:#}");
    let switched = timing["detect_to_switched_ms"]
        .as_f64()
        .expect("switch measured");
    assert!(timing["detect_to_action_ms"].as_f64().unwrap() <= switched);
    assert_eq!(timing["deadline_ms"].as_f64(), Some(30_000.0));
    assert_eq!(
        timing["exceeded"], false,
        "switched within 30 s: {timing:#}"
    );
    println!(
        "category 3 breach → action {:.1} ms, action {:.1} ms, breach → switched {switched:.1} ms",
        timing["detect_to_action_ms"].as_f64().unwrap(),
        timing["action_ms"].as_f64().unwrap()
    );

    let evs = events(&r.db, "CR-3").await;
    let rollback: Vec<&AuditEvent> = evs
        .iter()
        .filter(|e| e.kind == "rollback.triggered")
        .collect();
    assert_eq!(rollback.len(), 1);
    assert_eq!(rollback[0].outcome["result"], "rollback");
    assert!(rollback[0].details["rollback"]["timing"]["detect_to_switched_ms"].is_number());
    assert_eq!(rollback[0].details["authority"]["via"], "integration");
    assert!(rollback[0].outcome.contains_key("error-rate"));
}

both!(a_freeze_that_begins_mid_rollout_holds_it);
async fn a_freeze_that_begins_mid_rollout_holds_it(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-F")).await;
    let alice = token(&r.db, "alice", false).await;
    let (st, b) = start(&r.base, &alice, "CR-F", None).await;
    assert_eq!(st, 201, "{b}");
    wait_for(&r, &admin, "CR-F", 60, "step 1", |v| {
        v["steps"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    // A P1 incident: the incident freeze begins.
    let (st, b) = req(
        &r.base,
        reqwest::Method::POST,
        "/api/v1/incidents",
        &admin,
        Some(json!({"id": "INC-1", "severity": "P1", "commander": "sam"})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let held = wait_for(&r, &admin, "CR-F", 60, "hold", |v| v["phase"] == "held").await;
    assert!(
        held["held"]["codes"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{held:#}"
    );
    // Held: no promotion, no rollback, however long the freeze lasts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(weights(&m), [5]);
    assert_eq!(m.svc.sim.lock().unwrap().rollbacks, 0);
    assert_eq!(status_of(&r, "CR-F").await, Status::Deploying);
    let still = rollouts(&r, &admin, "CR-F").await.pop().unwrap();
    assert_eq!(still["phase"], "held");
    // The freeze ends: the rollout resumes from its step and completes.
    let (st, b) = req(
        &r.base,
        reqwest::Method::POST,
        "/api/v1/incidents/INC-1/resolve",
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    wait_for(&r, &admin, "CR-F", 90, "completion", |v| {
        v["phase"] == "completed"
    })
    .await;
    assert_eq!(weights(&m), [5, 50, 100]);
    let evs = events(&r.db, "CR-F").await;
    let steps = results(&evs, "deployment.step");
    assert_eq!(
        steps.iter().filter(|s| *s == "held").count(),
        1,
        "{steps:?}"
    );
    let resumed = evs
        .iter()
        .find(|e| e.kind == "deployment.step" && e.details["resumed_after_hold"].is_object());
    assert!(
        resumed.is_some(),
        "the resumed promotion names the hold it ended"
    );
}

both!(a_failing_verification_rolls_back);
async fn a_failing_verification_rolls_back(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-V")).await;
    // Slow queries are no rollback trigger: the plan completes, the verification fails.
    m.svc.sim.lock().unwrap().slow_queries_per_s = 2.0;
    let alice = token(&r.db, "alice", false).await;
    let (st, b) = start(&r.base, &alice, "CR-V", None).await;
    assert_eq!(st, 201, "{b}");
    let done = wait_for(&r, &admin, "CR-V", 90, "rollback", |v| {
        !v["active"].as_bool().unwrap_or(true)
    })
    .await;
    assert_eq!(done["phase"], "rolled-back", "{done:#}");
    assert_eq!(done["verification"]["result"], "failed");
    let slow = done["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "slow-queries")
        .unwrap()
        .clone();
    assert_eq!(slow["state"], "failed", "{slow}");
    assert!(slow["value"].as_f64().unwrap() >= 1.0);
    assert_eq!(done["rollback"]["trigger"], "verification-failed");
    assert_eq!(status_of(&r, "CR-V").await, Status::RolledBack);
    assert_eq!(m.svc.sim.lock().unwrap().rollbacks, 1);
    let evs = events(&r.db, "CR-V").await;
    assert_eq!(results(&evs, "deployment.finish"), ["complete"]);
    assert_eq!(
        results(&evs, "deployment.verification"),
        ["verification-failed"]
    );
    assert_eq!(results(&evs, "rollback.triggered"), ["rollback"]);
}

both!(a_restarted_server_continues_the_rollout_from_its_step);
async fn a_restarted_server_continues_the_rollout_from_its_step(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let first = replica(&spot, &clock, Some(config(&m, "2s")), "first").await;
    let admin = token(&first.db, "admin", true).await;
    import(&first, &admin, &ready_change(2, "CR-R")).await;
    let alice = token(&first.db, "alice", false).await;
    let (st, b) = start(&first.base, &alice, "CR-R", None).await;
    assert_eq!(st, 201, "{b}");
    wait_for(&first, &admin, "CR-R", 60, "step 1", |v| {
        v["steps"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    // Killed mid-soak: the task (listener and worker) is gone, its lease still stands.
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(weights(&m), [5]);
    let second = replica(&spot, &clock, Some(config(&m, "2s")), "second").await;
    let done = wait_for(&second, &admin, "CR-R", 90, "completion", |v| {
        v["phase"] == "completed"
    })
    .await;
    assert_eq!(
        weights(&m),
        [5, 50, 100],
        "continued from its step: no step repeated"
    );
    assert_eq!(done["steps"].as_array().unwrap().len(), 3);
    assert_eq!(status_of(&second, "CR-R").await, Status::Deployed);
    let evs = events(&second.db, "CR-R").await;
    assert_eq!(
        results(&evs, "deployment.step")
            .iter()
            .filter(|s| *s == "promote")
            .count(),
        3
    );
}

both!(two_replicas_on_one_database_act_once_per_step);
async fn two_replicas_on_one_database_act_once_per_step(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let one = replica(&spot, &clock, Some(config(&m, "3s")), "one").await;
    let two = replica(&spot, &clock, Some(config(&m, "3s")), "two").await;
    let admin = token(&one.db, "admin", true).await;
    import(&one, &admin, &ready_change(2, "CR-2R")).await;
    let alice = token(&one.db, "alice", false).await;
    let (st, b) = start(&two.base, &alice, "CR-2R", None).await;
    assert_eq!(st, 201, "{b}");
    wait_for(&one, &admin, "CR-2R", 90, "completion", |v| {
        v["phase"] == "completed"
    })
    .await;
    assert_eq!(
        weights(&m),
        [5, 50, 100],
        "every set-weight action ran exactly once"
    );
    assert_eq!(m.svc.sim.lock().unwrap().rollbacks, 0);
    let evs = events(&one.db, "CR-2R").await;
    assert_eq!(
        results(&evs, "deployment.step")
            .iter()
            .filter(|s| *s == "promote")
            .count(),
        3
    );
    assert_eq!(results(&evs, "deployment.finish"), ["complete"]);
    assert_eq!(results(&evs, "deployment.verification"), ["verified"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_rollouts_refuses_to_start_one() {
    let spot = DbSpot::new(Backend::Sqlite);
    let r = replica(&spot, &clock_at(TUE), None, "x").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-N")).await;
    let (st, b) = start(&r.base, &admin, "CR-N", None).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (503, Some("rollouts-not-configured")),
        "{b}"
    );
    assert_eq!(status_of(&r, "CR-N").await, Status::Approved);
    let (st, b) = req(
        &r.base,
        reqwest::Method::GET,
        "/api/v1/changes/NOPE/rollouts",
        &admin,
        None,
    )
    .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not-found")), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_denies_a_start_outside_the_window_and_nothing_starts() {
    let spot = DbSpot::new(Backend::Sqlite);
    // Saturday: the weekend freeze. No Prometheus is needed: nothing may start.
    let cfg = RolloutConfig::from_toml(
        "prometheus = \"http://127.0.0.1:9\"\n[actions]\nrollback = \"true\"\n",
    )
    .unwrap();
    let r = replica(
        &spot,
        &clock_at(changegate_testkit::gate::SAT),
        Some(cfg),
        "x",
    )
    .await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-W")).await;
    let alice = token(&r.db, "alice", false).await;
    let size = r.db.store().head().await.unwrap().size;
    let (st, b) = start(&r.base, &alice, "CR-W", None).await;
    assert_eq!((st, b["code"].as_str()), (422, Some("gate-denied")), "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("window"),
        "the gate's reasons: {b}"
    );
    assert!(rollouts(&r, &admin, "CR-W").await.is_empty());
    assert_eq!(status_of(&r, "CR-W").await, Status::Approved);
    assert_eq!(
        r.db.store().head().await.unwrap().size,
        size,
        "nothing stored"
    );
}

both!(a_manual_rollback_of_a_running_rollout_goes_through_the_rollout);
/// Issue 14: a manual rollback (the governance path: the category's rollback authority, here the
/// Backend Lead alone for category 2) of a change whose server-run rollout is active is performed
/// by the rollout — its rollback action once, its switch time measured, its lease held so the
/// guard stops promoting — and the change makes exactly one `roll-back` transition.
async fn a_manual_rollback_of_a_running_rollout_goes_through_the_rollout(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-M")).await;
    let deployer = integration(
        &r.db,
        "deploy",
        &[changegate_server::token::Scope::Deployments],
    )
    .await;
    let (st, b) = start(&r.base, &deployer, "CR-M", None).await;
    assert_eq!(st, 201, "{b}");
    wait_for(&r, &admin, "CR-M", 30, "the first step", |v| {
        v["phase"] == "running" && !weights(&m).is_empty()
    })
    .await;

    let bob = token(&r.db, "bob", false).await; // backend-lead
    let (st, b) = req(
        &r.base,
        reqwest::Method::POST,
        "/api/v1/changes/CR-M/rollbacks",
        &bob,
        Some(json!({"reason": "p95 regression seen by support"})),
    )
    .await;
    assert!((200..300).contains(&st), "{st} {b}");
    assert_eq!(b["request"]["status"], "done", "{b:#}");
    let execution = &b["request"]["execution"];
    assert_eq!(execution["ok"], true, "{execution:#}");
    assert!(
        execution["ran"]
            .as_str()
            .is_some_and(|s| s.contains("server-run rollout")),
        "performed by the rollout: {execution:#}"
    );

    assert_eq!(status_of(&r, "CR-M").await, Status::RolledBack);
    let change = r.db.change("CR-M").await.unwrap().unwrap().value;
    assert_eq!(
        change
            .history
            .iter()
            .filter(|h| h.to == Status::RolledBack)
            .count(),
        1,
        "one roll-back transition: {:?}",
        change.history
    );
    let last = rollouts(&r, &admin, "CR-M").await.pop().unwrap();
    assert_eq!(last["phase"], "rolled-back", "{last:#}");
    assert_eq!(last["rollback"]["trigger"], "manual", "{last:#}");
    assert_eq!(last["rollback"]["by"], "bob");
    assert!(last["rollback"]["timing"]["action_ms"].is_number());
    assert_eq!(
        m.svc.sim.lock().unwrap().rollbacks,
        1,
        "the rollout's rollback action ran once"
    );
    let evs = events(&r.db, "CR-M").await;
    let triggered: Vec<&AuditEvent> = evs
        .iter()
        .filter(|e| e.kind == "rollback.triggered")
        .collect();
    assert_eq!(
        triggered.len(),
        1,
        "one rollback.triggered per rollback: {evs:#?}"
    );
    assert_eq!(
        results(&evs, "rollback.finished").len(),
        1,
        "the request's result"
    );
    assert_eq!(triggered[0].details["trigger"], "manual");
    assert_eq!(
        triggered[0].details["authority"]["roles"],
        json!(["backend-lead"]),
        "the authority the request collected"
    );
    // The guard stopped: no promotion after the rollback.
    let n = weights(&m).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(weights(&m).len(), n, "no step after the rollback");

    // The verification the rollback owes is observed by the server and recorded on the request.
    let rid = b["request"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let verification = loop {
        let (st, v) = req(
            &r.base,
            reqwest::Method::GET,
            &format!("/api/v1/changes/CR-M/rollbacks/{rid}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let ver = v["request"]["verification"].clone();
        if ver["status"] != "pending" {
            break ver;
        }
        assert!(
            Instant::now() < deadline,
            "verification never recorded: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(verification["status"], "passed", "{verification:#}");
    assert_eq!(verification["by"], "integration:changegate-rollout");
    let names: Vec<&str> = verification["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"health:/api/v1/health"), "{names:?}");
    assert!(names.contains(&"error-rate"), "{names:?}");
    let evs = events(&r.db, "CR-M").await;
    assert_eq!(results(&evs, "rollback.verified"), ["passed"]);
}

both!(only_an_approved_exception_selects_another_plan);
/// Issue 14: "a different plan only through an approved exception". The exception names the plan
/// when it is requested (its reason must list it), its approvers approve it, and only then does a
/// start naming that plan run it; every other plan named by a request is refused and nothing starts.
async fn only_an_approved_exception_selects_another_plan(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-P")).await;
    let alice = token(&r.db, "alice", false).await;
    let (bob, sam) = (
        token(&r.db, "bob", false).await,
        token(&r.db, "sam", false).await,
    );
    let post = |tok: String, path: &'static str, body: Value| {
        let base = r.base.clone();
        async move { req(&base, reqwest::Method::POST, path, &tok, Some(body)).await }
    };
    let refused = |b: &Value, why: &str| {
        assert_eq!(b["code"], "plan-not-selectable", "{b}");
        assert_eq!(b["location"], "body `plan`", "{b}");
        assert!(
            b["message"].as_str().unwrap_or_default().contains(why),
            "{why}: {b}"
        );
    };

    // No exception: refused.
    let (st, b) = start(&r.base, &alice, "CR-P", Some(json!({"plan": "high-risk"}))).await;
    assert_eq!(st, 422, "{b}");
    refused(&b, "needs an approved exception");
    // An exception that selects high-risk, not yet approved: refused.
    let (st, b) = post(
        alice.clone(),
        "/api/v1/changes/CR-P/exceptions",
        json!({"reason": "critical-bugfix", "plan": "high-risk"}),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = start(&r.base, &alice, "CR-P", Some(json!({"plan": "high-risk"}))).await;
    assert_eq!(st, 422, "{b}");
    refused(&b, "not approved");
    for (tok, role) in [(bob, "backend-lead"), (sam, "sre-lead")] {
        let (st, b) = post(
            tok,
            "/api/v1/changes/CR-P/exceptions",
            json!({"approve_as": role}),
        )
        .await;
        assert_eq!(st, 201, "{b}");
    }
    // Approved, but a request naming another plan than the exception's is still refused.
    let (st, b) = start(&r.base, &alice, "CR-P", Some(json!({"plan": "emergency"}))).await;
    assert_eq!(st, 422, "{b}");
    refused(&b, "is not the plan the change's exception selected");
    assert!(
        rollouts(&r, &admin, "CR-P").await.is_empty(),
        "nothing started"
    );

    let (st, b) = start(&r.base, &alice, "CR-P", Some(json!({"plan": "high-risk"}))).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["plan"], "high-risk", "{b}");
    let evs = events(&r.db, "CR-P").await;
    let started = evs.iter().find(|e| e.kind == "deployment.start").unwrap();
    assert_eq!(
        started.details["rollout"]["plan_selected_by"], "exception",
        "{started:?}"
    );
}

both!(an_exception_reason_selects_only_the_plans_it_lists);
/// The reason's `plans` bound what an exception may select: an exception naming an unlisted plan
/// is not approved, however many approvals it collects.
async fn an_exception_reason_selects_only_the_plans_it_lists(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica(&spot, &clock, Some(config(&m, "5s")), "a").await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-Q")).await;
    let alice = token(&r.db, "alice", false).await;
    for (who, body) in [
        (
            "alice",
            json!({"reason": "critical-bugfix", "plan": "emergency"}),
        ),
        ("bob", json!({"approve_as": "backend-lead"})),
        ("sam", json!({"approve_as": "sre-lead"})),
    ] {
        let tok = token(&r.db, who, false).await;
        let (st, b) = req(
            &r.base,
            reqwest::Method::POST,
            "/api/v1/changes/CR-Q/exceptions",
            &tok,
            Some(body),
        )
        .await;
        assert_eq!(st, 201, "{b}");
    }
    let (st, b) = start(&r.base, &alice, "CR-Q", Some(json!({"plan": "emergency"}))).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (422, Some("plan-not-selectable")),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .contains("may not select rollout plan `emergency`"),
        "{b}"
    );
    assert!(rollouts(&r, &admin, "CR-Q").await.is_empty());
}

// Issue 17, "what every production change must carry": a server-run rollout on the real
// Prometheus gives its report row every field, each from what the server observed (the
// artifact its config builds from the commit, the paths git lists, the guard's baseline read
// before and the verification's read after) or from the change's record (PR link, ticket,
// incident, approvals).
both!(a_server_run_rollout_fills_every_field_of_its_report_row);
async fn a_server_run_rollout_fills_every_field_of_its_report_row(backend: Backend) {
    let m = metrics().await;
    // The change's repository under the server's repo root: base, then a commit touching two files.
    let root = tempfile::tempdir().unwrap();
    let repo = changegate_testkit::GitRepo::init_at(&root.path().join("chat"));
    repo.write("src/app.ts", "export const v = 1;\n");
    let base = repo.commit("base");
    repo.write("src/app.ts", "export const v = 2;\n");
    repo.write("src/routes/health.ts", "export const ok = true;\n");
    let head = repo.commit("feature");
    let mut cfg = config(&m, "5s");
    cfg.artifact = Some("registry.example/chat:{short}".into());
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let policy = policy();
    let db = spot.open(&policy).await;
    let state = AppState {
        rollouts: Some(Arc::new(Runtime::new(cfg, Some("a".into())).unwrap())),
        repo_root: Some(root.path().to_path_buf()),
        ..AppState::new(Arc::new(policy), db.clone(), clock.clone())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Replica {
        base: format!("http://{}", listener.local_addr().unwrap()),
        db,
        task: tokio::spawn(async move {
            changegate_server::serve(state, listener).await.unwrap();
        }),
    };
    let admin = token(&r.db, "admin", true).await;
    // A ready change whose commits are the repository's (approvals and attestations moved to
    // the real head), with its PR link, ticket and the incident it remediates on record.
    let s = ready_change(2, "CR-F");
    let (old_base, old_head) = (s.change.base_commit.clone(), s.change.head_commit.clone());
    let text = serde_json::to_string(&s)
        .unwrap()
        .replace(&old_head, &head)
        .replace(&old_base, &base);
    let mut s: ChangeState = serde_json::from_str(&text).unwrap();
    s.change.repository = "chat".into();
    s.change.pr_link = Some("https://github.com/acme/chat/pull/7".into());
    s.change.ticket = Some("CHAT-7".into());
    s.remediates = vec!["INC-7".into()];
    import(&r, &admin, &s).await;
    let alice = token(&r.db, "alice", false).await;
    let (st, b) = start(&r.base, &alice, "CR-F", None).await;
    assert_eq!(st, 201, "{b}");
    let done = wait_for(&r, &admin, "CR-F", 90, "verification", |v| {
        v["phase"] == "completed"
    })
    .await;
    assert_eq!(done["verification"]["result"], "passed", "{done:#}");

    // The events carry what the server observed.
    let evs = events(&r.db, "CR-F").await;
    let start_ev = evs.iter().find(|e| e.kind == "deployment.start").unwrap();
    assert_eq!(
        start_ev.what["artifact-version"],
        format!("registry.example/chat:{}", &head[..12])
    );
    assert_eq!(
        start_ev.what["changed-files"],
        json!(["src/app.ts", "src/routes/health.ts"])
    );
    assert_eq!(start_ev.details["environment"], "production");
    let first_step = evs.iter().find(|e| e.kind == "deployment.step").unwrap();
    assert_eq!(
        first_step.details["observed"]["phase"], "before",
        "the baseline read: {first_step:?}"
    );
    let verified = evs
        .iter()
        .find(|e| e.kind == "deployment.verification")
        .unwrap();
    assert_eq!(verified.details["observed"]["phase"], "after");
    let finish = evs.iter().find(|e| e.kind == "deployment.finish").unwrap();
    assert!(finish.when["duration"].as_i64().unwrap() >= 4, "{finish:?}");

    // The report's population row has every field.
    let month = changegate_report::Period::containing(
        changegate_report::ReportKind::Monthly,
        r.db.store().now(),
    );
    let (st, rep) = req(
        &r.base,
        reqwest::Method::GET,
        &format!("/api/v1/reports/monthly/{month}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{rep}");
    let row = rep["body"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change_id"] == "CR-F")
        .cloned()
        .unwrap_or_else(|| panic!("CR-F in the population: {rep:#}"));
    let d: changegate_report::Deployment = serde_json::from_value(row.clone()).unwrap();
    assert_eq!(d.commit.as_deref(), Some(head.as_str()));
    assert!(
        d.artifact_version
            .as_deref()
            .unwrap()
            .starts_with("registry.example/chat:")
    );
    assert_eq!(d.environment.as_deref(), Some("production"));
    assert_eq!(d.changed_files, ["src/app.ts", "src/routes/health.ts"]);
    assert_eq!(d.deployer, "alice");
    assert!(!d.approvals.is_empty(), "{row:#}");
    assert!(d.duration_s.unwrap() >= 4);
    assert!(d.finished_at.is_some());
    assert_eq!(
        d.pr_link.as_deref(),
        Some("https://github.com/acme/chat/pull/7")
    );
    assert_eq!(d.ticket.as_deref(), Some("CHAT-7"));
    assert_eq!(d.incident.as_deref(), Some("INC-7"));
    assert_eq!(d.outcome, changegate_report::facts::Outcome::Success);
    // The service answers 0.1 % errors at 50 ms: both reads see it.
    for (what, v, lo, hi) in [
        ("error rate before", d.error_rate_before, 0.0, 1.0),
        ("error rate after", d.error_rate_after, 0.0, 1.0),
        ("p95 before", d.latency_before_ms, 10.0, 250.0),
        ("p95 after", d.latency_after_ms, 10.0, 250.0),
    ] {
        let v = v.unwrap_or_else(|| panic!("{what} missing: {row:#}"));
        assert!((lo..=hi).contains(&v), "{what} = {v}");
    }
    // The CSV has the before/after columns filled.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/reports/monthly/{month}?format=csv",
            r.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let line = lines.find(|l| l.starts_with("CR-F,")).unwrap();
    for col in [
        "artifact_version",
        "environment",
        "changed_files",
        "error_rate_before",
        "error_rate_after",
        "latency_p95_before_ms",
        "latency_p95_after_ms",
        "ticket",
        "incident",
    ] {
        let i = header.iter().position(|h| *h == col).unwrap();
        // No field of this row holds a comma, so a plain split finds the cell.
        assert!(!line.split(',').nth(i).unwrap().is_empty(), "{col}: {line}");
    }
}

/// The standard plan's first step soaks ten minutes: the rollout stays active while the test
/// reads the dashboard.
const SLOW: &str = r#"
[rollout.plans.standard]
description = "test: 5% for ten minutes, then 100%"
steps = [
  { environment = "production", weight = 5, soak = "10m" },
  { environment = "production", weight = 100 },
]
monitor_after = "2s"
"#;

/// A dashboard session for `token` on `base`: the cookie header.
async fn dashboard_session(base: &str, token: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = login.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let at = body.find(marker).unwrap() + marker.len();
    let csrf = &body[at..at + body[at..].find('"').unwrap()];
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&csrf={}",
            changegate_server::dashboard::pages::urlencode(token),
            changegate_server::dashboard::pages::urlencode(csrf)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("cg_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// `data-line-points` of the chart of `trigger` on the rollouts page (the values drawn from
/// Prometheus), and the figure's text.
fn chart_of(page: &str, trigger: &str) -> Option<(usize, String)> {
    let at = page.find(&format!("<code>{trigger}</code>"))?;
    let figure = &page[at..at + page[at..].find("</figure>")?];
    let n = figure
        .split("data-line-points=\"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()?;
    Some((n, figure.to_string()))
}

both!(the_dashboard_charts_each_trigger_from_prometheus);
async fn the_dashboard_charts_each_trigger_from_prometheus(backend: Backend) {
    let m = metrics().await;
    let spot = DbSpot::new(backend);
    let clock = clock_at(TUE);
    let r = replica_with(
        &spot,
        &clock,
        Some(config(&m, "5s")),
        "a",
        changegate_testkit::gate::policy_with(SLOW),
    )
    .await;
    let admin = token(&r.db, "admin", true).await;
    import(&r, &admin, &ready_change(2, "CR-2")).await;
    let deployer = integration(
        &r.db,
        "deploy",
        &[changegate_server::token::Scope::Deployments],
    )
    .await;
    let (st, b) = start(&r.base, &deployer, "CR-2", None).await;
    assert_eq!(st, 201, "{b}");
    let ro = wait_for(&r, &admin, "CR-2", 60, "the first step", |v| {
        v["steps"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    let id = ro["id"].as_str().unwrap().to_string();
    let session = dashboard_session(&r.base, &admin).await;
    let http = reqwest::Client::new();
    // The chart's line is Prometheus's values of the guard's own query over the last hour (a
    // point every 10 s where there is data): wait for a few.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (points, figure) = loop {
        let page = http
            .get(format!("{}/rollouts", r.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("id=\"rollout-{id}\"")), "{page}");
        assert!(!page.contains("No line from Prometheus"), "{page}");
        if let Some((n, fig)) = chart_of(&page, "slo-p95-latency")
            && n >= 3
        {
            break (n, fig);
        }
        assert!(
            Instant::now() < deadline,
            "no Prometheus line on the page: {page}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        figure.contains("line: Prometheus, the guard&#39;s query")
            || figure.contains("line: Prometheus, the guard's query"),
        "{figure}"
    );
    assert!(
        figure.contains("class=\"chart-limit\""),
        "the guard's limit: {figure}"
    );
    // (The guard's own readings are dots on the same axis; this server's clock is a test's, in
    // March, so they fall outside the hour Prometheus has: the unit tests of the chart cover
    // them.)
    assert!(points <= 361, "{points}");
    // The page refreshes itself (htmx) and reads without JavaScript: the values are text too.
    let page = http
        .get(format!("{}/rollouts", r.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hx-trigger=\"every 5s\""));
    assert!(page.contains("against limit"));
}

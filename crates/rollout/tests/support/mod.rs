//! Real parts for the guard's tests and benchmark: a small HTTP service whose traffic, error rate,
//! latency histogram, health, memory and DB pool the test controls (exposed in Prometheus text
//! format under the conventional metric names), and a real Prometheus (Debian package) started on
//! a free loopback port with a temporary config and data dir, scraping it.
//!
//! Traffic is simulated inside the service: at each scrape the counters advance by what `rps`
//! requests per second with the current error share and latency would have produced since the
//! last scrape. That keeps the tests cheap on two cores while Prometheus sees ordinary counters
//! and histograms.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

/// What the service currently does.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Requests per second.
    pub rps: f64,
    /// Share of requests answered 5xx (0..1).
    pub error_share: f64,
    /// Latency of every request, seconds.
    pub latency: f64,
    /// Health probe failing (one failure per second while true).
    pub unhealthy: bool,
    /// Memory in use, percent of the limit.
    pub memory_pct: f64,
    /// Busy connections of a pool of 20 open ones.
    pub pool_busy: f64,
}

impl Profile {
    /// 0.1 % errors, 50 ms, healthy, 50 % memory, 8/20 pool.
    pub fn healthy() -> Self {
        Profile {
            rps: 50.0,
            error_share: 0.001,
            latency: 0.05,
            unhealthy: false,
            memory_pct: 50.0,
            pool_busy: 8.0,
        }
    }
}

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const MEMORY_LIMIT: f64 = 512.0 * 1024.0 * 1024.0;

#[derive(Debug)]
pub struct Sim {
    pub profile: Profile,
    /// Profile switched to when a set-weight webhook sets this weight.
    pub degrade_at: Option<(u8, Profile)>,
    ok: f64,
    errors: f64,
    buckets: [f64; BUCKETS.len()],
    sum: f64,
    health_failures: f64,
    last: Instant,
    /// When the profile last changed.
    pub changed_at: Option<Instant>,
    /// When each scrape was served.
    pub scrapes: Vec<Instant>,
    /// Weights set through the webhook.
    pub weights: Vec<u8>,
    /// When the rollback webhook was called.
    pub rolled_back: Option<Instant>,
    /// Queries slower than 1 s per second (`db_slow_queries_total`).
    pub slow_queries_per_s: f64,
    slow_queries: f64,
    /// Socket.IO disconnects per second (`socketio_disconnects_total`).
    pub disconnects_per_s: f64,
    disconnects: f64,
    /// The feature flag's rollout percentage (`feature_flag_rollout_percent`): the weight last
    /// set, 0 after a rollback.
    pub flag_percent: f64,
    /// `/api/v1/health/database` answers 503 while true.
    pub database_down: bool,
    /// Rollback webhook calls.
    pub rollbacks: u32,
}

impl Sim {
    fn advance(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let p = &self.profile;
        let n = p.rps * dt;
        self.errors += n * p.error_share;
        self.ok += n * (1.0 - p.error_share);
        if let Some(i) = BUCKETS.iter().position(|b| p.latency <= *b) {
            self.buckets[i] += n;
        }
        self.sum += n * p.latency;
        if p.unhealthy {
            self.health_failures += dt;
        }
        self.slow_queries += self.slow_queries_per_s * dt;
        self.disconnects += self.disconnects_per_s * dt;
    }

    /// Switch profile (the counters keep their history).
    pub fn set(&mut self, profile: Profile) {
        self.advance();
        self.profile = profile;
        self.changed_at = Some(Instant::now());
    }

    fn render(&mut self) -> String {
        self.advance();
        self.scrapes.push(Instant::now());
        let mut s = String::new();
        s.push_str("# TYPE http_requests_total counter\n");
        s.push_str(&format!(
            "http_requests_total{{code=\"200\"}} {}\n",
            self.ok
        ));
        s.push_str(&format!(
            "http_requests_total{{code=\"500\"}} {}\n",
            self.errors
        ));
        s.push_str("# TYPE http_request_duration_seconds histogram\n");
        let mut cum = 0.0;
        for (b, c) in BUCKETS.iter().zip(self.buckets) {
            cum += c;
            s.push_str(&format!(
                "http_request_duration_seconds_bucket{{le=\"{b}\"}} {cum}\n"
            ));
        }
        s.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cum}\n"
        ));
        s.push_str(&format!("http_request_duration_seconds_sum {}\n", self.sum));
        s.push_str(&format!("http_request_duration_seconds_count {cum}\n"));
        s.push_str("# TYPE health_check_failures_total counter\n");
        s.push_str(&format!(
            "health_check_failures_total {}\n",
            self.health_failures.floor()
        ));
        s.push_str("# TYPE container_memory_working_set_bytes gauge\n");
        s.push_str(&format!(
            "container_memory_working_set_bytes {}\n",
            (self.profile.memory_pct / 100.0 * MEMORY_LIMIT).round()
        ));
        s.push_str(&format!(
            "container_spec_memory_limit_bytes {MEMORY_LIMIT}\n"
        ));
        s.push_str(&format!(
            "prisma_pool_connections_busy {}\n",
            self.profile.pool_busy
        ));
        s.push_str("prisma_pool_connections_open 20\n");
        s.push_str("# TYPE db_slow_queries_total counter\n");
        s.push_str(&format!(
            "db_slow_queries_total {}\n",
            self.slow_queries.floor()
        ));
        s.push_str("# TYPE socketio_disconnects_total counter\n");
        s.push_str(&format!(
            "socketio_disconnects_total {}\n",
            self.disconnects.floor()
        ));
        s.push_str("# TYPE feature_flag_rollout_percent gauge\n");
        s.push_str(&format!(
            "feature_flag_rollout_percent {}\n",
            self.flag_percent
        ));
        s
    }
}

/// The test service.
#[derive(Clone)]
pub struct TestService {
    pub addr: SocketAddr,
    pub sim: Arc<Mutex<Sim>>,
}

async fn metrics(State(sim): State<Arc<Mutex<Sim>>>) -> String {
    sim.lock().unwrap().render()
}

async fn weight(
    State(sim): State<Arc<Mutex<Sim>>>,
    Json(body): Json<serde_json::Value>,
) -> &'static str {
    let w = body.get("weight").and_then(|w| w.as_u64()).unwrap_or(0) as u8;
    let mut s = sim.lock().unwrap();
    s.weights.push(w);
    s.flag_percent = f64::from(w);
    if let Some((at, profile)) = s.degrade_at.clone()
        && at == w
    {
        s.set(profile);
    }
    "ok"
}

async fn rollback(State(sim): State<Arc<Mutex<Sim>>>) -> &'static str {
    let mut s = sim.lock().unwrap();
    s.rolled_back = Some(Instant::now());
    s.rollbacks += 1;
    s.flag_percent = 0.0;
    s.set(Profile::healthy());
    "rolled back"
}

async fn health() -> &'static str {
    "ok"
}

async fn health_database(
    State(sim): State<Arc<Mutex<Sim>>>,
) -> (axum::http::StatusCode, &'static str) {
    if sim.lock().unwrap().database_down {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database down")
    } else {
        (axum::http::StatusCode::OK, "ok")
    }
}

impl TestService {
    /// Start on 127.0.0.1:0 with a profile.
    pub async fn start(profile: Profile) -> Self {
        let sim = Arc::new(Mutex::new(Sim {
            profile,
            degrade_at: None,
            ok: 0.0,
            errors: 0.0,
            buckets: [0.0; BUCKETS.len()],
            sum: 0.0,
            health_failures: 0.0,
            last: Instant::now(),
            changed_at: None,
            scrapes: Vec::new(),
            weights: Vec::new(),
            rolled_back: None,
            slow_queries_per_s: 0.0,
            slow_queries: 0.0,
            disconnects_per_s: 0.0,
            disconnects: 0.0,
            flag_percent: 0.0,
            database_down: false,
            rollbacks: 0,
        }));
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/ctl/weight", post(weight))
            .route("/ctl/rollback", post(rollback))
            .route("/api/v1/health", get(health))
            .route("/api/v1/health/database", get(health_database))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestService { addr, sim }
    }

    /// Switch to `profile` when the set-weight webhook sets `weight`.
    pub fn degrade_at(&self, weight: u8, profile: Profile) {
        self.sim.lock().unwrap().degrade_at = Some((weight, profile));
    }

    /// Switch profile now.
    pub fn set(&self, profile: Profile) {
        self.sim.lock().unwrap().set(profile);
    }

    /// Set-weight webhook URL.
    pub fn weight_hook(&self) -> String {
        format!("http://{}/ctl/weight", self.addr)
    }

    /// Base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Rollback webhook URL.
    pub fn rollback_hook(&self) -> String {
        format!("http://{}/ctl/rollback", self.addr)
    }
}

/// A real Prometheus server, killed on drop.
pub struct Prometheus {
    pub url: String,
    pub child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

fn prometheus_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return p.into();
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/local/bin"])
    {
        let p = PathBuf::from(dir).join("prometheus");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the `prometheus` binary is missing: these tests need a real Prometheus. Install it with \
         `bash scripts/services.sh` (Debian package `prometheus`) or set PROMETHEUS_BIN."
    )
}

impl Prometheus {
    /// Start scraping `targets` (each labelled `service="<name>"`) every `scrape`.
    pub async fn start(targets: &[(&str, SocketAddr)], scrape: Duration) -> Self {
        let bin = prometheus_bin();
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let secs = format!("{}ms", scrape.as_millis());
            let mut cfg = format!(
                "global:\n  scrape_interval: {secs}\n  scrape_timeout: {secs}\n  evaluation_interval: {secs}\nscrape_configs:\n  - job_name: svc\n    static_configs:\n"
            );
            for (name, addr) in targets {
                cfg.push_str(&format!(
                    "      - targets: ['{addr}']\n        labels: {{service: '{name}'}}\n"
                ));
            }
            let cfg_path = dir.path().join("prometheus.yml");
            std::fs::write(&cfg_path, cfg).unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = tokio::process::Command::new(&bin)
                .arg(format!("--config.file={}", cfg_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let url = format!("http://127.0.0.1:{port}");
            let client = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!(
                        "prometheus exited with {status}: {}",
                        std::fs::read_to_string(dir.path().join("prometheus.log"))
                            .unwrap_or_default()
                    );
                    break;
                }
                if let Ok(r) = client.get(format!("{url}/-/ready")).send().await
                    && r.status().is_success()
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if ready {
                return Prometheus {
                    url,
                    child,
                    _dir: dir,
                };
            }
        }
        panic!("prometheus did not become ready: {last_err}");
    }

    /// Wait until every target has at least `n` scrapes of request counters in Prometheus, so
    /// `rate()` has two points.
    pub async fn wait_for_samples(&self, selector: &str, n: usize) {
        let prom =
            changegate_rollout::prom::Prometheus::new(&self.url, Duration::from_secs(2)).unwrap();
        let q = format!("min(count_over_time(http_requests_total{{{selector}}}[5m]))");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(changegate_rollout::prom::Sample::Value(v)) = prom.instant(&q, None).await
                && v >= n as f64
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("prometheus never scraped {n} samples for {selector}");
    }

    /// Kill the server now (simulates an outage).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

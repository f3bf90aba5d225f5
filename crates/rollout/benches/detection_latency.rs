//! Detection latency of the rollout guard, end to end, against a real Prometheus.
//!
//! From the moment the test service degrades (10 % of requests fail) to the moment the rollback
//! action (a webhook to the service) has run, with a 5 s scrape interval and a 5 s evaluation
//! interval, broken down into:
//! - scrape: degradation → first scrape that carries it,
//! - wait: that scrape → start of the next guard evaluation,
//! - evaluate: queries + decision,
//! - action: the rollback webhook.
//!
//! The degradation is injected at a different phase of the scrape/evaluation cycles in each run.
//! The result is compared with the sum of the two intervals (the expected worst case, the
//! baseline of this run), the goal (15 s) and the seed policy's requirement (30 s).
//!
//! Then the rollback's switch time, as the server records it: breach detected (the engine's
//! decision) → rollback action invoked → action returned → traffic switched (Prometheus confirms
//! the feature flag's percentage is back at 0, read every 100 ms), with the ratios to this run's
//! baseline (one scrape interval: the best a metric can confirm) and to the policy's 30 s.
//!
//! Run: `cargo bench -p changegate-rollout --bench detection_latency` (needs `prometheus`,
//! installed by scripts/services.sh). `RUNS=n` changes the number of runs (default 5).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use changegate_rollout::action::Action;
use changegate_rollout::progress::Hidden;
use changegate_rollout::recorder::MemoryRecorder;
use changegate_rollout::runner::{PromSource, RunEnd, RunOptions, run};
use changegate_rollout::spec::{GuardSettings, resolve};
use jiff::Timestamp;
use support::{Profile, Prometheus, TestService};

const SCRAPE: Duration = Duration::from_secs(5);
const EVAL: Duration = Duration::from_secs(5);

const POLICY: &str = r#"
[rollout.plans.bench]
description = "Stay at 5% while the benchmark degrades the service"
steps = [
  { environment = "production", weight = 5, soak = "1h" },
  { environment = "production", weight = 100 },
]
"#;

struct Sample {
    scrape: f64,
    wait: f64,
    evaluate: f64,
    action: f64,
    total: f64,
    /// Breach detected → rollback action invoked.
    to_action: f64,
    /// Action returned → Prometheus confirms the switch.
    to_switched: f64,
    /// Breach detected → switched.
    breach_switched: f64,
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let samples = rt.block_on(bench(runs));
    println!(
        "\nrollout guard detection latency — scrape {}s, evaluation {}s, {} runs",
        SCRAPE.as_secs(),
        EVAL.as_secs(),
        samples.len()
    );
    println!(
        "{:>4} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "run", "scrape", "wait", "evaluate", "action", "total"
    );
    for (i, s) in samples.iter().enumerate() {
        println!(
            "{:>4} {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s",
            i + 1,
            s.scrape,
            s.wait,
            s.evaluate,
            s.action,
            s.total
        );
    }
    let n = samples.len() as f64;
    let mean = |f: fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / n;
    let max = samples.iter().map(|s| s.total).fold(0.0, f64::max);
    println!(
        "mean {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s",
        mean(|s| s.scrape),
        mean(|s| s.wait),
        mean(|s| s.evaluate),
        mean(|s| s.action),
        mean(|s| s.total)
    );
    let bound = (SCRAPE + EVAL).as_secs_f64();
    println!("max total {max:.3}s");
    println!(
        "ratio max / (scrape + evaluation interval = {bound:.0}s, this run's baseline): {:.2}",
        max / bound
    );
    println!(
        "ratio max / goal 15s: {:.2}   ratio max / seed requirement 30s: {:.2}",
        max / 15.0,
        max / 30.0
    );
    println!(
        "verdict: {}",
        if max <= 15.0 {
            "within the 15 s goal"
        } else {
            "OVER the 15 s goal"
        }
    );
    println!("\nrollback switch time — breach → action → switched (metric-confirmed)");
    println!(
        "{:>4} {:>13} {:>9} {:>13} {:>16}",
        "run", "breach→act", "action", "act→switched", "breach→switched"
    );
    for (i, s) in samples.iter().enumerate() {
        println!(
            "{:>4} {:>11.2}ms {:>8.3}s {:>12.3}s {:>15.3}s",
            i + 1,
            s.to_action * 1000.0,
            s.action,
            s.to_switched,
            s.breach_switched
        );
    }
    let worst = samples
        .iter()
        .map(|s| s.breach_switched)
        .fold(0.0, f64::max);
    println!(
        "mean breach→switched {:.3}s, max {worst:.3}s; ratio max / scrape interval ({}s, this run's baseline): {:.2}; ratio max / rollback deadline 30s: {:.2} ({})",
        mean(|s| s.breach_switched),
        SCRAPE.as_secs(),
        worst / SCRAPE.as_secs_f64(),
        worst / 30.0,
        if worst <= 30.0 { "within" } else { "EXCEEDED" }
    );
}

async fn bench(runs: usize) -> Vec<Sample> {
    let mut services = Vec::new();
    for _ in 0..runs {
        services.push(TestService::start(Profile::healthy()).await);
    }
    let names: Vec<String> = (0..runs).map(|i| format!("bench{i}")).collect();
    let targets: Vec<(&str, std::net::SocketAddr)> = names
        .iter()
        .map(String::as_str)
        .zip(services.iter().map(|s| s.addr))
        .collect();
    let prom = Prometheus::start(&targets, SCRAPE).await;
    eprintln!("waiting for three scrapes of every service ...");
    prom.wait_for_samples("", 3).await;
    let policy = changegate_policy::load(POLICY, "bench-policy.toml")
        .unwrap()
        .policy;
    let spec = resolve(&policy, Some("bench"), Some(2), &GuardSettings::default()).unwrap();
    let mut out = Vec::new();
    for (i, svc) in services.iter().enumerate() {
        let client =
            changegate_rollout::prom::Prometheus::new(&prom.url, Duration::from_secs(2)).unwrap();
        let source = PromSource::new(client, &spec, &format!("service=\"{}\"", names[i]));
        let opts = RunOptions {
            interval: EVAL,
            set_weight: Some(Action::parse(&svc.weight_hook())),
            rollback: Action::parse(&svc.rollback_hook()),
            dry_run: false,
            change: None,
            max_evaluations: Some(100),
            action_timeout: Duration::from_secs(5),
        };
        // Degrade at a different phase of the cycles each run.
        let offset = Duration::from_millis(700 + 1_900 * i as u64 % 5_000);
        let degrade = {
            let svc = svc.clone();
            tokio::spawn(async move {
                while svc.sim.lock().unwrap().weights.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(offset).await;
                let (instant, wall) = (Instant::now(), Timestamp::now());
                svc.set(Profile {
                    error_share: 0.10,
                    ..Profile::healthy()
                });
                (instant, wall)
            })
        };
        let mut rec = MemoryRecorder::default();
        let outcome = run(&spec, &source, &mut rec, &mut Hidden, &opts)
            .await
            .unwrap();
        let (t0, t0_wall) = degrade.await.unwrap();
        assert_eq!(
            outcome.end,
            RunEnd::RolledBack,
            "run {i}: {:#?}",
            outcome.last
        );
        let rb = outcome.rollback.unwrap();
        // Traffic switched: Prometheus sees the flag back at 0 %.
        let q = format!(
            "max(feature_flag_rollout_percent{{service=\"{}\"}})",
            names[i]
        );
        let confirm =
            changegate_rollout::prom::Prometheus::new(&prom.url, Duration::from_secs(2)).unwrap();
        let give_up = Instant::now() + Duration::from_secs(60);
        let switched = loop {
            if let Ok(changegate_rollout::prom::Sample::Value(v)) = confirm.instant(&q, None).await
                && v <= 0.0
            {
                break Instant::now();
            }
            assert!(
                Instant::now() < give_up,
                "run {i}: the switch was never confirmed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let sim = svc.sim.lock().unwrap();
        let first_scrape = sim
            .scrapes
            .iter()
            .find(|s| **s >= t0)
            .copied()
            .expect("a scrape after the degradation");
        let done = sim.rolled_back.expect("rollback webhook received");
        let secs = |a: Timestamp, b: Timestamp| b.duration_since(a).as_secs_f64();
        let scrape = first_scrape.duration_since(t0).as_secs_f64();
        let scrape_wall =
            t0_wall + jiff::SignedDuration::try_from(first_scrape.duration_since(t0)).unwrap();
        let to_action = secs(rb.decided, rb.action.started).max(0.0);
        let to_switched = switched.duration_since(done).as_secs_f64();
        let sample = Sample {
            scrape,
            wait: secs(scrape_wall, rb.evaluation_started),
            evaluate: secs(rb.evaluation_started, rb.decided),
            action: rb.action.seconds,
            total: done.duration_since(t0).as_secs_f64(),
            to_action,
            to_switched,
            breach_switched: to_action + rb.action.seconds + to_switched,
        };
        eprintln!(
            "run {}: degraded at +{:.1}s into step 1, rolled back after {:.3}s",
            i + 1,
            offset.as_secs_f64(),
            sample.total
        );
        out.push(sample);
    }
    out
}

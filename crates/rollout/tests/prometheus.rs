//! The guard against a real Prometheus scraping a real (small) service: each trigger kind fires on
//! unhealthy metrics and not on healthy ones, a canary walks to 100 %, an outage of Prometheus
//! holds or rolls back per the no-data policy, and replay reads history from the range API.
//!
//! Scrape interval 1 s, `rate()` window 10 s, plan soaks of seconds (test policy override). No
//! assertion is about time: the loops have generous deadlines only so a broken build fails
//! instead of hanging.

mod support;

use std::time::Duration;

use changegate_rollout::action::Action;
use changegate_rollout::codes::ReasonCode;
use changegate_rollout::progress::Hidden;
use changegate_rollout::prom::Prometheus as PromClient;
use changegate_rollout::recorder::{EventKind, MemoryRecorder};
use changegate_rollout::replay::{ReplayOptions, ReplayVerdict, replay};
use changegate_rollout::runner::{PromSource, RunEnd, RunOptions, RunOutcome, fetch_history, run};
use changegate_rollout::spec::{GuardSettings, GuardSpec, resolve};
use jiff::{SignedDuration, Timestamp};
use support::{Profile, Prometheus, TestService};

const TEST_POLICY: &str = r#"
[rollout.plans.standard]
description = "Canary 5% -> 50% -> 100%, soaks shortened for tests"
steps = [
  { environment = "production", weight = 5, soak = "2s" },
  { environment = "production", weight = 50, soak = "2s" },
  { environment = "production", weight = 100 },
]
monitor_after = "2s"

[rollout.plans.hold]
description = "Stay at 5% for an hour"
steps = [
  { environment = "production", weight = 5, soak = "1h" },
  { environment = "production", weight = 100 },
]

[rollback.triggers.memory-sustained]
window = "3s"

[rollback.triggers.health-check-failures]
window = "20s"
"#;

const TEST_SETTINGS: &str = "rate_window = \"10s\"\n";

fn spec(plan: &str, extra_settings: &str) -> GuardSpec {
    let policy = changegate_policy::load(TEST_POLICY, "test-policy.toml")
        .unwrap()
        .policy;
    let settings = GuardSettings::from_toml(&format!("{TEST_SETTINGS}{extra_settings}")).unwrap();
    resolve(&policy, Some(plan), Some(2), &settings).unwrap()
}

fn opts(
    set_weight: Option<Action>,
    rollback: Action,
    interval_ms: u64,
    max: Option<u64>,
) -> RunOptions {
    RunOptions {
        interval: Duration::from_millis(interval_ms),
        set_weight,
        rollback,
        dry_run: false,
        change: Some("PR-7".into()),
        max_evaluations: max,
        action_timeout: Duration::from_secs(5),
    }
}

async fn guard(
    spec: &GuardSpec,
    url: &str,
    selector: &str,
    o: &RunOptions,
) -> (RunOutcome, MemoryRecorder) {
    let prom = PromClient::new(url, Duration::from_secs(5)).unwrap();
    let source = PromSource::new(prom, spec, selector);
    let mut rec = MemoryRecorder::default();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        run(spec, &source, &mut rec, &mut Hidden, o),
    )
    .await
    .expect("guard did not finish within 120 s")
    .unwrap();
    (out, rec)
}

fn fired(out: &RunOutcome) -> Vec<(ReasonCode, String)> {
    out.last
        .reasons
        .iter()
        .filter(|r| r.code != ReasonCode::ShadowBreach)
        .map(|r| (r.code, r.trigger.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_walks_to_100_percent_on_healthy_metrics() {
    let svc = TestService::start(Profile::healthy()).await;
    let prom = Prometheus::start(&[("chat", svc.addr)], Duration::from_secs(1)).await;
    prom.wait_for_samples(r#"service="chat""#, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights");
    let set_weight = Action::parse(&format!(
        "echo {{weight}} {{environment}} >> {}",
        weights.display()
    ));
    let spec = spec("standard", "");
    let (out, rec) = guard(
        &spec,
        &prom.url,
        r#"service="chat""#,
        &opts(
            Some(set_weight),
            Action::parse(&svc.rollback_hook()),
            300,
            None,
        ),
    )
    .await;
    assert_eq!(out.end, RunEnd::Completed, "{:#?}", out.last.reasons);
    assert_eq!(
        std::fs::read_to_string(&weights).unwrap(),
        "5 production\n50 production\n100 production\n"
    );
    assert!(svc.sim.lock().unwrap().rolled_back.is_none());
    // Every trigger read real data and stayed healthy; the relative ones measured a baseline.
    assert!(
        out.last
            .triggers
            .iter()
            .all(|t| t.state == ReasonCode::Healthy && t.value.is_some()),
        "{:#?}",
        out.last.triggers
    );
    let started = rec
        .events
        .iter()
        .find(|e| e.kind == EventKind::Evaluation)
        .unwrap();
    assert_eq!(
        started
            .reasons
            .iter()
            .filter(|r| r.code == ReasonCode::BaselineMeasured)
            .count(),
        2
    );
    let steps: Vec<u8> = rec
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Step)
        .filter_map(|e| e.weight)
        .collect();
    assert_eq!(steps, [5, 50, 100]);
    for e in &rec.events {
        assert!(
            e.reasons
                .iter()
                .all(|r| !matches!(r.code, ReasonCode::NoData | ReasonCode::QueryFailed)),
            "{e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trigger_kind_rolls_back_and_healthy_traffic_does_not() {
    let h = Profile::healthy();
    // (service, degraded profile at 5 %, expected trigger, its code, triggers that must NOT fire)
    let scenarios: Vec<(&str, Profile, &str, ReasonCode, &[&str])> = vec![
        (
            "abs-error",
            Profile {
                error_share: 0.05,
                ..h.clone()
            },
            "slo-error-rate",
            ReasonCode::ThresholdExceeded,
            &[],
        ),
        (
            "abs-p95",
            Profile {
                latency: 0.4,
                ..h.clone()
            },
            "slo-p95-latency",
            ReasonCode::ThresholdExceeded,
            &[],
        ),
        (
            "rel-error",
            Profile {
                error_share: 0.0045,
                ..h.clone()
            },
            "error-rate-increase",
            ReasonCode::BaselineExceeded,
            &["slo-error-rate"],
        ),
        (
            "rel-p95",
            Profile {
                latency: 0.2,
                ..h.clone()
            },
            "p95-latency-increase",
            ReasonCode::BaselineExceeded,
            &["slo-p95-latency"],
        ),
        (
            "count-health",
            Profile {
                unhealthy: true,
                ..h.clone()
            },
            "health-check-failures",
            ReasonCode::CountExceeded,
            &[],
        ),
        (
            "util-pool",
            Profile {
                pool_busy: 19.0,
                ..h.clone()
            },
            "db-pool-exhaustion",
            ReasonCode::ThresholdExceeded,
            &[],
        ),
        (
            "sustained-mem",
            Profile {
                memory_pct: 90.0,
                ..h.clone()
            },
            "memory-sustained",
            ReasonCode::SustainedBreach,
            &[],
        ),
    ];
    let mut services = Vec::new();
    for (name, bad, ..) in &scenarios {
        let svc = TestService::start(h.clone()).await;
        svc.degrade_at(5, bad.clone());
        services.push((*name, svc));
    }
    let control = TestService::start(h.clone()).await;
    let mut targets: Vec<(&str, std::net::SocketAddr)> =
        services.iter().map(|(n, s)| (*n, s.addr)).collect();
    targets.push(("control", control.addr));
    let prom = Prometheus::start(&targets, Duration::from_secs(1)).await;
    prom.wait_for_samples("", 3).await;
    let spec = spec("hold", "");

    let mut runs = tokio::task::JoinSet::new();
    for ((name, svc), (_, _, expected, code, not)) in services.iter().zip(scenarios.iter()) {
        // A sharp degradation crosses the relative limit (baseline + 0.3 pt, + 100 ms) on its way
        // to the absolute one; mute the relative sibling so the absolute trigger is what fires.
        let mute = match *name {
            "abs-error" => "[triggers.error-rate-increase]\nconsecutive = 1000000\n",
            "abs-p95" => "[triggers.p95-latency-increase]\nconsecutive = 1000000\n",
            _ => "",
        };
        let spec = self::spec("hold", mute);
        let (url, svc) = (prom.url.clone(), svc.clone());
        let (name, expected, code, not) = (
            name.to_string(),
            expected.to_string(),
            *code,
            not.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        runs.spawn(async move {
            let o = opts(
                Some(Action::parse(&svc.weight_hook())),
                Action::parse(&svc.rollback_hook()),
                500,
                Some(240),
            );
            let (out, rec) = guard(&spec, &url, &format!("service=\"{name}\""), &o).await;
            (name, expected, code, not, out, rec, svc)
        });
    }
    let control_run = {
        let o = opts(
            Some(Action::parse(&control.weight_hook())),
            Action::parse(&control.rollback_hook()),
            500,
            Some(30),
        );
        guard(&spec, &prom.url, r#"service="control""#, &o).await
    };
    while let Some(joined) = runs.join_next().await {
        let (name, expected, code, not, out, rec, svc) = joined.unwrap();
        assert_eq!(out.end, RunEnd::RolledBack, "{name}: {:#?}", out.last);
        let fired = fired(&out);
        assert!(
            fired.contains(&(code, expected.clone())),
            "{name}: expected {expected} ({code}), fired {fired:?}"
        );
        for n in &not {
            assert!(
                !fired.iter().any(|(_, t)| t == n),
                "{name}: {n} must not fire, fired {fired:?}"
            );
        }
        // The rollback webhook ran, and the log has the rollback with the values that caused it.
        assert!(svc.sim.lock().unwrap().rolled_back.is_some(), "{name}");
        let rb = rec
            .events
            .iter()
            .find(|e| e.kind == EventKind::Rollback)
            .unwrap();
        assert!(rb.action.as_ref().unwrap().ok);
        let r = rb
            .reasons
            .iter()
            .find(|r| r.trigger.as_deref() == Some(expected.as_str()))
            .unwrap();
        assert!(r.value.unwrap() > r.limit.unwrap(), "{name}: {r:?}");
    }
    // Healthy traffic: no trigger fires, every query has data, the step is held for its soak.
    let (out, rec) = control_run;
    assert_eq!(out.end, RunEnd::Stopped, "{:#?}", out.last);
    assert_eq!(out.last.step, Some(0));
    assert!(
        out.last
            .triggers
            .iter()
            .all(|t| t.state == ReasonCode::Healthy),
        "{:#?}",
        out.last.triggers
    );
    assert!(rec.events.iter().all(|e| e.kind != EventKind::Rollback));
    assert!(control.sim.lock().unwrap().rolled_back.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_prometheus_from_the_start_never_moves_traffic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("set-weight-ran");
    let set_weight = Action::parse(&format!("touch {}", marker.display()));
    let spec = spec("standard", "[defaults]\nno_data_limit = \"2s\"\n");
    let (out, _) = guard(
        &spec,
        &format!("http://127.0.0.1:{port}"),
        "",
        &opts(Some(set_weight), Action::parse("true"), 300, Some(100)),
    )
    .await;
    assert_eq!(out.end, RunEnd::Aborted, "{:#?}", out.last);
    assert!(out.last.codes().contains(&ReasonCode::BaselineUnavailable));
    assert!(
        out.last
            .triggers
            .iter()
            .any(|t| t.detail.contains("unreachable")),
        "{:#?}",
        out.last.triggers
    );
    assert!(!marker.exists(), "no traffic may move without a baseline");
}

/// Start a guard whose set-weight action kills Prometheus as the first step begins.
async fn outage_mid_rollout(settings: &str, max: Option<u64>) -> (RunOutcome, TestService) {
    let svc = TestService::start(Profile::healthy()).await;
    let prom = Prometheus::start(&[("chat", svc.addr)], Duration::from_secs(1)).await;
    prom.wait_for_samples("", 3).await;
    let pid = prom.child.id().unwrap();
    let set_weight = Action::parse(&format!("if [ {{weight}} = 5 ]; then kill -9 {pid}; fi"));
    let spec = spec("standard", settings);
    let (out, _) = guard(
        &spec,
        &prom.url,
        "",
        &opts(
            Some(set_weight),
            Action::parse(&svc.rollback_hook()),
            250,
            max,
        ),
    )
    .await;
    (out, svc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_mid_rollout_rolls_back_after_the_no_data_limit() {
    let (out, svc) = outage_mid_rollout("[defaults]\nno_data_limit = \"2s\"\n", None).await;
    assert_eq!(out.end, RunEnd::RolledBack, "{:#?}", out.last);
    assert_eq!(out.steps.len(), 1, "never promoted past 5 % while blind");
    assert!(
        out.last
            .codes()
            .iter()
            .all(|c| *c == ReasonCode::NoDataLimit),
        "{:?}",
        out.last.codes()
    );
    assert!(svc.sim.lock().unwrap().rolled_back.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_mid_rollout_holds_under_the_hold_policy() {
    // Soak is 2 s; 24 evaluations at 250 ms outlast it, yet the guard never promotes.
    let (out, svc) = outage_mid_rollout("[defaults]\nno_data = \"hold\"\n", Some(24)).await;
    assert_eq!(out.end, RunEnd::Stopped, "{:#?}", out.last);
    assert_eq!((out.last.step, out.steps.len()), (Some(0), 1));
    assert_eq!(out.last.soak_left, Some(SignedDuration::ZERO));
    assert!(
        out.last.codes().contains(&ReasonCode::QueryFailed),
        "{:?}",
        out.last.codes()
    );
    assert!(
        out.last
            .reasons
            .iter()
            .any(|r| r.message.contains("not promoting"))
    );
    assert!(svc.sim.lock().unwrap().rolled_back.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_history_from_the_range_api() {
    let svc = TestService::start(Profile::healthy()).await;
    let prom = Prometheus::start(&[("chat", svc.addr)], Duration::from_secs(1)).await;
    prom.wait_for_samples("", 3).await;
    let from = Timestamp::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let degraded_at = Timestamp::now();
    svc.set(Profile {
        error_share: 0.05,
        ..Profile::healthy()
    });
    let client = PromClient::new(&prom.url, Duration::from_secs(2)).unwrap();
    // Wait until Prometheus has scraped the degraded counters.
    let q = "100 * sum(rate(http_requests_total{code=\"500\"}[10s])) / sum(rate(http_requests_total[10s]))";
    for _ in 0..100 {
        if let Ok(changegate_rollout::prom::Sample::Value(v)) = client.instant(q, None).await
            && v > 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spec = spec("hold", "");
    let step = SignedDuration::from_secs(1);
    // The replay's own queries (their rate window) may need a few more scrapes than the probe above
    // to see the degradation: re-read the history until it does, for at most 60 s (bounded, so a
    // broken trigger still fails the test).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let report = loop {
        let to = Timestamp::now();
        let rec = fetch_history(&client, &spec, "", from, to, step)
            .await
            .unwrap();
        let report = replay(
            &spec,
            &rec,
            ReplayOptions {
                from,
                to,
                interval: step,
                lookback: SignedDuration::from_secs(5),
            },
        );
        if report.verdict == ReplayVerdict::Rollback || std::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(
        report.verdict,
        ReplayVerdict::Rollback,
        "{:#?}",
        report.reasons
    );
    assert!(
        report.at >= degraded_at,
        "rolled back at {} before the degradation at {degraded_at}",
        report.at
    );
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r.trigger.as_deref() == Some("slo-error-rate"))
    );
}

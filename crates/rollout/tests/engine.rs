//! The pure decision core under an injected clock: an 8-hour soak runs in microseconds.

use changegate_rollout::codes::ReasonCode;
use changegate_rollout::engine::{Guard, Observation, Phase, Reading, Verdict};
use changegate_rollout::spec::{GuardSettings, GuardSpec, resolve};
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2026-03-03T02:00:00Z".parse().unwrap()
}

fn spec(plan: &str, settings: &str) -> GuardSpec {
    let policy = changegate_policy::load_default().policy;
    resolve(
        &policy,
        Some(plan),
        None,
        &GuardSettings::from_toml(settings).unwrap(),
    )
    .unwrap()
}

fn spec_with_policy(policy_toml: &str, plan: &str, settings: &str) -> GuardSpec {
    let policy = changegate_policy::load(policy_toml, "test.toml")
        .unwrap()
        .policy;
    resolve(
        &policy,
        Some(plan),
        None,
        &GuardSettings::from_toml(settings).unwrap(),
    )
    .unwrap()
}

/// Healthy readings for every trigger of the spec, with overrides.
fn obs(spec: &GuardSpec, over: &[(&str, Reading)]) -> Observation {
    let mut o = Observation {
        traffic: Some(Reading::Value { value: 100.0 }),
        ..Default::default()
    };
    for t in &spec.triggers {
        let healthy = match t.metric {
            changegate_policy::Metric::ErrorRate => 0.1,
            changegate_policy::Metric::P95Latency => 120.0,
            changegate_policy::Metric::HealthCheckFailures => 0.0,
            changegate_policy::Metric::DbPoolUtilisation => 40.0,
            changegate_policy::Metric::MemoryUtilisation => 50.0,
        };
        o.readings
            .insert(t.name.clone(), Reading::Value { value: healthy });
    }
    for (name, r) in over {
        if *name == "traffic" {
            o.traffic = Some(r.clone());
        } else {
            assert!(o.readings.contains_key(*name), "no trigger {name}");
            o.readings.insert(name.to_string(), r.clone());
        }
    }
    o
}

fn v(value: f64) -> Reading {
    Reading::Value { value }
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

#[test]
fn high_risk_walks_its_eight_hour_soaks_to_completion() {
    let spec = spec("high-risk", "");
    let mut g = Guard::new(spec.clone());
    let healthy = obs(&spec, &[]);
    let first = g.observe(t0(), &healthy);
    assert_eq!(first.verdict, Verdict::Promote);
    assert_eq!(first.weight, Some(5));
    assert!(first.codes().contains(&ReasonCode::BaselineMeasured));
    let mut promotions = vec![(SignedDuration::ZERO, 5)];
    let mut end = None;
    for k in 1..=(26 * 6) {
        let now = t0() + mins(10 * k);
        let d = g.observe(now, &healthy);
        match d.verdict {
            Verdict::Promote => promotions.push((now.duration_since(t0()), d.weight.unwrap())),
            Verdict::Complete => {
                end = Some(now.duration_since(t0()));
                break;
            }
            Verdict::Hold => assert_eq!(d.codes(), [ReasonCode::Soaking], "at {now}"),
            other => panic!("unexpected {other:?} at {now}"),
        }
    }
    let h = SignedDuration::from_hours;
    assert_eq!(
        promotions,
        [(h(0), 5), (h(8), 25), (h(16), 50), (h(24), 100)]
    );
    // The last step is monitored for the plan's monitor_after (1h) before completing.
    assert_eq!(end, Some(h(25)));
    assert_eq!(g.phase(), Phase::Complete);
}

#[test]
fn soak_left_counts_down_with_the_injected_clock() {
    let spec = spec("high-risk", "");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    let d = g.observe(t0() + SignedDuration::from_hours(3), &obs(&spec, &[]));
    assert_eq!(d.soak_left, Some(SignedDuration::from_hours(5)));
    assert_eq!(d.step, Some(0));
}

#[test]
fn missing_data_never_promotes_and_rolls_back_after_the_limit() {
    let spec = spec("standard", "");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    // Soak (15m) is over, but p95 has no data: hold, and say why.
    let gap = Reading::NoData {
        detail: "empty result".into(),
    };
    let d = g.observe(
        t0() + mins(16),
        &obs(&spec, &[("slo-p95-latency", gap.clone())]),
    );
    assert_eq!(d.verdict, Verdict::Hold);
    let r = d
        .reasons
        .iter()
        .find(|r| r.code == ReasonCode::NoData)
        .unwrap();
    assert_eq!(r.trigger.as_deref(), Some("slo-p95-latency"));
    assert!(r.message.contains("not promoting"), "{}", r.message);
    let d = g.observe(
        t0() + mins(20),
        &obs(&spec, &[("slo-p95-latency", gap.clone())]),
    );
    assert_eq!(d.verdict, Verdict::Hold);
    // Default no-data policy: roll back once data is missing for 5 minutes.
    let d = g.observe(t0() + mins(21), &obs(&spec, &[("slo-p95-latency", gap)]));
    assert_eq!(d.verdict, Verdict::Rollback);
    assert_eq!(d.codes(), [ReasonCode::NoDataLimit]);
}

#[test]
fn hold_policy_holds_forever_on_failed_queries_and_recovers() {
    let spec = spec("standard", "[defaults]\nno_data = \"hold\"");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    let failed = Reading::Failed {
        error: "prometheus unreachable: connection refused".into(),
    };
    let all_failed: Vec<(&str, Reading)> = spec
        .triggers
        .iter()
        .map(|t| (t.name.as_str(), failed.clone()))
        .collect();
    for h in 1..48 {
        let d = g.observe(
            t0() + SignedDuration::from_hours(h),
            &obs(&spec, &all_failed),
        );
        assert_eq!(d.verdict, Verdict::Hold);
        assert!(d.codes().contains(&ReasonCode::QueryFailed));
        assert!(
            d.triggers
                .iter()
                .all(|t| t.state == ReasonCode::QueryFailed)
        );
    }
    // Data is back and healthy: the soak was long over, so promote.
    let d = g.observe(t0() + SignedDuration::from_hours(48), &obs(&spec, &[]));
    assert_eq!(d.verdict, Verdict::Promote);
    assert_eq!(d.weight, Some(50));
}

#[test]
fn each_trigger_kind_fires_with_its_code() {
    let cases: [(&str, Reading, ReasonCode); 5] = [
        ("slo-error-rate", v(0.6), ReasonCode::ThresholdExceeded),
        ("slo-p95-latency", v(251.0), ReasonCode::ThresholdExceeded),
        ("health-check-failures", v(4.0), ReasonCode::CountExceeded),
        ("db-pool-exhaustion", v(91.0), ReasonCode::ThresholdExceeded),
        ("error-rate-increase", v(0.45), ReasonCode::BaselineExceeded),
    ];
    for (name, reading, code) in cases {
        let spec = spec("standard", "");
        let mut g = Guard::new(spec.clone());
        g.observe(t0(), &obs(&spec, &[]));
        let d = g.observe(t0() + mins(1), &obs(&spec, &[(name, reading)]));
        assert_eq!(d.verdict, Verdict::Rollback, "{name}");
        let r = &d.reasons[0];
        assert_eq!((r.code, r.trigger.as_deref()), (code, Some(name)));
        assert!(r.value.is_some() && r.limit.is_some());
    }
    // At the limit is not above it: healthy.
    let spec = spec("standard", "");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    let d = g.observe(
        t0() + mins(1),
        &obs(
            &spec,
            &[
                ("slo-error-rate", v(0.5)),
                ("health-check-failures", v(3.0)),
            ],
        ),
    );
    assert_eq!(d.verdict, Verdict::Hold);
}

#[test]
fn relative_triggers_use_the_baseline_and_the_traffic_gate() {
    let spec = spec(
        "standard",
        "[triggers.p95-latency-increase]\nmin_traffic = 10.0",
    );
    let mut g = Guard::new(spec.clone());
    let first = g.observe(t0(), &obs(&spec, &[("p95-latency-increase", v(150.0))]));
    let b = first
        .reasons
        .iter()
        .find(|r| r.trigger.as_deref() == Some("p95-latency-increase"))
        .unwrap();
    assert_eq!(
        (b.code, b.value, b.limit),
        (ReasonCode::BaselineMeasured, Some(150.0), Some(250.0))
    );
    // 240ms: above the SLO? no (250); above baseline+100? no.
    let d = g.observe(
        t0() + mins(1),
        &obs(&spec, &[("p95-latency-increase", v(240.0))]),
    );
    assert_eq!(d.verdict, Verdict::Hold);
    // A quiet canary: 260ms on 2 req/s is not judged (and blocks promotion instead).
    let quiet = [("p95-latency-increase", v(260.0)), ("traffic", v(2.0))];
    let d = g.observe(t0() + mins(2), &obs(&spec, &quiet));
    assert_eq!(d.verdict, Verdict::Hold);
    assert!(d.codes().contains(&ReasonCode::InsufficientTraffic));
    let d = g.observe(t0() + mins(16), &obs(&spec, &quiet));
    assert_eq!(
        d.verdict,
        Verdict::Hold,
        "insufficient traffic never promotes"
    );
    let d = g.observe(
        t0() + mins(17),
        &obs(&spec, &[("p95-latency-increase", v(260.0))]),
    );
    assert_eq!(d.verdict, Verdict::Rollback);
    assert_eq!(d.reasons[0].code, ReasonCode::BaselineExceeded);
    assert_eq!(d.reasons[0].limit, Some(250.0));
}

#[test]
fn sustained_fires_only_after_its_whole_window() {
    let spec = spec("high-risk", "");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    let high = [("memory-sustained", v(90.0))];
    // Above for 4 minutes, then one healthy sample resets the window.
    for m in 1..=5 {
        assert_eq!(
            g.observe(t0() + mins(m), &obs(&spec, &high)).verdict,
            Verdict::Hold
        );
    }
    assert_eq!(
        g.observe(t0() + mins(6), &obs(&spec, &[])).verdict,
        Verdict::Hold
    );
    for m in 7..=11 {
        let d = g.observe(t0() + mins(m), &obs(&spec, &high));
        assert_eq!(d.verdict, Verdict::Hold, "minute {m}");
        assert!(d.codes().contains(&ReasonCode::BreachPending));
    }
    let d = g.observe(t0() + mins(12), &obs(&spec, &high));
    assert_eq!(d.verdict, Verdict::Rollback);
    assert_eq!(d.reasons[0].code, ReasonCode::SustainedBreach);
}

#[test]
fn consecutive_and_in_window_conditions() {
    let spec2 = spec("standard", "[triggers.slo-error-rate]\nconsecutive = 3");
    let mut g = Guard::new(spec2.clone());
    g.observe(t0(), &obs(&spec2, &[]));
    let bad = [("slo-error-rate", v(2.0))];
    assert_eq!(
        g.observe(t0() + mins(1), &obs(&spec2, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(2), &obs(&spec2, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(3), &obs(&spec2, &[])).verdict,
        Verdict::Hold,
        "streak broken"
    );
    assert_eq!(
        g.observe(t0() + mins(4), &obs(&spec2, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(5), &obs(&spec2, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(6), &obs(&spec2, &bad)).verdict,
        Verdict::Rollback
    );

    let specw = spec(
        "standard",
        "[triggers.slo-error-rate]\nwithin = { count = 3, window = \"5m\" }",
    );
    let mut g = Guard::new(specw.clone());
    g.observe(t0(), &obs(&specw, &[]));
    // Spread out: three breaches, never three within 5 minutes.
    for m in [1, 4, 7, 10] {
        assert_eq!(
            g.observe(t0() + mins(m), &obs(&specw, &bad)).verdict,
            Verdict::Hold,
            "minute {m}"
        );
        assert_eq!(
            g.observe(t0() + mins(m + 1), &obs(&specw, &[])).verdict,
            Verdict::Hold
        );
    }
    // Flapping within 5 minutes fires even though never consecutive.
    assert_eq!(
        g.observe(t0() + mins(16), &obs(&specw, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(17), &obs(&specw, &[])).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(18), &obs(&specw, &bad)).verdict,
        Verdict::Hold
    );
    assert_eq!(
        g.observe(t0() + mins(19), &obs(&specw, &[])).verdict,
        Verdict::Hold
    );
    let d = g.observe(t0() + mins(20), &obs(&specw, &bad));
    assert_eq!(d.verdict, Verdict::Rollback, "{:?}", d.reasons);
}

#[test]
fn shadow_triggers_record_but_never_act() {
    let policy = r#"
[rollback.triggers.slo-error-rate]
mode = "shadow"
"#;
    let spec = spec_with_policy(policy, "standard", "");
    let mut g = Guard::new(spec.clone());
    g.observe(t0(), &obs(&spec, &[]));
    let d = g.observe(t0() + mins(1), &obs(&spec, &[("slo-error-rate", v(0.7))]));
    assert_eq!(d.verdict, Verdict::Hold);
    assert!(d.codes().contains(&ReasonCode::ShadowBreach));
    // Shadow no-data never blocks promotion.
    let gap = Reading::NoData {
        detail: "empty".into(),
    };
    let d = g.observe(t0() + mins(15), &obs(&spec, &[("slo-error-rate", gap)]));
    assert_eq!(d.verdict, Verdict::Promote);
}

#[test]
fn baseline_missing_holds_then_aborts_before_any_traffic_moves() {
    let spec = spec("standard", "[defaults]\nno_data_limit = \"2m\"");
    let mut g = Guard::new(spec.clone());
    let gap = Reading::Failed {
        error: "connection refused".into(),
    };
    let d = g.observe(t0(), &obs(&spec, &[("error-rate-increase", gap.clone())]));
    assert_eq!((d.verdict, d.step), (Verdict::Hold, None));
    assert!(d.codes().contains(&ReasonCode::BaselineMissing));
    let d = g.observe(t0() + mins(2), &obs(&spec, &[("error-rate-increase", gap)]));
    assert_eq!(d.verdict, Verdict::Abort);
    assert!(d.codes().contains(&ReasonCode::BaselineUnavailable));
    assert!(g.finished());
    let after = g.observe(t0() + mins(3), &obs(&spec, &[]));
    assert_eq!(after.codes(), [ReasonCode::GuardFinished]);
}

#[test]
fn nan_is_no_data_and_same_inputs_give_same_decisions() {
    let spec = spec("standard", "");
    let run = || {
        let mut g = Guard::new(spec.clone());
        vec![
            g.observe(t0(), &obs(&spec, &[])),
            g.observe(
                t0() + mins(1),
                &obs(&spec, &[("slo-p95-latency", v(f64::NAN))]),
            ),
            g.observe(t0() + mins(2), &obs(&spec, &[("slo-error-rate", v(0.9))])),
        ]
    };
    let a = run();
    assert_eq!(
        a[1].triggers
            .iter()
            .find(|t| t.name == "slo-p95-latency")
            .unwrap()
            .state,
        ReasonCode::NoData
    );
    assert_eq!(a[2].verdict, Verdict::Rollback);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&run()).unwrap()
    );
}

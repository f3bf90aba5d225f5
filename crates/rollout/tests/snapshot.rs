//! A guard restored from its stored snapshot decides exactly as the original (the server keeps
//! the snapshot in its rollout row and restores it at each evaluation, on any replica).

use changegate_rollout::engine::{Guard, GuardSnapshot, Observation, Reading, Verdict};
use changegate_rollout::spec::{GuardSettings, resolve};
use jiff::{SignedDuration, Timestamp};

fn observation(spec: &changegate_rollout::GuardSpec, error_rate: f64) -> Observation {
    let mut o = Observation {
        traffic: Some(Reading::Value { value: 100.0 }),
        ..Default::default()
    };
    for t in &spec.triggers {
        let v = match t.metric {
            changegate_policy::Metric::ErrorRate => error_rate,
            changegate_policy::Metric::P95Latency => 120.0,
            changegate_policy::Metric::HealthCheckFailures => 0.0,
            changegate_policy::Metric::DbPoolUtilisation => 40.0,
            changegate_policy::Metric::MemoryUtilisation => 50.0,
        };
        o.readings
            .insert(t.name.clone(), Reading::Value { value: v });
    }
    o
}

#[test]
fn a_restored_guard_decides_as_the_original_would_have() {
    let policy = changegate_policy::load_default().policy;
    let settings = GuardSettings::from_toml("[defaults]\nconsecutive = 3\n").unwrap();
    let spec = resolve(&policy, Some("standard"), None, &settings).unwrap();
    let t0: Timestamp = "2026-03-10T11:00:00Z".parse().unwrap();
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    // Baseline, step 1, then two breaching readings (a streak of 3 is needed to fire).
    let script = [(0, 0.1), (60, 0.1), (1000, 0.1), (1100, 0.9), (1200, 0.9)];
    let mut original = Guard::new(spec.clone());
    for (s, e) in script {
        original.observe(at(s), &observation(&spec, e));
    }
    let stored = serde_json::to_string(&original.snapshot()).unwrap();
    let snap: GuardSnapshot = serde_json::from_str(&stored).unwrap();
    let mut restored = Guard::restore(spec.clone(), snap);
    assert_eq!(restored.snapshot(), original.snapshot());
    // The third breaching reading fires in both: the streak survived the restore.
    let a = original.observe(at(1300), &observation(&spec, 0.9));
    let b = restored.observe(at(1300), &observation(&spec, 0.9));
    assert_eq!(a.verdict, Verdict::Rollback);
    assert_eq!(a, b);
    // A fresh guard with the same reading would only measure its baseline: the state matters.
    let fresh = Guard::new(spec.clone()).observe(at(1300), &observation(&spec, 0.9));
    assert_ne!(fresh.verdict, Verdict::Rollback);
}

//! The guard loop itself (not only the engine) on an injected clock: the 25-hour high-risk plan
//! walks through `run_with_clock` in a blink, and every timestamp it records comes from that
//! clock, so time in the loop is one thing that tests drive.

use std::time::Duration;

use changegate_policy::Metric;
use changegate_rollout::action::Action;
use changegate_rollout::clock::{Clock, ManualClock};
use changegate_rollout::engine::{Observation, Reading, Verdict};
use changegate_rollout::progress::Hidden;
use changegate_rollout::recorder::{EventKind, MemoryRecorder};
use changegate_rollout::runner::{MetricSource, RunEnd, RunOptions, run_with_clock};
use changegate_rollout::spec::{GuardSettings, GuardSpec, resolve};
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2026-03-03T02:00:00Z".parse().unwrap()
}

fn high_risk() -> GuardSpec {
    let policy = changegate_policy::load_default().policy;
    resolve(&policy, Some("high-risk"), None, &GuardSettings::default()).unwrap()
}

/// Healthy metrics, until the error rate jumps to 50 % from `degrade_at` on (if set).
struct Service {
    spec: GuardSpec,
    degrade_at: Option<Timestamp>,
}

impl MetricSource for Service {
    async fn observe(&self, at: Timestamp) -> Observation {
        let degraded = self.degrade_at.is_some_and(|d| at >= d);
        let mut o = Observation {
            traffic: Some(Reading::Value { value: 100.0 }),
            ..Default::default()
        };
        for t in &self.spec.triggers {
            let value = match t.metric {
                Metric::ErrorRate if degraded => 50.0,
                Metric::ErrorRate => 0.1,
                Metric::P95Latency => 120.0,
                Metric::HealthCheckFailures => 0.0,
                Metric::DbPoolUtilisation => 40.0,
                Metric::MemoryUtilisation => 50.0,
            };
            o.readings.insert(t.name.clone(), Reading::Value { value });
        }
        o
    }
}

fn opts() -> RunOptions {
    RunOptions {
        interval: Duration::from_secs(10),
        set_weight: None,
        rollback: Action::parse("true"),
        dry_run: false,
        change: Some("CR-1".into()),
        max_evaluations: None,
        action_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_25_hour_plan_completes_on_the_injected_clock() {
    let spec = high_risk();
    let clock = ManualClock::new(t0());
    let source = Service {
        spec: spec.clone(),
        degrade_at: None,
    };
    let mut rec = MemoryRecorder::default();
    let started = std::time::Instant::now();
    let out = run_with_clock(&clock, &spec, &source, &mut rec, &mut Hidden, &opts())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it really waited"
    );
    assert_eq!(out.end, RunEnd::Completed, "{:#?}", out.last.reasons);
    // Three 8-hour soaks, then the last step monitored for an hour: evaluations every 10 s of
    // the clock's time, from the baseline at t0 to completion at t0 + 25 h.
    let done = t0() + SignedDuration::from_hours(25);
    assert_eq!(out.last.at, done);
    assert_eq!(clock.now(), done);
    assert_eq!(out.evaluations, 25 * 360 + 1);
    assert_eq!(rec.events.first().unwrap().kind, EventKind::Started);
    assert_eq!(rec.events.first().unwrap().t, t0());
    assert_eq!(rec.events.last().unwrap().t, done);
    let promotions: Vec<Timestamp> = rec
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Step)
        .map(|e| e.t)
        .collect();
    let h = SignedDuration::from_hours;
    assert_eq!(
        promotions,
        [t0(), t0() + h(8), t0() + h(16), t0() + h(24)],
        "one step every 8 hours of the injected clock"
    );
}

#[tokio::test]
async fn a_rollback_is_stamped_with_the_injected_clock() {
    let spec = high_risk();
    let clock = ManualClock::new(t0());
    let degrade_at = t0() + SignedDuration::from_hours(9);
    let source = Service {
        spec: spec.clone(),
        degrade_at: Some(degrade_at),
    };
    let mut rec = MemoryRecorder::default();
    let out = run_with_clock(&clock, &spec, &source, &mut rec, &mut Hidden, &opts())
        .await
        .unwrap();
    assert_eq!(out.end, RunEnd::RolledBack, "{:#?}", out.last.reasons);
    assert_eq!(out.last.verdict, Verdict::Rollback);
    assert_eq!(out.last.weight, Some(25), "the second step (25 %) was live");
    let timing = out.rollback.unwrap();
    assert_eq!(timing.evaluation_started, degrade_at);
    assert_eq!(timing.decided, degrade_at);
    assert!(timing.action.ok, "{:?}", timing.action);
    assert_eq!(
        timing.action.started, degrade_at,
        "the action is stamped by the clock too"
    );
    let rollback = rec
        .events
        .iter()
        .find(|e| e.kind == EventKind::Rollback)
        .unwrap();
    assert_eq!(rollback.t, degrade_at);
}

#[test]
fn the_manual_clock_moves_only_when_slept_on_or_advanced() {
    let clock = ManualClock::new(t0());
    assert_eq!(clock.now(), t0());
    clock.advance(Duration::from_secs(90));
    assert_eq!(clock.now(), t0() + SignedDuration::from_secs(90));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(clock.sleep(Duration::from_secs(30)));
    assert_eq!(clock.now(), t0() + SignedDuration::from_mins(2));
}

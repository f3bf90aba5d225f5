//! Replay over recorded series: the recorded incident in `testdata/`, a healthy recording, gaps,
//! shadow triggers, and data that ends early.

use changegate_rollout::codes::ReasonCode;
use changegate_rollout::engine::Verdict;
use changegate_rollout::recorded::Recorded;
use changegate_rollout::replay::{ReplayOptions, ReplayVerdict, replay};
use changegate_rollout::spec::{GuardSettings, GuardSpec, resolve};
use jiff::{SignedDuration, Timestamp};

const INCIDENT: &str = include_str!("../testdata/incident-2026-03-03-checkout.jsonl");

fn spec(policy_over: &str, plan: &str, settings: &str) -> GuardSpec {
    let policy = changegate_policy::load(policy_over, "test.toml")
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

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn opts(rec: &Recorded, lookback_secs: i64) -> ReplayOptions {
    let (from, to) = rec.span().unwrap();
    ReplayOptions {
        from,
        to,
        interval: SignedDuration::from_secs(10),
        lookback: SignedDuration::from_secs(lookback_secs),
    }
}

#[test]
fn recorded_incident_rolls_back_on_the_relative_trigger_before_the_slo() {
    let rec = Recorded::parse(INCIDENT).unwrap();
    let report = replay(&spec("", "standard", ""), &rec, opts(&rec, 300));
    assert_eq!(report.verdict, ReplayVerdict::Rollback);
    assert_eq!(report.at, ts("2026-03-03T14:16:50Z"));
    assert_eq!((report.step, report.weight), (Some(1), Some(50)));
    let fired: Vec<_> = report
        .reasons
        .iter()
        .map(|r| (r.code, r.trigger.as_deref()))
        .collect();
    assert_eq!(
        fired,
        [(ReasonCode::BaselineExceeded, Some("error-rate-increase"))]
    );
    assert_eq!(report.reasons[0].value, Some(0.44));
    // The timeline shows the start (with baselines), the promotion at 15 min, and the rollback.
    let verdicts: Vec<(Timestamp, Verdict)> = report
        .timeline
        .iter()
        .filter(|d| d.verdict != Verdict::Hold)
        .map(|d| (d.at, d.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            (ts("2026-03-03T14:00:00Z"), Verdict::Promote),
            (ts("2026-03-03T14:15:00Z"), Verdict::Promote),
            (ts("2026-03-03T14:16:50Z"), Verdict::Rollback)
        ]
    );
}

#[test]
fn a_shadow_trigger_is_trialled_beside_the_enforced_ones() {
    // Trial the relative trigger in shadow mode: the SLO trigger rolls back one sample later,
    // and the shadow trigger's would-be rollback is on record.
    let over = "[rollback.triggers.error-rate-increase]\nmode = \"shadow\"\n";
    let rec = Recorded::parse(INCIDENT).unwrap();
    let report = replay(&spec(over, "standard", ""), &rec, opts(&rec, 300));
    assert_eq!(report.verdict, ReplayVerdict::Rollback);
    assert_eq!(report.at, ts("2026-03-03T14:17:00Z"));
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r.code == ReasonCode::ThresholdExceeded
                && r.trigger.as_deref() == Some("slo-error-rate"))
    );
    let shadow = report
        .timeline
        .iter()
        .find(|d| d.codes().contains(&ReasonCode::ShadowBreach))
        .unwrap();
    assert_eq!(shadow.at, ts("2026-03-03T14:16:50Z"));
    assert_eq!(shadow.verdict, Verdict::Hold);
}

#[test]
fn gaps_in_recorded_data_hold_and_are_reported() {
    // With a 15 s lookback the 40 s scrape gap at 14:07 becomes visible: the guard holds (it was
    // soaking anyway) and the timeline says why, then carries on when data returns.
    let rec = Recorded::parse(INCIDENT).unwrap();
    let report = replay(&spec("", "standard", ""), &rec, opts(&rec, 15));
    let gap = report
        .timeline
        .iter()
        .find(|d| d.codes().contains(&ReasonCode::NoData))
        .unwrap();
    assert_eq!(gap.verdict, Verdict::Hold);
    assert!(
        gap.at >= ts("2026-03-03T14:07:10Z") && gap.at <= ts("2026-03-03T14:07:40Z"),
        "{}",
        gap.at
    );
    assert_eq!(report.verdict, ReplayVerdict::Rollback);
    // A gap longer than the no-data limit rolls back.
    let limit = spec("", "standard", "[defaults]\nno_data_limit = \"20s\"");
    let report = replay(&limit, &rec, opts(&rec, 15));
    assert_eq!(report.verdict, ReplayVerdict::Rollback);
    assert!(
        report
            .reasons
            .iter()
            .all(|r| r.code == ReasonCode::NoDataLimit)
    );
    assert!(report.at < ts("2026-03-03T14:08:00Z"));
}

fn healthy_recording(minutes: i64) -> Recorded {
    let mut rec = Recorded::default();
    let t0 = ts("2026-05-05T10:00:00Z");
    for k in 0..=(minutes * 6) {
        let t = t0 + SignedDuration::from_secs(10 * k);
        let wobble = (k % 7) as f64 / 100.0;
        for (m, v) in [
            ("traffic", 80.0),
            ("error-rate", 0.1 + wobble),
            ("p95-latency", 140.0 + 10.0 * wobble),
            ("health-check-failures", 0.0),
            ("db-pool-utilisation", 45.0),
            ("memory-utilisation", 60.0),
        ] {
            rec.push(m, t, v);
        }
    }
    rec
}

#[test]
fn healthy_recording_completes_and_short_data_is_incomplete() {
    let rec = healthy_recording(95);
    let report = replay(&spec("", "standard", ""), &rec, opts(&rec, 300));
    assert_eq!(
        report.verdict,
        ReplayVerdict::Complete,
        "{:#?}",
        report.reasons
    );
    // 15 m + 15 m soaks + 1 h monitoring after the last step.
    assert_eq!(report.at, ts("2026-05-05T11:30:00Z"));
    assert_eq!(report.weight, Some(100));

    let short = healthy_recording(20);
    let report = replay(&spec("", "standard", ""), &short, opts(&short, 300));
    assert_eq!(report.verdict, ReplayVerdict::Incomplete);
    assert_eq!(report.reasons[0].code, ReasonCode::DataEnded);
    assert_eq!(report.weight, Some(50));
}

#[test]
fn recorded_file_can_pin_a_series_to_one_trigger() {
    let mut rec = healthy_recording(10);
    let t0 = ts("2026-05-05T10:00:00Z");
    for k in 0..60 {
        // Only the SLO trigger sees the spike (e.g. its own query over a different selector).
        let v = if k >= 40 { 0.9 } else { 0.1 };
        rec.push(
            "trigger:slo-error-rate",
            t0 + SignedDuration::from_secs(10 * k),
            v,
        );
    }
    let report = replay(&spec("", "standard", ""), &rec, opts(&rec, 300));
    assert_eq!(report.verdict, ReplayVerdict::Rollback);
    assert_eq!(report.reasons[0].trigger.as_deref(), Some("slo-error-rate"));
}

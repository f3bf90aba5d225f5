//! Post-deployment verification ("Within 1 hour of deployment, verify"): after the last step the
//! rollout polls every check of the policy's list until all pass at one reading (verified), one
//! fails (the rollback path), or the policy's `verification.within` passes with a check that
//! never passed (fail closed: the rollback path too).
//!
//! Checks: the `endpoints` of the `[checklist.post]` items applying to the category, on the
//! deployed service's base URL (2xx passes, another status fails, no answer is no data), the
//! policy's absolute `verification.urls`, and every `[verification.checks]` PromQL check
//! (`below`, `at_least`, `rollout_weight`). No data never passes.

use std::time::{Duration, Instant};

use changegate_gate::ChangeState;
use changegate_policy::VerificationCheck;
use changegate_rollout::prom::Sample;
use changegate_rollout::{Reason, ReasonCode};
use changegate_store::RolloutRow;
use serde_json::json;

use super::rollback::{Cause, automatic_authority};
use super::worker::{event, save};
use super::{ACTOR, CheckResult, RolloutDoc, Runtime, micros, phase};
use crate::AppState;
use crate::error::ApiError;

/// The kind of the verification's audit event.
pub const VERIFICATION_KIND: &str = "deployment.verification";

fn result(
    name: String,
    state: &str,
    value: Option<f64>,
    limit: String,
    detail: String,
) -> CheckResult {
    CheckResult {
        name,
        state: state.into(),
        value,
        limit,
        detail,
    }
}

async fn endpoint(rt: &Runtime, name: String, url: &str) -> CheckResult {
    match rt.http.get(url).send().await {
        Ok(r) if r.status().is_success() => result(
            name,
            "passed",
            Some(f64::from(r.status().as_u16())),
            "2xx".into(),
            String::new(),
        ),
        Ok(r) => result(
            name,
            "failed",
            Some(f64::from(r.status().as_u16())),
            "2xx".into(),
            format!("answered HTTP {}", r.status().as_u16()),
        ),
        Err(e) => result(
            name,
            "no-data",
            None,
            "2xx".into(),
            format!("no answer: {}", e.without_url()),
        ),
    }
}

fn judge(name: &str, c: &VerificationCheck, v: f64, final_weight: u8) -> CheckResult {
    let unit = &c.unit;
    let mut limits = Vec::new();
    let mut ok = true;
    if let Some(b) = c.below {
        limits.push(format!("< {b}{unit}"));
        ok &= v < b;
    }
    if let Some(a) = c.at_least {
        limits.push(format!(">= {a}{unit}"));
        ok &= v >= a;
    }
    if c.rollout_weight {
        let tol = c.tolerance.unwrap_or(1.0);
        limits.push(format!("{final_weight} ± {tol}{unit}"));
        ok &= (v - f64::from(final_weight)).abs() <= tol;
    }
    result(
        name.to_string(),
        if ok { "passed" } else { "failed" },
        Some(v),
        limits.join(" and "),
        format!("item `{}`", c.item),
    )
}

/// Read every check once.
pub async fn run_checks(
    s: &AppState,
    rt: &Runtime,
    level: u8,
    final_weight: u8,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for (key, item) in &s.policy.checklist.post {
        if !item.enabled || !item.applies_to.contains(&level) {
            continue;
        }
        for path in &item.endpoints {
            let name = format!("health:{path}");
            match rt.config.service_url.as_deref() {
                Some(base) => {
                    let url = format!("{}{path}", base.trim_end_matches('/'));
                    out.push(endpoint(rt, name, &url).await);
                }
                None => out.push(result(
                    name,
                    "no-data",
                    None,
                    "2xx".into(),
                    format!("item `{key}`: no service_url in the rollout config to poll it on"),
                )),
            }
        }
    }
    for url in &s.policy.verification.urls {
        out.push(endpoint(rt, format!("url:{url}"), url).await);
    }
    for (name, c) in &s.policy.verification.checks {
        if !c.applies(level) {
            continue;
        }
        out.push(match rt.prom.instant(&c.query, None).await {
            Ok(Sample::Value(v)) => judge(name, c, v, final_weight),
            Ok(Sample::Empty) => result(
                name.clone(),
                "no-data",
                None,
                String::new(),
                "empty result".into(),
            ),
            Ok(Sample::NaN) => result(name.clone(), "no-data", None, String::new(), "NaN".into()),
            Err(e) => result(name.clone(), "no-data", None, String::new(), e.to_string()),
        });
    }
    out
}

/// One verification reading of a rollout in the `verifying` phase.
pub(crate) async fn tick(
    s: &AppState,
    rt: &Runtime,
    row: &RolloutRow,
    mut doc: RolloutDoc,
    change: &ChangeState,
) -> Result<(), ApiError> {
    let detected = (Instant::now(), s.now());
    let level = u8::try_from(row.category).unwrap_or(u8::MAX);
    let final_weight = s
        .policy
        .rollout
        .plans
        .get(&row.plan)
        .and_then(|p| p.steps.last())
        .map_or(100, |st| st.weight);
    let checks = run_checks(s, rt, level, final_weight).await;
    let now = s.now();
    let Some(mut v) = doc.verification.clone() else {
        return Ok(());
    };
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| c.state == "failed").collect();
    let all_passed = checks.iter().all(|c| c.state == "passed");
    let late = now >= v.deadline;
    v.checks = checks.clone();
    if failed.is_empty() && !all_passed && !late {
        doc.verification = Some(v);
        let interval = Duration::try_from(s.policy.verification.interval.get())
            .unwrap_or(Duration::from_secs(30))
            .min(rt.interval.max(Duration::from_millis(100)));
        let due = micros(now) + i64::try_from(interval.as_micros()).unwrap_or(i64::MAX / 4);
        save(s, rt, row, &doc, phase::VERIFYING, true, due, None, None).await?;
        return Ok(());
    }
    let passed = failed.is_empty() && all_passed;
    v.result = if passed { "passed" } else { "failed" }.into();
    let message = if passed {
        "every post-deployment check passed".to_string()
    } else if !failed.is_empty() {
        format!(
            "post-deployment verification failed: {}",
            failed
                .iter()
                .map(|c| format!(
                    "{} = {} (limit {})",
                    c.name,
                    c.value.map_or("-".into(), |x| format!("{x}")),
                    c.limit
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )
    } else {
        format!(
            "post-deployment verification did not pass within {}: no data for {}",
            s.policy.verification.within,
            checks
                .iter()
                .filter(|c| c.state != "passed")
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    doc.verification = Some(v.clone());
    // The error rate and latency after the deployment, with the queries of its baseline read.
    let observed = match super::observed::spec_for(&s.policy, rt, Some(&row.plan), level) {
        Some(spec) => super::observed::read(rt, &spec, "after", now).await,
        None => serde_json::Value::Null,
    };
    let ev = event(
        VERIFICATION_KIND,
        row,
        change,
        if passed {
            "verified"
        } else {
            "verification-failed"
        },
        &doc.last_triggers,
    )
    .details(json!({"rollout": row.id, "plan": row.plan, "verification": v, "message": message, "observed": observed}));
    if passed {
        save(
            s,
            rt,
            row,
            &doc,
            phase::COMPLETED,
            false,
            micros(now),
            Some(ev),
            None,
        )
        .await?;
        return Ok(());
    }
    // Record the failed verification, then take the rollback path.
    let saved = save(
        s,
        rt,
        row,
        &doc,
        phase::VERIFYING,
        true,
        micros(now),
        Some(ev),
        None,
    )
    .await?;
    let changegate_store::RolloutSaved::Saved(version) = saved else {
        return Ok(());
    };
    let mut row = row.clone();
    row.version = version;
    let cause = Cause {
        trigger: "verification-failed",
        by: ACTOR.into(),
        reasons: vec![Reason {
            code: ReasonCode::VerificationFailed,
            trigger: None,
            message,
            value: None,
            limit: None,
        }],
        triggers: doc.last_triggers.clone(),
        authority: automatic_authority("verification-failed"),
        detected,
    };
    super::rollback::execute(s, rt, &row, doc, cause).await?;
    Ok(())
}

//! The rollout page's trigger charts, from observed data only.
//!
//! For an active rollout of a server that runs rollouts (`serve --rollout-config`), each trigger's
//! line is a Prometheus range query over the last hour of **the PromQL the guard itself runs**
//! (the trigger resolved from the policy and the guard settings exactly as the worker does,
//! [`changegate_rollout::runner::PromSource`]), through the rollout configuration's own
//! Prometheus client. The guard's own readings are drawn over it: the values it recorded with
//! its audit events (every promotion, hold and rollback carries the trigger states) and its last
//! evaluation (the rollout's document, at the row's last write). Nothing on the chart is a value
//! someone claimed.
//!
//! Prometheus's samples are real, so the range is taken on the wall clock and Prometheus's own
//! "now" ([`Timestamp::now`]), as the worker reads instant values at Prometheus's "now". When
//! Prometheus does not answer within [`RANGE_TIMEOUT`] the page says so and shows the recorded
//! readings alone.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::AppState;

/// The longest the page waits for Prometheus (it is refreshed every 5 s).
pub const RANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Resolution of the last hour (360 points at most per trigger).
pub const STEP: SignedDuration = SignedDuration::from_secs(10);

/// Each trigger's values over `[from, to]` from Prometheus, by trigger name; `Err` says why there
/// are none (no rollout configuration, the plan no longer resolves, Prometheus did not answer).
pub async fn trigger_ranges(
    s: &AppState,
    row: &changegate_store::RolloutRow,
    from: Timestamp,
    to: Timestamp,
) -> Result<BTreeMap<String, Vec<(Timestamp, f64)>>, String> {
    let Some(rt) = &s.rollouts else {
        return Err("this server runs no rollouts (serve --rollout-config)".into());
    };
    let level = u8::try_from(row.category).unwrap_or(u8::MAX);
    let spec =
        changegate_rollout::resolve(&s.policy, Some(&row.plan), Some(level), &rt.config.guard)
            .map_err(|e| format!("the plan does not resolve: {e}"))?;
    let source =
        changegate_rollout::runner::PromSource::new(rt.prom.clone(), &spec, &rt.config.selector);
    let mut set = tokio::task::JoinSet::new();
    for (name, query) in source.queries() {
        let (prom, name, query) = (rt.prom.clone(), name.clone(), query.clone());
        set.spawn(async move {
            let r = tokio::time::timeout(RANGE_TIMEOUT, prom.range(&query, from, to, STEP)).await;
            (name, r)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let Ok((name, r)) = joined else { continue };
        match r {
            Ok(Ok(points)) => {
                out.insert(
                    name,
                    points.into_iter().filter(|(_, v)| v.is_finite()).collect(),
                );
            }
            Ok(Err(e)) => return Err(format!("Prometheus: {e}")),
            Err(_) => {
                return Err(format!(
                    "Prometheus did not answer within {} s",
                    RANGE_TIMEOUT.as_secs()
                ));
            }
        }
    }
    Ok(out)
}

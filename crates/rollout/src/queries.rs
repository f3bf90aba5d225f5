//! Default PromQL for each policy metric, for the conventional metric names.
//!
//! Every default query is one aggregated series in the metric's policy unit (percent, ms, count),
//! so a trigger's threshold compares directly. `--selector` (e.g. `service="chat"`) is added to
//! every selector of every default query; a trigger's `query` in the policy replaces the default
//! verbatim (its own selectors are the author's business). When a query returns several series
//! the guard judges the worst (largest) one.
//!
//! | metric | default |
//! |---|---|
//! | error-rate | 5xx share of `http_requests_total`, by `code` or `status` label, in percent |
//! | p95-latency | `histogram_quantile(0.95, …http_request_duration_seconds_bucket…)` in ms |
//! | health-check-failures | `increase(health_check_failures_total[window])` |
//! | db-pool-utilisation | Prisma `prisma_pool_connections_busy` / `_open` (or / pool size), percent |
//! | memory-utilisation | cAdvisor `container_memory_working_set_bytes` / `container_spec_memory_limit_bytes`, percent, worst container |
//! | traffic | `sum(rate(http_requests_total[…]))`, requests per second |

use changegate_policy::Metric;
use jiff::SignedDuration;

use crate::spec::{QuerySettings, TriggerSpec};

/// A label selector `{a, b}` from the user's selector plus extra matchers.
fn sel(selector: &str, extra: &[&str]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let selector = selector
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    if !selector.is_empty() {
        parts.push(selector);
    }
    parts.extend_from_slice(extra);
    format!("{{{}}}", parts.join(","))
}

/// A duration as a PromQL range (`90s`).
pub fn range(d: SignedDuration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// Requests per second, for the minimum-traffic gate of relative triggers.
pub fn traffic(selector: &str, q: &QuerySettings) -> String {
    format!(
        "sum(rate(http_requests_total{}[{}]))",
        sel(selector, &[]),
        range(q.rate_window)
    )
}

/// The default query of a metric.
pub fn default_query(
    metric: Metric,
    window: Option<SignedDuration>,
    selector: &str,
    q: &QuerySettings,
) -> String {
    let r = range(q.rate_window);
    match metric {
        Metric::ErrorRate => format!(
            "100 * sum(rate(http_requests_total{}[{r}]) or rate(http_requests_total{}[{r}])) / sum(rate(http_requests_total{}[{r}]))",
            sel(selector, &[r#"code=~"5..""#]),
            sel(selector, &[r#"status=~"5..""#]),
            sel(selector, &[]),
        ),
        Metric::P95Latency => format!(
            "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{}[{r}])))",
            sel(selector, &[])
        ),
        Metric::HealthCheckFailures => format!(
            "sum(increase(health_check_failures_total{}[{}]))",
            sel(selector, &[]),
            range(window.unwrap_or(SignedDuration::from_mins(5)))
        ),
        Metric::DbPoolUtilisation => match q.db_pool_size {
            Some(size) => format!(
                "100 * sum(prisma_pool_connections_busy{}) / {size}",
                sel(selector, &[])
            ),
            None => format!(
                "100 * sum(prisma_pool_connections_busy{s}) / sum(prisma_pool_connections_open{s})",
                s = sel(selector, &[])
            ),
        },
        Metric::MemoryUtilisation => format!(
            "100 * max(container_memory_working_set_bytes{s} / container_spec_memory_limit_bytes{s})",
            s = sel(selector, &[])
        ),
    }
}

/// The query a trigger runs: its policy override, or the default for its metric.
pub fn for_trigger(t: &TriggerSpec, selector: &str, q: &QuerySettings) -> String {
    t.query
        .clone()
        .unwrap_or_else(|| default_query(t.metric, t.window, selector, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> QuerySettings {
        QuerySettings {
            rate_window: SignedDuration::from_mins(1),
            db_pool_size: None,
        }
    }

    #[test]
    fn selector_narrows_every_matcher() {
        let e = default_query(Metric::ErrorRate, None, r#"service="chat""#, &q());
        assert_eq!(
            e,
            r#"100 * sum(rate(http_requests_total{service="chat",code=~"5.."}[60s]) or rate(http_requests_total{service="chat",status=~"5.."}[60s])) / sum(rate(http_requests_total{service="chat"}[60s]))"#
        );
        let p = default_query(Metric::P95Latency, None, "", &q());
        assert_eq!(
            p,
            "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{}[60s])))"
        );
        let h = default_query(
            Metric::HealthCheckFailures,
            Some(SignedDuration::from_mins(5)),
            "{job=\"a\"}",
            &q(),
        );
        assert_eq!(
            h,
            r#"sum(increase(health_check_failures_total{job="a"}[300s]))"#
        );
        let mut sized = q();
        sized.db_pool_size = Some(20);
        assert!(default_query(Metric::DbPoolUtilisation, None, "", &sized).ends_with("/ 20"));
        assert_eq!(traffic("", &q()), "sum(rate(http_requests_total{}[60s]))");
    }
}

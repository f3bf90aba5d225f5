//! Recorded metrics: the file format `rollout replay --metrics` reads, and the in-memory series
//! replay evaluates (also filled from a Prometheus range query).
//!
//! The file is JSON lines, one sample per line, blank lines and `#` comments allowed:
//!
//! ```text
//! {"t": "2026-03-03T14:00:00Z", "metric": "error-rate", "value": 0.12}
//! {"t": 1772546410, "metric": "traffic", "value": 42.0}
//! {"t": "2026-03-03T14:00:20Z", "metric": "p95-latency", "value": null}
//! ```
//!
//! - `t`: RFC 3339 timestamp, or Unix seconds.
//! - `metric`: a policy metric (`error-rate`, `p95-latency`, `health-check-failures`,
//!   `db-pool-utilisation`, `memory-utilisation`), `traffic` (requests per second), or
//!   `trigger:NAME` for one trigger's own series (it wins over the metric's).
//! - `value`: in the metric's policy unit (percent, ms, count in the trigger's window), i.e. what
//!   the trigger's query returns; `null` or `"NaN"` records an explicit gap (no data).
//!
//! Samples need not be sorted. A reading at time t is the latest sample at or before t, if it is
//! no older than the lookback (default 5 minutes, as Prometheus).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::engine::Reading;

/// Series keyed by `metric`, `traffic` or `trigger:NAME`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    series: BTreeMap<String, Vec<(Timestamp, f64)>>,
}

/// Why a recorded file did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RecordedError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    t: TimeField,
    metric: String,
    value: Option<ValueField>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TimeField {
    Unix(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ValueField {
    Num(f64),
    Text(String),
}

const METRICS: &[&str] = &[
    "error-rate",
    "p95-latency",
    "health-check-failures",
    "db-pool-utilisation",
    "memory-utilisation",
    "traffic",
];

impl Recorded {
    /// Parse the JSON-lines format; every bad line is an error (the first one is reported).
    pub fn parse(text: &str) -> Result<Self, RecordedError> {
        let mut rec = Recorded::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| RecordedError {
                line: i + 1,
                message,
            };
            let l: Line = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
            let t = match l.t {
                TimeField::Unix(s) => SignedDuration::try_from_secs_f64(s)
                    .ok()
                    .and_then(|d| Timestamp::from_duration(d).ok())
                    .ok_or_else(|| err(format!("bad unix time {s}")))?,
                TimeField::Text(s) => s.parse().map_err(|e| err(format!("bad time `{s}`: {e}")))?,
            };
            if !METRICS.contains(&l.metric.as_str()) && !l.metric.starts_with("trigger:") {
                return Err(err(format!(
                    "unknown metric `{}` (expected one of {}, or trigger:NAME)",
                    l.metric,
                    METRICS.join(", ")
                )));
            }
            let v = match l.value {
                None => f64::NAN,
                Some(ValueField::Num(v)) => v,
                Some(ValueField::Text(s)) => match s.as_str() {
                    "NaN" => f64::NAN,
                    "+Inf" | "Inf" => f64::INFINITY,
                    _ => s
                        .parse()
                        .map_err(|_| err(format!("value `{s}` is not a number")))?,
                },
            };
            rec.push(&l.metric, t, v);
        }
        for s in rec.series.values_mut() {
            s.sort_by_key(|(t, _)| *t);
        }
        Ok(rec)
    }

    /// Add a sample (keep series sorted by calling [`Recorded::sort`] after bulk pushes).
    pub fn push(&mut self, key: &str, t: Timestamp, v: f64) {
        self.series.entry(key.to_string()).or_default().push((t, v));
    }

    /// Replace a whole series (sorted).
    pub fn insert(&mut self, key: &str, mut samples: Vec<(Timestamp, f64)>) {
        samples.sort_by_key(|(t, _)| *t);
        self.series.insert(key.to_string(), samples);
    }

    /// First and last sample time over all series.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self
            .series
            .values()
            .filter_map(|s| s.first().map(|p| p.0))
            .min()?;
        let last = self
            .series
            .values()
            .filter_map(|s| s.last().map(|p| p.0))
            .max()?;
        Some((first, last))
    }

    /// Series keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// The reading of `keys` (first key that has a series wins) at `t`.
    pub fn reading(&self, keys: &[&str], t: Timestamp, lookback: SignedDuration) -> Reading {
        let Some(series) = keys.iter().find_map(|k| self.series.get(*k)) else {
            return Reading::NoData {
                detail: format!("no recorded series `{}`", keys.join("` or `")),
            };
        };
        let idx = series.partition_point(|(st, _)| *st <= t);
        match idx.checked_sub(1).map(|i| series[i]) {
            Some((st, v)) if t.duration_since(st) <= lookback => Reading::value(v),
            Some((st, _)) => Reading::NoData {
                detail: format!("last sample {st} is older than the lookback"),
            },
            None => Reading::NoData {
                detail: "no sample yet".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_forms_gaps_and_reports_bad_lines() {
        let rec = Recorded::parse(
            "# comment\n{\"t\":\"2026-03-03T14:00:10Z\",\"metric\":\"error-rate\",\"value\":0.2}\n\n\
             {\"t\":1772546400,\"metric\":\"error-rate\",\"value\":0.1}\n\
             {\"t\":\"2026-03-03T14:00:20Z\",\"metric\":\"error-rate\",\"value\":null}\n",
        )
        .unwrap();
        let t0: Timestamp = "2026-03-03T14:00:00Z".parse().unwrap();
        let lb = SignedDuration::from_mins(5);
        assert_eq!(
            rec.reading(&["error-rate"], t0, lb),
            Reading::Value { value: 0.1 }
        );
        assert_eq!(
            rec.reading(&["error-rate"], t0 + SignedDuration::from_secs(15), lb),
            Reading::Value { value: 0.2 }
        );
        assert!(matches!(
            rec.reading(&["error-rate"], t0 + SignedDuration::from_secs(25), lb),
            Reading::NoData { .. }
        ));
        assert!(matches!(
            rec.reading(&["error-rate"], t0 - SignedDuration::from_secs(1), lb),
            Reading::NoData { .. }
        ));
        assert!(matches!(
            rec.reading(&["p95-latency"], t0, lb),
            Reading::NoData { .. }
        ));
        let err = Recorded::parse("{\"t\":1,\"metric\":\"error-rate\",\"value\":1}\n{\"t\":1,\"metric\":\"cpu\",\"value\":1}").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown metric `cpu`"));
    }
}

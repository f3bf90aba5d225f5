//! A thin typed client for the two Prometheus HTTP API calls the guard needs: instant queries
//! (`/api/v1/query`, each evaluation) and range queries (`/api/v1/query_range`, replay of
//! history). The API is small and stable, so a few typed structs beat a general client crate.
//!
//! Every failure mode is an error value, never a default: an unreachable server, a non-2xx
//! answer, `"status": "error"`, an unexpected result type. The engine turns those into
//! `query-failed`, which never counts as healthy.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::engine::Reading;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// Connection, timeout or body error.
    #[error("prometheus unreachable: {0}")]
    Http(String),
    /// Prometheus answered with an error.
    #[error("prometheus error ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error type and text from the body.
        message: String,
    },
    /// The answer did not have the expected shape.
    #[error("unexpected prometheus answer: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(Vec<MatrixSeries>),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixSeries {
    values: Vec<(f64, String)>,
}

/// One instant-query result: the worst (largest) series value, or nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A value (may be ±Inf).
    Value(f64),
    /// Empty vector.
    Empty,
    /// Every series was NaN.
    NaN,
}

impl Sample {
    /// As an engine reading.
    pub fn reading(self) -> Reading {
        match self {
            Sample::Value(v) => Reading::Value { value: v },
            Sample::Empty => Reading::NoData {
                detail: "empty result".into(),
            },
            Sample::NaN => Reading::NoData {
                detail: "NaN (no traffic?)".into(),
            },
        }
    }
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

fn parse_value(s: &str) -> Result<f64, PromError> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse()
            .map_err(|_| PromError::Shape(format!("value `{s}` is not a number"))),
    }
}

fn ts(secs: f64) -> Result<Timestamp, PromError> {
    let d = SignedDuration::try_from_secs_f64(secs).map_err(|e| PromError::Shape(e.to_string()))?;
    Timestamp::from_duration(d).map_err(|e| PromError::Shape(e.to_string()))
}

fn secs(t: Timestamp) -> String {
    format!("{:.3}", t.as_duration().as_secs_f64())
}

impl Prometheus {
    /// A client for `base` (e.g. `http://127.0.0.1:9090`), each request bounded by `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, PromError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| PromError::Http(e.to_string()))?;
        Ok(Prometheus {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Data, PromError> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await
            .map_err(|e| PromError::Http(error_chain(&e.without_url())))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PromError::Http(error_chain(&e.without_url())))?;
        let env: Envelope = serde_json::from_slice(&body).map_err(|e| {
            if (200..300).contains(&status) {
                PromError::Shape(e.to_string())
            } else {
                PromError::Api {
                    status,
                    message: String::from_utf8_lossy(&body).chars().take(200).collect(),
                }
            }
        })?;
        if env.status != "success" {
            return Err(PromError::Api {
                status,
                message: format!(
                    "{}: {}",
                    env.error_type.unwrap_or_default(),
                    env.error.unwrap_or_default()
                ),
            });
        }
        env.data.ok_or_else(|| PromError::Shape("no data".into()))
    }

    /// Evaluate `query` at `at` (server time when `None`).
    pub async fn instant(&self, query: &str, at: Option<Timestamp>) -> Result<Sample, PromError> {
        let mut params = vec![("query", query.to_string())];
        if let Some(at) = at {
            params.push(("time", secs(at)));
        }
        match self.get("/api/v1/query", &params).await? {
            Data::Vector(samples) => {
                let mut worst: Option<f64> = None;
                let mut any_nan = false;
                for s in samples {
                    let v = parse_value(&s.value.1)?;
                    if v.is_nan() {
                        any_nan = true;
                    } else {
                        worst = Some(worst.map_or(v, |w: f64| w.max(v)));
                    }
                }
                Ok(match (worst, any_nan) {
                    (Some(v), _) => Sample::Value(v),
                    (None, true) => Sample::NaN,
                    (None, false) => Sample::Empty,
                })
            }
            Data::Scalar((_, v)) => {
                let v = parse_value(&v)?;
                Ok(if v.is_nan() {
                    Sample::NaN
                } else {
                    Sample::Value(v)
                })
            }
            _ => Err(PromError::Shape("expected a vector or scalar".into())),
        }
    }

    /// Evaluate `query` over `[from, to]` every `step`: the worst series at each timestamp
    /// (NaN where every series was NaN).
    pub async fn range(
        &self,
        query: &str,
        from: Timestamp,
        to: Timestamp,
        step: SignedDuration,
    ) -> Result<Vec<(Timestamp, f64)>, PromError> {
        let params = [
            ("query", query.to_string()),
            ("start", secs(from)),
            ("end", secs(to)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        let series = match self.get("/api/v1/query_range", &params).await? {
            Data::Matrix(m) => m,
            _ => return Err(PromError::Shape("expected a matrix".into())),
        };
        let mut by_t: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
        for s in series {
            for (t, v) in s.values {
                let v = parse_value(&v)?;
                let key = (t * 1000.0).round() as i64;
                let e = by_t.entry(key).or_insert(f64::NAN);
                if !v.is_nan() && (e.is_nan() || v > *e) {
                    *e = v;
                }
            }
        }
        by_t.into_iter()
            .map(|(ms, v)| Ok((ts(ms as f64 / 1000.0)?, v)))
            .collect()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

//! `serve --rollout-config FILE`: where the server's rollouts read metrics and how they act.
//!
//! ```toml
//! prometheus = "http://127.0.0.1:9090"   # required
//! service_url = "http://chat:3000"       # base URL of the deployed service (health endpoints)
//! selector = 'service="chat"'            # added to every default trigger query
//! interval = "10s"                       # guard evaluation interval
//! poll = "1s"                            # how often the worker looks for due rollouts
//! lease = "60s"                          # a replica's hold on a rollout (longer than an action)
//! query_timeout = "5s"
//! action_timeout = "30s"                 # set-weight (rollback: the policy's rollback.deadline)
//! artifact = "ghcr.io/acme/chat:{commit}" # the artifact a commit is deployed as (default: the commit)
//!
//! [actions]
//! set_weight = "kubectl argo rollouts set weight chat {weight}"   # command or http(s) webhook
//! rollback = "https://deploy.internal/hooks/rollback"             # required
//! switched_query = 'sum(rate(http_requests_total{version="new"}[30s]))'  # optional
//! switched_at_most = 0.0                 # traffic is back when switched_query ≤ this
//!
//! [guard]                                # the guard settings file's keys (docs/rollout.md)
//! no_data_limit = "5m"
//! ```
//!
//! The file is server configuration, never request input: the plan comes from the policy, the
//! actions and the Prometheus from here.

use std::time::Duration;

use changegate_policy::Dur;
use changegate_rollout::GuardSettings;
use changegate_rollout::action::Action;
use changegate_rollout::prom::Prometheus;
use serde::Deserialize;

/// The rollout configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Prometheus base URL.
    pub prometheus: String,
    /// Base URL of the deployed service; the health endpoints of `[checklist.post]` are paths on
    /// it. Unset: only the policy's absolute `verification.urls` are polled.
    #[serde(default)]
    pub service_url: Option<String>,
    /// Label selector added to the default trigger queries.
    #[serde(default)]
    pub selector: String,
    /// Guard evaluation interval (default 10 s).
    #[serde(default)]
    pub interval: Option<Dur>,
    /// Worker poll interval (default 1 s).
    #[serde(default)]
    pub poll: Option<Dur>,
    /// Lease (default 60 s).
    #[serde(default)]
    pub lease: Option<Dur>,
    /// Prometheus query timeout (default 5 s).
    #[serde(default)]
    pub query_timeout: Option<Dur>,
    /// Set-weight action timeout (default 30 s).
    #[serde(default)]
    pub action_timeout: Option<Dur>,
    /// The artifact version a rollout deploys, from the deployed commit: `{commit}` (the full
    /// SHA) and `{short}` (its first 12 digits) are replaced. Server configuration (how this
    /// deployment builds artifacts), never request input. Unset: the commit SHA.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Actions.
    pub actions: Actions,
    /// Guard settings (the `--guard FILE` keys).
    #[serde(default)]
    pub guard: GuardSettings,
}

/// The actions of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// Set-weight action (command or webhook); unset: weights are only recorded.
    #[serde(default)]
    pub set_weight: Option<String>,
    /// Rollback action (command or webhook).
    pub rollback: String,
    /// PromQL confirming the switch back (the new version's traffic); unset: the rollback
    /// action's return confirms it.
    #[serde(default)]
    pub switched_query: Option<String>,
    /// Traffic is back when `switched_query` reads at most this (default 0).
    #[serde(default)]
    pub switched_at_most: Option<f64>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[error("rollout config: {0}")]
pub struct ConfigError(pub String);

fn dur(d: &Option<Dur>, default: Duration) -> Duration {
    d.as_ref()
        .and_then(|d| Duration::try_from(d.get()).ok())
        .unwrap_or(default)
}

impl RolloutConfig {
    /// Parse the TOML file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml_parse(text)
    }
}

fn toml_parse(text: &str) -> Result<RolloutConfig, ConfigError> {
    let cfg: RolloutConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
    if !(cfg.prometheus.starts_with("http://") || cfg.prometheus.starts_with("https://")) {
        return Err(ConfigError(format!(
            "`prometheus` must be an http(s) URL, not `{}`",
            cfg.prometheus
        )));
    }
    if cfg.actions.rollback.trim().is_empty() {
        return Err(ConfigError("`actions.rollback` is empty".into()));
    }
    Ok(cfg)
}

/// The configuration, resolved, with this replica's identity.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The configuration.
    pub config: RolloutConfig,
    /// This replica's lease owner id (random per process).
    pub owner: String,
    /// Prometheus client.
    pub prom: Prometheus,
    /// HTTP client for the health endpoints.
    pub http: reqwest::Client,
    /// Set-weight action.
    pub set_weight: Option<Action>,
    /// Rollback action.
    pub rollback: Action,
    /// Evaluation interval.
    pub interval: Duration,
    /// Worker poll interval.
    pub poll: Duration,
    /// Lease.
    pub lease: Duration,
    /// Set-weight timeout.
    pub action_timeout: Duration,
}

impl Runtime {
    /// Resolve the configuration; `owner` names this replica (random when `None`).
    pub fn new(config: RolloutConfig, owner: Option<String>) -> Result<Self, ConfigError> {
        let query_timeout = dur(&config.query_timeout, Duration::from_secs(5));
        let prom = Prometheus::new(&config.prometheus, query_timeout)
            .map_err(|e| ConfigError(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(query_timeout)
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        let owner = owner.unwrap_or_else(|| {
            use rand::Rng;
            let n: u64 = rand::rng().random();
            format!("replica-{n:016x}")
        });
        Ok(Runtime {
            set_weight: config.actions.set_weight.as_deref().map(Action::parse),
            rollback: Action::parse(&config.actions.rollback),
            interval: dur(&config.interval, Duration::from_secs(10)),
            poll: dur(&config.poll, Duration::from_secs(1)),
            lease: dur(&config.lease, Duration::from_secs(60)),
            action_timeout: dur(&config.action_timeout, Duration::from_secs(30)),
            config,
            owner,
            prom,
            http,
        })
    }

    /// Read and resolve the file at `path`.
    pub fn from_file(path: &std::path::Path, owner: Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Runtime::new(RolloutConfig::from_toml(&text)?, owner)
    }
}

//! What the guard enforces, resolved once from the policy plus the guard settings.
//!
//! Plans and triggers come from the policy (`rollout.plans`, `rollback.triggers`, filtered by the
//! category's level). A few knobs the policy model does not have yet — consecutive-N and
//! N-in-window conditions, the minimum traffic for relative triggers, the no-data policy, the
//! PromQL rate window and the DB pool size — live in [`GuardSettings`], a small TOML file of the
//! guard's own with documented defaults (docs/rollout.md). Resolution checks every name and
//! collects every problem, so a typo in a trigger name is an error, not a silently ignored
//! setting.

use changegate_policy::{Dur, Level, Metric, Policy, TriggerKind, TriggerMode};
use indexmap::IndexMap;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// A plan step, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSpec {
    /// Environment (`staging`, `production`).
    pub environment: String,
    /// Traffic weight, percent.
    pub weight: u8,
    /// Minimum healthy soak before the next step (zero when the policy sets none).
    #[serde(with = "dur_secs")]
    pub soak: SignedDuration,
}

/// A rollout plan, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSpec {
    /// Plan name (key under `rollout.plans`).
    pub name: String,
    /// Steps in order.
    pub steps: Vec<StepSpec>,
    /// Monitoring after the last step, before the rollout counts as complete.
    #[serde(with = "dur_secs")]
    pub monitor_after: SignedDuration,
}

impl PlanSpec {
    /// How long step `i` must stay healthy before the guard moves on: its soak, plus the
    /// monitoring period for the last step.
    pub fn hold(&self, i: usize) -> SignedDuration {
        let soak = self.steps.get(i).map_or(SignedDuration::ZERO, |s| s.soak);
        if i + 1 == self.steps.len() {
            soak + self.monitor_after
        } else {
            soak
        }
    }
}

/// When a breaching trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Condition {
    /// After this many consecutive breaching evaluations (1 = at once).
    Consecutive {
        /// N.
        count: u32,
    },
    /// After this many breaching evaluations within a sliding window.
    InWindow {
        /// N.
        count: u32,
        /// Window.
        #[serde(with = "dur_secs")]
        window: SignedDuration,
    },
}

/// What missing data (empty result, NaN, query error, unreachable Prometheus) does.
/// It never counts as healthy: in both cases the guard does not promote.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NoDataPolicy {
    /// Hold the current step (no promotion) for as long as data is missing.
    Hold,
    /// Hold, then roll back once data has been missing this long.
    RollbackAfter {
        /// The limit.
        #[serde(with = "dur_secs")]
        limit: SignedDuration,
    },
}

/// A trigger, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerSpec {
    /// Trigger name (key under `rollback.triggers`).
    pub name: String,
    /// Description from the policy.
    pub description: String,
    /// Metric.
    pub metric: Metric,
    /// Comparison.
    pub kind: TriggerKind,
    /// Threshold in the metric's unit.
    pub threshold: f64,
    /// Window for `count` and `sustained`.
    #[serde(with = "opt_dur_secs")]
    pub window: Option<SignedDuration>,
    /// Enforce or shadow.
    pub mode: TriggerMode,
    /// PromQL override from the policy.
    pub query: Option<String>,
    /// When a breach fires.
    pub condition: Condition,
    /// What missing data does.
    pub no_data: NoDataPolicy,
    /// Relative triggers judge only at or above this traffic (requests per second).
    pub min_traffic: f64,
}

/// The whole guard configuration for one rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardSpec {
    /// Category level whose triggers apply.
    pub category: Level,
    /// The plan.
    pub plan: PlanSpec,
    /// Enabled triggers applying to the category, in policy order.
    pub triggers: Vec<TriggerSpec>,
    /// Rollback deadline from the policy (the rollback action's timeout).
    #[serde(with = "dur_secs")]
    pub rollback_deadline: SignedDuration,
    /// Query settings.
    pub queries: QuerySettings,
}

/// Settings for the default PromQL queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuerySettings {
    /// Range of `rate()` in default queries.
    #[serde(with = "dur_secs")]
    pub rate_window: SignedDuration,
    /// DB pool size; when set, pool utilisation is busy / size instead of busy / open.
    pub db_pool_size: Option<u32>,
}

/// Per-trigger knobs (all optional: unset means "inherit").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSettings {
    /// Fire after this many consecutive breaching evaluations.
    pub consecutive: Option<u32>,
    /// Fire after `count` breaching evaluations within `window` (replaces `consecutive`).
    pub within: Option<WithinSetting>,
    /// `hold` or `rollback-after`.
    pub no_data: Option<NoDataKind>,
    /// Limit for `rollback-after`.
    pub no_data_limit: Option<Dur>,
    /// Minimum requests per second for relative triggers to judge.
    pub min_traffic: Option<f64>,
}

/// N-in-window setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithinSetting {
    /// N.
    pub count: u32,
    /// Window.
    pub window: Dur,
}

/// No-data policy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoDataKind {
    /// Hold.
    Hold,
    /// Roll back after `no_data_limit`.
    RollbackAfter,
}

/// The guard's own settings file (TOML). Every field has a default; see docs/rollout.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSettings {
    /// Defaults for every trigger.
    #[serde(default)]
    pub defaults: TriggerSettings,
    /// Per-trigger overrides, keyed by trigger name.
    #[serde(default)]
    pub triggers: IndexMap<String, TriggerSettings>,
    /// Range of `rate()` in the default queries (default `1m`).
    pub rate_window: Option<Dur>,
    /// DB connection pool size (default: unset, utilisation = busy / open connections).
    pub db_pool_size: Option<u32>,
}

/// Built-in defaults for the settings the policy model does not carry.
pub mod defaults {
    use jiff::SignedDuration;
    /// Consecutive breaching evaluations before a trigger fires.
    pub const CONSECUTIVE: u32 = 1;
    /// Data missing this long rolls back (fail closed).
    pub const NO_DATA_LIMIT: SignedDuration = SignedDuration::from_secs(300);
    /// Requests per second below which relative triggers do not judge.
    pub const MIN_TRAFFIC: f64 = 1.0;
    /// Range of `rate()` in the default queries.
    pub const RATE_WINDOW: SignedDuration = SignedDuration::from_secs(60);
}

/// Why a guard could not be configured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Every problem found.
    #[error("invalid rollout configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    /// The settings file is not valid TOML of the expected shape.
    #[error("invalid guard settings: {0}")]
    Settings(String),
}

impl GuardSettings {
    /// Parse a settings file.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        toml::from_str(text).map_err(|e| SpecError::Settings(e.to_string()))
    }
}

/// Which plan and category a rollout uses: `--category` picks the category (and its plan unless
/// `--plan` is given); `--plan` alone picks the one category whose `rollout_plan` it is.
pub fn resolve(
    policy: &Policy,
    plan: Option<&str>,
    category: Option<Level>,
    settings: &GuardSettings,
) -> Result<GuardSpec, SpecError> {
    let mut errors = Vec::new();
    let level = match (plan, category) {
        (_, Some(level)) => {
            if policy.category(level).is_none() {
                errors.push(format!(
                    "category {level} is not defined (levels: {:?})",
                    policy.levels()
                ));
            }
            level
        }
        (Some(p), None) => {
            let using: Vec<Level> = policy
                .categories
                .values()
                .filter(|c| c.rollout_plan == p)
                .map(|c| c.level)
                .collect();
            match using.as_slice() {
                [one] => *one,
                [] => {
                    errors.push(format!(
                        "no category uses plan `{p}`: pass --category to pick the triggers"
                    ));
                    0
                }
                many => {
                    errors.push(format!(
                        "categories {many:?} all use plan `{p}`: pass --category"
                    ));
                    0
                }
            }
        }
        (None, None) => {
            errors.push("give --plan or --category".into());
            0
        }
    };
    let plan_name = plan
        .map(str::to_string)
        .or_else(|| policy.category(level).map(|(_, c)| c.rollout_plan.clone()))
        .unwrap_or_default();
    let plan_spec = match policy.rollout.plans.get(&plan_name) {
        Some(p) if !p.steps.is_empty() => Some(PlanSpec {
            name: plan_name.clone(),
            steps: p
                .steps
                .iter()
                .map(|s| StepSpec {
                    environment: s.environment.clone(),
                    weight: s.weight,
                    soak: s.soak.as_ref().map_or(SignedDuration::ZERO, Dur::get),
                })
                .collect(),
            monitor_after: p
                .monitor_after
                .as_ref()
                .map_or(SignedDuration::ZERO, Dur::get),
        }),
        Some(_) => {
            errors.push(format!("plan `{plan_name}` has no steps"));
            None
        }
        None if !plan_name.is_empty() => {
            let known: Vec<&String> = policy.rollout.plans.keys().collect();
            errors.push(format!("unknown plan `{plan_name}` (plans: {known:?})"));
            None
        }
        None => None,
    };
    for name in settings.triggers.keys() {
        if !policy.rollback.triggers.contains_key(name) {
            errors.push(format!("guard settings name unknown trigger `{name}`"));
        }
    }
    let mut triggers = Vec::new();
    for (name, t) in &policy.rollback.triggers {
        if !t.enabled || !t.applies_to.contains(&level) {
            continue;
        }
        let own = settings.triggers.get(name);
        let consecutive = own
            .and_then(|o| o.consecutive)
            .or(settings.defaults.consecutive);
        let min_traffic = own
            .and_then(|o| o.min_traffic)
            .or(settings.defaults.min_traffic);
        let condition = match (
            own.and_then(|o| o.within.clone())
                .or(settings.defaults.within.clone()),
            consecutive,
        ) {
            (Some(w), _) => Condition::InWindow {
                count: w.count.max(1),
                window: w.window.get(),
            },
            (None, n) => Condition::Consecutive {
                count: n.unwrap_or(defaults::CONSECUTIVE).max(1),
            },
        };
        let no_data = match own.and_then(|o| o.no_data).or(settings.defaults.no_data) {
            Some(NoDataKind::Hold) => NoDataPolicy::Hold,
            _ => NoDataPolicy::RollbackAfter {
                limit: own
                    .and_then(|o| o.no_data_limit.as_ref())
                    .or(settings.defaults.no_data_limit.as_ref())
                    .map_or(defaults::NO_DATA_LIMIT, Dur::get),
            },
        };
        let window = t.window.as_ref().map(Dur::get);
        if matches!(t.kind, TriggerKind::Count | TriggerKind::Sustained) && window.is_none() {
            errors.push(
                format!("trigger `{name}` is `{:?}` but has no window", t.kind).to_lowercase(),
            );
        }
        triggers.push(TriggerSpec {
            name: name.clone(),
            description: t.description.clone(),
            metric: t.metric,
            kind: t.kind,
            threshold: t.threshold,
            window,
            mode: t.mode,
            query: t.query.clone(),
            condition,
            no_data,
            min_traffic: min_traffic.unwrap_or(defaults::MIN_TRAFFIC),
        });
    }
    match (errors.is_empty(), plan_spec) {
        (true, Some(plan)) => Ok(GuardSpec {
            category: level,
            plan,
            triggers,
            rollback_deadline: policy.rollback.deadline.get(),
            queries: QuerySettings {
                rate_window: settings
                    .rate_window
                    .as_ref()
                    .map_or(defaults::RATE_WINDOW, Dur::get),
                db_pool_size: settings.db_pool_size,
            },
        }),
        _ => Err(SpecError::Invalid(errors)),
    }
}

pub(crate) mod dur_secs {
    use jiff::SignedDuration;
    use serde::Serializer;
    pub fn serialize<S: Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub(crate) mod opt_dur_secs {
    use jiff::SignedDuration;
    use serde::Serializer;
    pub fn serialize<S: Serializer>(d: &Option<SignedDuration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        changegate_policy::load_default().policy
    }

    #[test]
    fn plan_alone_picks_its_category_and_triggers() {
        let spec = resolve(&policy(), Some("standard"), None, &GuardSettings::default()).unwrap();
        assert_eq!(spec.category, 2);
        let weights: Vec<u8> = spec.plan.steps.iter().map(|s| s.weight).collect();
        assert_eq!(weights, [5, 50, 100]);
        assert_eq!(spec.plan.hold(0), SignedDuration::from_mins(15));
        assert_eq!(spec.plan.hold(2), SignedDuration::from_hours(1));
        let names: Vec<&str> = spec.triggers.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"slo-error-rate") && names.contains(&"memory-sustained"));
        let t = &spec.triggers[0];
        assert_eq!(t.condition, Condition::Consecutive { count: 1 });
        assert_eq!(
            t.no_data,
            NoDataPolicy::RollbackAfter {
                limit: defaults::NO_DATA_LIMIT
            }
        );
    }

    #[test]
    fn high_risk_has_no_slo_triggers_and_eight_hour_soaks() {
        let spec = resolve(&policy(), None, Some(3), &GuardSettings::default()).unwrap();
        assert_eq!(spec.plan.name, "high-risk");
        assert!(
            spec.plan.steps[..3]
                .iter()
                .all(|s| s.soak == SignedDuration::from_hours(8))
        );
        assert!(!spec.triggers.iter().any(|t| t.name.starts_with("slo-")));
    }

    #[test]
    fn settings_override_per_trigger_and_unknown_names_are_errors() {
        let s = GuardSettings::from_toml(
            r#"
            [defaults]
            no_data = "hold"
            [triggers.slo-p95-latency]
            within = { count = 3, window = "2m" }
            [triggers.error-rate-increase]
            consecutive = 2
            min_traffic = 5.0
            [triggers.nope]
            consecutive = 2
            "#,
        )
        .unwrap();
        let err = resolve(&policy(), Some("standard"), None, &s).unwrap_err();
        assert!(err.to_string().contains("unknown trigger `nope`"), "{err}");
        let mut s = s;
        s.triggers.shift_remove("nope");
        let spec = resolve(&policy(), Some("standard"), None, &s).unwrap();
        let by = |n: &str| spec.triggers.iter().find(|t| t.name == n).unwrap().clone();
        assert_eq!(
            by("slo-p95-latency").condition,
            Condition::InWindow {
                count: 3,
                window: SignedDuration::from_mins(2)
            }
        );
        assert_eq!(
            by("error-rate-increase").condition,
            Condition::Consecutive { count: 2 }
        );
        assert_eq!(by("error-rate-increase").min_traffic, 5.0);
        assert_eq!(by("slo-error-rate").no_data, NoDataPolicy::Hold);
    }

    #[test]
    fn unknown_plan_and_category_are_reported_together() {
        let err = resolve(
            &policy(),
            Some("nightly"),
            Some(9),
            &GuardSettings::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("category 9") && text.contains("unknown plan `nightly`"),
            "{text}"
        );
        assert!(GuardSettings::from_toml("bogus = 1").is_err());
    }
}

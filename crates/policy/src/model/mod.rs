//! The typed policy model, one module per policy section (`categories`, `matrices`, `windows`,
//! `freezes`, `rollout`, `rollback`, `checklist`, …). Field docs double as the policy file
//! reference (`cargo xtask docs` renders them from the JSON Schema).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::Tz;

mod audit;
mod business_days;
mod categories;
mod checklist;
mod classify;
mod emergency;
mod freezes;
mod integrations;
mod matrices;
mod meta;
mod notifications;
mod on_call;
mod reports;
mod roles;
mod rollback;
mod rollout;
mod verification;
mod windows;

pub use audit::*;
pub use business_days::*;
pub use categories::*;
pub use checklist::*;
pub use classify::*;
pub use emergency::*;
pub use freezes::*;
pub use integrations::*;
pub use matrices::*;
pub use meta::*;
pub use notifications::*;
pub use on_call::*;
pub use reports::*;
pub use roles::*;
pub use rollback::*;
pub use rollout::*;
pub use verification::*;
pub use windows::*;

/// A role id, such as `backend-lead`; declared under `[roles]`.
pub type RoleId = String;
/// A category level, such as `2`; declared under `[categories]`.
pub type Level = u8;

fn yes() -> bool {
    true
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}

/// Whether a file overrides the built-in default or stands alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Extends {
    /// Merge this file over the built-in default policy (tables merge, values and arrays replace).
    #[default]
    Builtin,
    /// This file is the whole policy.
    None,
}

/// A complete change-control policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `builtin` (default): this file overrides the built-in policy; `none`: it stands alone.
    #[serde(default)]
    pub extends: Extends,
    /// Name, version and ownership of the policy.
    pub meta: Meta,
    /// Roles and who holds them.
    pub roles: IndexMap<RoleId, Role>,
    /// People's identities in other systems, keyed by person id (`[people.alice] github =
    /// "alice-gh"`).
    #[serde(default)]
    pub people: IndexMap<String, PersonIds>,
    /// Separation-of-duties rules for approvals.
    pub separation_of_duties: SeparationOfDuties,
    /// Change categories, keyed by a name; each has a numeric level.
    pub categories: IndexMap<String, Category>,
    /// Approval matrices: facet → required roles → category.
    pub matrices: IndexMap<String, Matrix>,
    /// Facet rules outside the matrices, keyed by facet code.
    pub rules: IndexMap<String, Rule>,
    /// Classifier settings (paths and keys).
    pub classify: ClassifySettings,
    /// Standard, preferred and maintenance windows.
    pub windows: Windows,
    /// Restricted periods.
    pub freezes: IndexMap<String, Freeze>,
    /// Out-of-window exceptions.
    pub exceptions: Exceptions,
    /// Business-day calendar for lead times and SLAs.
    pub business_days: BusinessDays,
    /// Lead times and SLAs in business days.
    pub lead_times: IndexMap<String, LeadTime>,
    /// Rollout plans.
    pub rollout: Rollout,
    /// Rollback triggers and procedures.
    pub rollback: Rollback,
    /// Pre-deployment checklist and post-deployment verification.
    pub checklist: Checklist,
    /// How the post-deployment verification is run after a server-run rollout: its deadline,
    /// polling interval and the Prometheus checks of the `[checklist.post]` items.
    #[serde(default)]
    pub verification: Verification,
    /// Emergency procedure.
    pub emergency: Emergency,
    /// On-call rotations (who is on call at an instant).
    #[serde(default)]
    pub on_call: OnCall,
    /// Audit trail fields and retention.
    pub audit: Audit,
    /// Reports, metrics and reviews.
    pub reports: Reports,
    /// Incidents from PagerDuty and Alertmanager: how their priorities and labels map to
    /// incident severities.
    #[serde(default)]
    pub integrations: Integrations,
    /// Notifications: channels (Slack, e-mail, status page, signed webhooks) and which events go
    /// to which channel per category. Endpoints and secrets come from `serve --notify-config`.
    #[serde(default)]
    pub notifications: Notifications,
}

impl Policy {
    /// The person whose `[people]` entry names this GitHub login (case-insensitive) and, when the
    /// entry gives `github_id`, this user id.
    pub fn person_of_github(&self, login: &str, id: Option<u64>) -> Option<&str> {
        self.people
            .iter()
            .find(|(_, p)| {
                p.github
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(login))
                    && p.github_id.is_none_or(|want| Some(want) == id)
            })
            .map(|(k, _)| k.as_str())
    }

    /// The category with this level.
    pub fn category(&self, level: Level) -> Option<(&str, &Category)> {
        self.categories
            .iter()
            .find(|(_, c)| c.level == level)
            .map(|(k, c)| (k.as_str(), c))
    }

    /// Category levels in ascending order.
    pub fn levels(&self) -> Vec<Level> {
        let mut v: Vec<Level> = self.categories.values().map(|c| c.level).collect();
        v.sort_unstable();
        v
    }

    /// What a facet requires, from the matrix row or rule that maps it.
    pub fn facet_requirement(&self, facet: &str) -> Option<FacetRequirement> {
        for (mkey, m) in &self.matrices {
            for (i, row) in m.rows.iter().enumerate() {
                if row.facets.iter().any(|f| f == facet) {
                    return Some(FacetRequirement {
                        facet: facet.to_string(),
                        change: row.change.clone(),
                        roles: row.roles.clone(),
                        category: row.category,
                        source: RuleSource::Matrix {
                            matrix: mkey.clone(),
                            row: i,
                        },
                    });
                }
            }
        }
        self.rules.get(facet).map(|r| FacetRequirement {
            facet: facet.to_string(),
            change: r.change.clone(),
            roles: r.roles.clone(),
            category: r.category,
            source: RuleSource::Rule {
                facet: facet.to_string(),
            },
        })
    }

    /// The time zone of the standard windows.
    pub fn standard_tz(&self) -> &Tz {
        self.windows
            .standard
            .timezone
            .as_ref()
            .unwrap_or(&self.windows.timezone)
    }
    /// The time zone of the preferred windows.
    pub fn preferred_tz(&self) -> &Tz {
        self.windows
            .preferred
            .timezone
            .as_ref()
            .unwrap_or(&self.windows.timezone)
    }
    /// The time zone of the maintenance window.
    pub fn maintenance_tz(&self) -> &Tz {
        self.windows
            .maintenance
            .timezone
            .as_ref()
            .unwrap_or(&self.windows.timezone)
    }
}

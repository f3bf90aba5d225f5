//! Incidents from paging and alerting tools (`[integrations]`): how a PagerDuty incident's
//! priority and an Alertmanager alert's labels become a changegate incident severity.
//!
//! Why tables in the policy: the severity decides the incident freeze (`[freezes.incident]`) and
//! emergency eligibility, so the mapping is policy, reviewed like the rest. Every value is one of
//! `emergency.incident_severities` (checked at load). A priority, urgency or label value the
//! tables do not name maps to `unmapped`, which the seed sets to a severity that freezes: an
//! alert changegate cannot read never lets changes through unnoticed.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Incident sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Integrations {
    /// PagerDuty V3 webhooks (`POST /api/v1/webhooks/pagerduty`).
    #[serde(default)]
    pub pagerduty: PagerDutyIntegration,
    /// Prometheus Alertmanager webhooks (`POST /api/v1/webhooks/alertmanager`).
    #[serde(default)]
    pub alertmanager: AlertmanagerIntegration,
    /// GitHub webhooks (`POST /api/v1/webhooks/github`): whether a pull request review or a
    /// `/changegate approve ROLE` comment approves.
    #[serde(default)]
    pub github: GithubIntegration,
}

/// What a GitHub pull request review or comment may do (`[integrations.github]`).
///
/// The reviewer is the person whose `[people.NAME] github` login wrote it (GitHub signs the
/// webhook); the approval is then checked exactly as one given through the API (role holders,
/// separation of duties, the head commit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubIntegration {
    /// `off` (default): reviews and comments never approve; `commands`: a
    /// `/changegate approve ROLE` comment (or review body) approves in ROLE; `reviews`: besides,
    /// an approving review approves in the first role of `review_roles` (every required role when
    /// empty) that the reviewer holds and the head still lacks.
    #[serde(default)]
    pub approvals: GithubApprovals,
    /// The roles an approving review may approve in without naming one (empty: any role the
    /// change requires).
    #[serde(default)]
    pub review_roles: Vec<String>,
    /// Role-holder teams whose members GitHub says: `NAME = "org/team-slug"` makes the holder
    /// `team:NAME` (in `[roles.ROLE] holders`) the members of that GitHub team, for the
    /// authority of approvals from pull request reviews and comments. The server reads them with
    /// its GitHub App or token (`GET /orgs/{org}/teams/{team_slug}/members`; an App needs the
    /// organization permission "Members: read"), keeps them `team_ttl_secs`, and records the
    /// membership it read (members known by their `[people.NAME] github` login; other logins
    /// hold nothing) as the team's, audited. Unmapped teams keep the membership set through
    /// `PUT /api/v1/teams/{name}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub teams: IndexMap<String, String>,
    /// How long the members read from a GitHub team are used before they are read again, in
    /// seconds (default 300; 0 reads them for every approval).
    #[serde(
        default = "default_team_ttl",
        skip_serializing_if = "is_default_team_ttl"
    )]
    pub team_ttl_secs: u64,
}

/// The default of `team_ttl_secs`: five minutes.
pub const DEFAULT_TEAM_TTL_SECS: u64 = 300;

fn default_team_ttl() -> u64 {
    DEFAULT_TEAM_TTL_SECS
}

fn is_default_team_ttl(v: &u64) -> bool {
    *v == DEFAULT_TEAM_TTL_SECS
}

impl Default for GithubIntegration {
    fn default() -> Self {
        GithubIntegration {
            approvals: GithubApprovals::default(),
            review_roles: Vec::new(),
            teams: IndexMap::new(),
            team_ttl_secs: DEFAULT_TEAM_TTL_SECS,
        }
    }
}

/// Whether `target` names a GitHub team as `org/team-slug`: an organization login (1-39
/// letters, digits and single hyphens) and a slug of 1-100 lowercase letters, digits, `-` and
/// `_` (what GitHub makes of a team's name).
pub fn is_github_team(target: &str) -> bool {
    let Some((org, slug)) = target.split_once('/') else {
        return false;
    };
    super::is_github_login(org)
        && !org.ends_with("[bot]")
        && !slug.is_empty()
        && slug.len() <= 100
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether GitHub reviews and comments approve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GithubApprovals {
    /// Neither reviews nor comments approve.
    #[default]
    Off,
    /// Only `/changegate approve ROLE` commands approve.
    Commands,
    /// Approving reviews approve (in a role by `review_roles`), and commands too.
    Reviews,
}

fn table(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// PagerDuty incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyIntegration {
    /// PagerDuty priority name (the incident's `priority.summary`, `P1` … `P5`) → incident
    /// severity (`P0` … `P4`).
    pub severity: IndexMap<String, String>,
    /// Urgency (`high`, `low`) → severity, for an incident without a priority or with one
    /// `severity` does not name.
    pub urgency: IndexMap<String, String>,
    /// The severity of an incident neither table maps.
    pub unmapped: String,
}

impl Default for PagerDutyIntegration {
    fn default() -> Self {
        PagerDutyIntegration {
            severity: table(&[
                ("P1", "P0"),
                ("P2", "P1"),
                ("P3", "P2"),
                ("P4", "P3"),
                ("P5", "P4"),
            ]),
            urgency: table(&[("high", "P1"), ("low", "P3")]),
            unmapped: "P1".into(),
        }
    }
}

impl PagerDutyIntegration {
    /// The severity of an incident with this priority name and urgency.
    pub fn severity_of(&self, priority: Option<&str>, urgency: Option<&str>) -> &str {
        priority
            .and_then(|p| self.severity.get(p))
            .or_else(|| urgency.and_then(|u| self.urgency.get(u)))
            .unwrap_or(&self.unmapped)
    }
}

/// Alertmanager alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerIntegration {
    /// The alert label whose value picks the severity.
    pub severity_label: String,
    /// Label value → incident severity. An incident (one per Alertmanager group) takes the most
    /// severe of its firing alerts.
    pub severity: IndexMap<String, String>,
    /// The severity of an alert without the label, or with a value `severity` does not name.
    pub unmapped: String,
}

impl Default for AlertmanagerIntegration {
    fn default() -> Self {
        AlertmanagerIntegration {
            severity_label: "severity".into(),
            severity: table(&[
                ("critical", "P1"),
                ("error", "P2"),
                ("warning", "P3"),
                ("info", "P4"),
            ]),
            unmapped: "P1".into(),
        }
    }
}

impl AlertmanagerIntegration {
    /// The severity of an alert with these labels.
    pub fn severity_of<'a>(&'a self, label: impl FnOnce(&str) -> Option<&'a str>) -> &'a str {
        label(&self.severity_label)
            .and_then(|v| self.severity.get(v))
            .map_or(self.unmapped.as_str(), String::as_str)
    }
}

//! Emergency procedure (`[emergency]`).

use super::RoleId;
use crate::types::Dur;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Emergency procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    /// Roles that may declare.
    pub declared_by: Vec<RoleId>,
    /// How it is declared.
    pub declaration_via: String,
    /// Roles an incident commander is drawn from: any holder qualifies.
    pub commander_from: Vec<RoleId>,
    /// On-call rotations (under `[on_call.rotations]`) an incident commander is drawn from: whoever
    /// is on call in one of them qualifies ("the on-call SRE").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commander_on_call: Vec<String>,
    /// The incident commander role.
    pub commander_role: RoleId,
    /// Roles that may record that a change remediates an incident (which lifts the incident
    /// freeze for it), besides the incident's assigned commander. The seed: `sre-lead`.
    pub remediation_by: Vec<RoleId>,
    /// Roles that may record an emergency's retrospective and follow-up, besides the commander
    /// of its incident and whoever declared it. The seed: `sre-lead`.
    pub retrospective_by: Vec<RoleId>,
    /// Real-time updates channel.
    pub channel: String,
    /// Staging may be bypassed.
    pub may_bypass_staging: bool,
    /// Retrospective deadline.
    pub retrospective_within: Dur,
    /// A follow-up PR must be linked.
    pub follow_up_pr: bool,
    /// Incident kinds needing an executive report.
    pub executive_report_for: Vec<String>,
    /// Valid incident severities.
    pub incident_severities: Vec<String>,
    /// Valid incident kinds (`outage`, `security`, `data-loss`, `cascading-failure`, …). An
    /// incident is opened with one of them, or with none.
    pub incident_kinds: Vec<String>,
    /// The incidents an emergency may be declared against (the emergency category's definition),
    /// keyed by a name: an incident qualifies when it matches at least one entry. An emergency
    /// against any other incident is refused when declared and denied at deploy time.
    pub eligible: IndexMap<String, Eligibility>,
    /// Security incident response.
    pub security: SecurityResponse,
    /// Data loss prevention.
    pub data_loss: DataLoss,
}

/// One kind of incident an emergency may be declared against. Every condition given must hold;
/// an entry with no condition at all is rejected (it would make every incident an emergency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// What it covers, in the policy's words.
    pub description: String,
    /// The incident's kind is one of these (empty: any kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// The incident's severity is one of these (empty: any severity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<String>,
    /// The incident carries a CVSS base score strictly above this (0.0-10.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cvss: Option<f64>,
}

impl Eligibility {
    /// Whether an incident of this severity, kind and CVSS score matches.
    pub fn matches(&self, severity: &str, kind: Option<&str>, cvss: Option<f64>) -> bool {
        (self.kinds.is_empty() || kind.is_some_and(|k| self.kinds.iter().any(|x| x == k)))
            && (self.severities.is_empty() || self.severities.iter().any(|s| s == severity))
            && self
                .min_cvss
                .is_none_or(|min| cvss.is_some_and(|score| score > min))
    }

    /// Whether it states no condition.
    pub fn is_unrestricted(&self) -> bool {
        self.kinds.is_empty() && self.severities.is_empty() && self.min_cvss.is_none()
    }
}

impl Emergency {
    /// The first `eligible` entry an incident of this severity, kind and CVSS score matches.
    pub fn eligibility(
        &self,
        severity: &str,
        kind: Option<&str>,
        cvss: Option<f64>,
    ) -> Option<&str> {
        self.eligible
            .iter()
            .find(|(_, e)| e.matches(severity, kind, cvss))
            .map(|(k, _)| k.as_str())
    }
}

/// Security incident response deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityResponse {
    /// Who declares.
    pub declared_by: RoleId,
    /// What triggers it.
    pub trigger: String,
    /// CVSS above which the emergency process applies.
    pub min_cvss: f64,
    /// Mitigation deadline.
    pub mitigate_within: Dur,
    /// Remediation deadline.
    pub remediate_within: Dur,
    /// Post-incident deadline.
    pub post_incident_within: Dur,
}

/// Data loss recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataLoss {
    /// Restore RTO.
    pub restore_rto: Dur,
    /// Role that restores.
    pub restored_by: RoleId,
}

//! Emergency procedure (`[emergency]`).

use super::RoleId;
use crate::types::Dur;
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
    /// Roles an incident commander is drawn from.
    pub commander_from: Vec<RoleId>,
    /// The incident commander role.
    pub commander_role: RoleId,
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
    /// Security incident response.
    pub security: SecurityResponse,
    /// Data loss prevention.
    pub data_loss: DataLoss,
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

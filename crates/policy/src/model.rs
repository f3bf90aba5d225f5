//! The typed policy model. Field docs double as the policy file reference
//! (`cargo xtask docs` renders them from the JSON Schema).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::{CalSpan, Date, Dur, Holiday, LocalTime, MonthDay, Tz, Weekday};

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
    /// Emergency procedure.
    pub emergency: Emergency,
    /// Audit trail fields and retention.
    pub audit: Audit,
    /// Reports, metrics and reviews.
    pub reports: Reports,
}

/// Name, version and ownership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// Effective date.
    pub effective_date: Date,
    /// Who authorised the policy.
    #[serde(default)]
    pub authority: String,
    /// Compliance frameworks the policy serves.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// Role that owns the policy.
    pub owner: RoleId,
    /// Next scheduled review.
    pub next_review: Option<Date>,
    /// Purpose statements.
    #[serde(default)]
    pub purpose: Vec<String>,
}

/// A role and its holders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Display name.
    pub name: String,
    /// What the role does in the process.
    #[serde(default)]
    pub description: String,
    /// People (`alice`) or teams (`team:backend`) who hold the role.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Whether an approval in this role is invalidated by a new head commit.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub invalidate_on_new_commit: bool,
}

/// Separation-of-duties rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeparationOfDuties {
    /// May a commit author, co-author or the last pusher approve the change?
    pub author_may_approve: bool,
    /// May one person fill two required roles of the same change?
    pub one_person_many_roles: bool,
}

/// How a category is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CategoryKind {
    /// Auto-approved by CI.
    Auto,
    /// One approval (plus matrix rows).
    SingleApproval,
    /// Several approvals.
    MultiApproval,
    /// Emergency: the incident commander decides.
    Emergency,
}

/// Which change-window class a category is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowClass {
    /// 24/7, no restrictions.
    AnyTime,
    /// The standard windows, minus freezes.
    Standard,
    /// Planned maintenance windows only.
    Maintenance,
    /// 24/7, overriding every restriction.
    Emergency,
}

impl WindowClass {
    /// The name used in the policy file (`any-time`).
    pub fn as_str(self) -> &'static str {
        match self {
            WindowClass::AnyTime => "any-time",
            WindowClass::Standard => "standard",
            WindowClass::Maintenance => "maintenance",
            WindowClass::Emergency => "emergency",
        }
    }
}

/// A change category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Numeric level; a change takes the highest level of its facets.
    pub level: Level,
    /// How changes of this category are approved.
    pub kind: CategoryKind,
    /// Display name.
    pub name: String,
    /// Definition.
    #[serde(default)]
    pub definition: String,
    /// Examples from the policy.
    #[serde(default)]
    pub examples: Vec<String>,
    /// The approval process, step by step.
    #[serde(default)]
    pub approval_process: Vec<String>,
    /// Roles that approve every change of this category, besides the matrix rows.
    #[serde(default)]
    pub approvers: Vec<RoleId>,
    /// Roles that approve the production deployment itself (after staging).
    #[serde(default)]
    pub deploy_approvers: Vec<RoleId>,
    /// When true, the first role in `approvers` alone satisfies every approval requirement.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unilateral: bool,
    /// Change-window class.
    pub window: WindowClass,
    /// Rollout plan name (under `[rollout.plans]`).
    pub rollout_plan: String,
    /// Notification targets (`slack:#channel`, `email:list`, `status-page`).
    #[serde(default)]
    pub notify: Vec<String>,
    /// Remark on notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_note: Option<String>,
    /// Who may roll back: any one of these sets, all roles of the set together.
    pub rollback_authority: Vec<Authority>,
    /// Roles that approve an emergency (out-of-window) exception for this category.
    #[serde(default)]
    pub emergency_approvers: Vec<RoleId>,
    /// High-risk changes must include a tested rollback plan.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_tested_rollback: bool,
    /// Post-deployment monitoring.
    pub monitoring: Monitoring,
}

/// A set of roles that together hold an authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// All of these roles are needed.
    pub all_of: Vec<RoleId>,
    /// Only while an incident is active.
    #[serde(default, skip_serializing_if = "is_false")]
    pub during_active_incident: bool,
}

/// Post-deployment monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Watch dashboards for this long after deployment.
    pub watch: Dur,
    /// Incident Commander on standby for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_commander_standby: Option<Dur>,
    /// Daily status updates for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_status_days: Option<u32>,
}

/// An approval matrix (one table of the policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Title.
    pub title: String,
    /// Rows.
    pub rows: Vec<MatrixRow>,
}

/// One row of an approval matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixRow {
    /// The change type, as the policy names it.
    pub change: String,
    /// Facet codes this row covers.
    pub facets: Vec<String>,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level the facet puts a change in.
    pub category: Level,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Downtime above which a migration counts as requiring downtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_threshold: Option<Dur>,
    /// Monthly cost increase (USD) above which the row applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_usd_per_month: Option<f64>,
}

/// A facet rule outside the matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The change type.
    pub change: String,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level.
    pub category: Level,
    /// Minimum coverage (percent) of changed lines for this facet to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_changed_line_coverage: Option<f64>,
}

/// Classifier settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifySettings {
    /// Globs of documentation files.
    #[serde(default)]
    pub docs_paths: Vec<String>,
    /// Globs of SQL migration files.
    #[serde(default)]
    pub migration_paths: Vec<String>,
    /// Globs of feature-flag configuration files.
    #[serde(default)]
    pub feature_flag_paths: Vec<String>,
    /// Keys whose change is a log-level adjustment.
    #[serde(default)]
    pub log_level_keys: Vec<String>,
    /// Globs of env example files.
    #[serde(default)]
    pub env_files: Vec<String>,
    /// Tables whose migrations are flagged as locking a big table.
    #[serde(default)]
    pub big_tables: Vec<String>,
    /// Globs of Infracost JSON reports (`infracost breakdown --format json`) kept in the
    /// repository: the monthly total of base and head is compared for the `cost-increase` row.
    #[serde(default)]
    pub cost_report_paths: Vec<String>,
    /// Monthly increase (USD) above which a cost change is a `cost-increase`: not written in
    /// the file, but taken from the `threshold_usd_per_month` of the matrix row that lists the
    /// `cost-increase` facet when a change is classified. `None`: any increase counts.
    #[serde(skip)]
    #[schemars(skip)]
    pub cost_threshold_usd_per_month: Option<f64>,
}

/// Change windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Default time zone of every window (IANA name).
    pub timezone: Tz,
    /// Standard windows: when category-2 changes may ship.
    pub standard: SlotSet,
    /// Preferred windows: reported, never deny.
    pub preferred: SlotSet,
    /// Planned maintenance window (category 3).
    pub maintenance: Maintenance,
}

/// A weekly set of slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotSet {
    /// Time zone; defaults to `windows.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// Slots.
    pub slots: Vec<Slot>,
}

/// Weekly slot: on these days, from `start` (inclusive) to `end` (exclusive), local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// Days.
    pub days: Vec<Weekday>,
    /// Start, local time.
    pub start: LocalTime,
    /// End (exclusive), local time; `24:00` is the end of the day.
    pub end: LocalTime,
    /// Remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Monthly planned maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Time zone; defaults to `windows.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// Weekday of the window.
    pub weekday: Weekday,
    /// Which occurrence of the weekday in the month (1 = first).
    pub nth: u8,
    /// Start, local time.
    pub start: LocalTime,
    /// End (exclusive), local time.
    pub end: LocalTime,
    /// No change may run longer than this inside the window.
    pub max_duration: Dur,
    /// Occurrence used when the first window failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_nth: Option<u8>,
    /// The window must be announced at least this long before it starts.
    pub announce_lead: Dur,
    /// Announcement channels.
    #[serde(default)]
    pub announce_via: Vec<String>,
    /// Customers must be notified.
    #[serde(default)]
    pub requires_customer_notification: bool,
    /// What the window is for.
    #[serde(default)]
    pub usage: Vec<String>,
}

/// A day and time of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DayTime {
    /// Day.
    pub day: Weekday,
    /// Time.
    pub time: LocalTime,
}

/// A restricted period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Freeze {
    /// Every week from `from` to `to` (may wrap over the week end).
    Weekly {
        /// Display name.
        name: String,
        /// Start.
        from: DayTime,
        /// End (exclusive).
        to: DayTime,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
    },
    /// Every year, whole days from `start` to `end` inclusive (may wrap over the year end).
    Annual {
        /// Display name.
        name: String,
        /// First frozen day.
        start: MonthDay,
        /// Last frozen day (inclusive).
        end: MonthDay,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
    },
    /// Once, whole days from `start` to `end` inclusive.
    Dates {
        /// Display name.
        name: String,
        /// First frozen day.
        start: Date,
        /// Last frozen day (inclusive).
        end: Date,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
        /// Time zone; defaults to `windows.timezone`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<Tz>,
    },
    /// While an incident of one of these severities is active.
    Incident {
        /// Display name.
        name: String,
        /// Severities that freeze.
        severities: Vec<String>,
        /// Changes marked as the incident's remediation may still ship.
        except_remediation: bool,
        /// Category levels the freeze applies to.
        applies_to: Vec<Level>,
    },
}

impl Freeze {
    /// Display name.
    pub fn name(&self) -> &str {
        match self {
            Freeze::Weekly { name, .. }
            | Freeze::Annual { name, .. }
            | Freeze::Dates { name, .. }
            | Freeze::Incident { name, .. } => name,
        }
    }
    /// Category levels the freeze applies to.
    pub fn applies_to(&self) -> &[Level] {
        match self {
            Freeze::Weekly { applies_to, .. }
            | Freeze::Annual { applies_to, .. }
            | Freeze::Dates { applies_to, .. }
            | Freeze::Incident { applies_to, .. } => applies_to,
        }
    }
}

/// Out-of-window exceptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    /// Roles that must all approve an exception.
    pub approvers: Vec<RoleId>,
    /// Category levels exceptions may be granted for.
    pub applies_to: Vec<Level>,
    /// Accepted reasons, keyed by id.
    pub reasons: IndexMap<String, ExceptionReason>,
}

/// A reason for an out-of-window exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionReason {
    /// Description.
    pub description: String,
    /// Minimum severity (`low`, `medium`, `high`, `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
    /// Evidence the exception must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_evidence: Option<String>,
}

/// Business-day calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessDays {
    /// Working weekdays.
    pub days: Vec<Weekday>,
    /// Time zone in which days are counted.
    pub timezone: Tz,
    /// Non-business dates: `YYYY-MM-DD` once or `MM-DD` every year.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// Whether a lead time precedes a deploy or bounds a review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LeadKind {
    /// Must happen at least N business days before the deploy.
    #[default]
    BeforeDeploy,
    /// Must happen within N business days (a service-level target).
    Sla,
}

/// A lead time or SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadTime {
    /// Description.
    pub description: String,
    /// Business days.
    pub business_days: u32,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Kind.
    #[serde(default)]
    pub kind: LeadKind,
    /// What the document must include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_include: Vec<String>,
}

/// Rollout plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Plans by name.
    pub plans: IndexMap<String, Plan>,
}

/// A rollout plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Description.
    pub description: String,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Planned total span (reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Dur>,
    /// Monitoring after the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_after: Option<Dur>,
    /// Incident Commander on standby during the rollout.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incident_commander_standby: bool,
}

/// A rollout step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Environment (`staging`, `production`).
    pub environment: String,
    /// Traffic weight in percent (1..=100).
    pub weight: u8,
    /// Minimum healthy soak before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Dur>,
}

/// Rollback settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Traffic must be back on the old version within this time.
    pub deadline: Dur,
    /// How rollback is executed.
    #[serde(default)]
    pub execution: String,
    /// Post-mortem due after a manual rollback.
    pub post_mortem_within: Dur,
    /// Documented manual rollback commands.
    #[serde(default)]
    pub manual_commands: Vec<String>,
    /// Automatic rollback triggers.
    pub triggers: IndexMap<String, Trigger>,
    /// Database rollback.
    pub database: DatabaseRollback,
    /// Rollback testing for high-risk changes.
    pub testing: RollbackTesting,
}

/// A metric a trigger watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Percent of requests that failed (5xx).
    ErrorRate,
    /// p95 latency in milliseconds.
    P95Latency,
    /// Count of failed health checks.
    HealthCheckFailures,
    /// Database connection pool utilisation, percent.
    DbPoolUtilisation,
    /// Memory utilisation, percent.
    MemoryUtilisation,
}

impl Metric {
    /// The unit values of this metric are in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ErrorRate | Metric::DbPoolUtilisation | Metric::MemoryUtilisation => "%",
            Metric::P95Latency => "ms",
            Metric::HealthCheckFailures => "failures",
        }
    }
}

/// How a trigger compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// Value above threshold.
    Absolute,
    /// Value above baseline + threshold.
    Relative,
    /// Count of events in `window` above threshold.
    Count,
    /// Utilisation above threshold (percent).
    Utilisation,
    /// Above threshold for all of `window`.
    Sustained,
}

/// Whether a trigger acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerMode {
    /// Fires a rollback.
    #[default]
    Enforce,
    /// Evaluated and recorded only.
    Shadow,
}

/// An automatic rollback trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Description.
    pub description: String,
    /// Metric.
    pub metric: Metric,
    /// Comparison.
    pub kind: TriggerKind,
    /// Threshold in the metric's unit.
    pub threshold: f64,
    /// Window for `count` and `sustained`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Enforce or shadow.
    #[serde(default, skip_serializing_if = "is_default_mode")]
    pub mode: TriggerMode,
    /// Disable without deleting.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// PromQL override for the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn is_default_mode(m: &TriggerMode) -> bool {
    *m == TriggerMode::Enforce
}

/// Database rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRollback {
    /// Role that approves.
    pub approver: RoleId,
    /// Role that executes.
    pub executor: RoleId,
    /// Maximum downtime.
    pub max_downtime: Dur,
}

/// Rollback testing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackTesting {
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Requirements.
    pub requirements: Vec<String>,
    /// Target rollback duration.
    pub max_duration: Dur,
}

/// Checklists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    /// Pre-deployment checklist.
    pub pre: IndexMap<String, ChecklistItem>,
    /// Post-deployment verification.
    pub post: IndexMap<String, ChecklistItem>,
}

/// A checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Text.
    pub text: String,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Kind of evidence expected with an attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Checked by changegate itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto: bool,
    /// Applies only when the change has this property (`schema-change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Endpoints to probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Threshold in the item's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Disable without deleting.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

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

/// Audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Retention period.
    pub retention: CalSpan,
    /// Logged fields by question.
    pub fields: AuditFields,
}

/// Audit fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFields {
    /// What changed.
    pub what: Vec<String>,
    /// Who.
    pub who: Vec<String>,
    /// When.
    pub when: Vec<String>,
    /// Why.
    pub why: Vec<String>,
    /// Outcome.
    pub outcome: Vec<String>,
}

/// Reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// Monthly audit report.
    pub monthly: MonthlyReport,
    /// Tracked metrics, keyed by id.
    pub metrics: IndexMap<String, ReportMetric>,
    /// Quarterly review.
    pub quarterly: QuarterlyReview,
    /// Post-mortem questions.
    pub retrospective: Retrospective,
}

/// Monthly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthlyReport {
    /// Reviewer roles.
    pub reviewers: Vec<RoleId>,
}

/// Comparison for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Op {
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// At most.
    #[serde(rename = "<=")]
    Le,
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// At least.
    #[serde(rename = ">=")]
    Ge,
    /// More than.
    #[serde(rename = ">")]
    Gt,
}

impl Op {
    /// Whether `value op target` holds.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Op::Lt => value < target,
            Op::Le => value <= target,
            Op::Eq => (value - target).abs() < f64::EPSILON,
            Op::Ge => value >= target,
            Op::Gt => value > target,
        }
    }
    /// Symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

/// A report metric and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportMetric {
    /// Description.
    pub description: String,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Category levels counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<Level>,
}

/// Quarterly review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarterlyReview {
    /// Reviewer roles.
    pub reviewers: Vec<RoleId>,
    /// Review questions.
    pub questions: Vec<String>,
}

/// Retrospective questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retrospective {
    /// Questions every post-mortem must answer.
    pub questions: Vec<String>,
}

/// Where a facet's requirement comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum RuleSource {
    /// A matrix row.
    Matrix {
        /// Matrix key.
        matrix: String,
        /// Row index (0-based).
        row: usize,
    },
    /// A `[rules]` entry.
    Rule {
        /// Facet code.
        facet: String,
    },
}

/// What one facet requires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacetRequirement {
    /// The facet code.
    pub facet: String,
    /// The change type as the policy names it.
    pub change: String,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level.
    pub category: Level,
    /// Where in the policy this comes from.
    pub source: RuleSource,
}

impl Policy {
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

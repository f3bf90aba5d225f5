//! The data the gate decides on: a change request with everything recorded about it
//! ([`ChangeState`]) and the facts shared by every change ([`WorldState`]).
//!
//! These types are plain serde data so the store can persist them and the server can accept them
//! as JSON; unknown fields are rejected so a typo never silently drops a fact the gate needs.
//! Times are [`jiff::Timestamp`]s (RFC 3339 text on the wire).

use std::collections::BTreeMap;

use changegate_policy::{Dur, Level, RoleId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::status::Status;

/// A person id (`alice`), or any identifier [`WorldState::aliases`] maps to one (an e-mail address,
/// a git author name).
pub type Person = String;

/// One facet of the change, as the classifier produced it (a copy of the classifier's output so
/// this crate does not depend on the classify crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifiedFacet {
    /// Facet code, e.g. `schema-column-dropped`.
    pub kind: String,
    /// Roles the policy requires for this facet.
    #[serde(default)]
    pub roles: Vec<RoleId>,
    /// Category level the facet puts the change in.
    pub category: Level,
    /// What changed, as the classifier describes it (`express 4.19.2 → 5.0.0 (major, prod)`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// Where the classifier found it: files and lines of the change (empty for changes recorded
    /// before evidence was kept, and for classifications that carry none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<FacetEvidence>,
    /// Places the classifier found beyond the first [`ClassifiedFacet::EVIDENCE_KEPT`] (kept
    /// out of the change's document so a change touching thousands of files stays small).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_evidence: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ClassifiedFacet {
    /// How many places of evidence a facet keeps; the rest are counted in `more_evidence`.
    pub const EVIDENCE_KEPT: usize = 50;

    /// The same finding as `other`: kind, roles and category equal, and `other` adds no
    /// evidence (none, or the same).
    pub fn covers(&self, other: &ClassifiedFacet) -> bool {
        self.kind == other.kind
            && self.roles == other.roles
            && self.category == other.category
            && (other.evidence.is_empty() || other.evidence == self.evidence)
            && (other.details.is_empty() || other.details == self.details)
    }
}

/// Which side of the change a piece of evidence is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceSide {
    /// The base commit (e.g. a removed line).
    Base,
    /// The head commit.
    #[default]
    Head,
}

impl EvidenceSide {
    /// The default side (`head`).
    pub fn is_head(&self) -> bool {
        *self == EvidenceSide::Head
    }
}

/// One place a facet was found: a file of the change and, when known, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacetEvidence {
    /// File path in the repository (`/`-separated, relative).
    pub path: String,
    /// 1-based line, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The commit the path and line refer to: the base or the head (default) commit.
    #[serde(default, skip_serializing_if = "EvidenceSide::is_head")]
    pub side: EvidenceSide,
}

/// The classifier's verdict on a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifiedChange {
    /// Category level of the change (the highest of its facets).
    pub category: Level,
    /// Facets found.
    #[serde(default)]
    pub facets: Vec<ClassifiedFacet>,
    /// Roles the classifier computed as required (merged with the facet and category roles).
    #[serde(default)]
    pub required_roles: Vec<RoleId>,
}

impl ClassifiedChange {
    /// Two verdicts on the same change combined: the higher category, and every facet and
    /// required role of either (what the server observed joined with what a token vouched for, so
    /// neither can lower the other).
    pub fn merge(&self, other: &ClassifiedChange) -> ClassifiedChange {
        let mut out = self.clone();
        out.category = out.category.max(other.category);
        for f in &other.facets {
            if !out.facets.iter().any(|g| g.covers(f)) {
                out.facets.push(f.clone());
            }
        }
        for r in &other.required_roles {
            if !out.required_roles.contains(r) {
                out.required_roles.push(r.clone());
            }
        }
        out
    }
}

/// What changegate reads an input from itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observer {
    /// The commits of the repository (a repository under the server's repo root).
    Repository,
    /// GitHub's API (the pull request).
    Github,
}

/// An authenticated API token that vouched for an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voucher {
    /// Token id (public; never the secret).
    pub token: String,
    /// The person the token is bound to.
    pub person: Person,
}

/// How one input of a change is known: observed by changegate, vouched for by tokens, or both
/// (the tokens then vouch for what changegate did not observe).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// What changegate observed it from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<Observer>,
    /// The tokens that vouched for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vouched: Vec<Voucher>,
}

impl Source {
    /// Nothing recorded (a change stored before provenance was kept).
    pub fn is_empty(&self) -> bool {
        self.observed.is_empty() && self.vouched.is_empty()
    }

    /// Vouched for by one token only.
    pub fn vouched_by(v: &Voucher) -> Source {
        Source {
            observed: Vec::new(),
            vouched: vec![v.clone()],
        }
    }

    /// Add an observation (once).
    pub fn observe(&mut self, by: Observer) {
        if !self.observed.contains(&by) {
            self.observed.push(by);
        }
    }

    /// Add a voucher (once).
    pub fn vouch(&mut self, v: &Voucher) {
        if !self.vouched.contains(v) {
            self.vouched.push(v.clone());
        }
    }
}

/// Where the inputs of a change came from: what changegate observed itself, and which
/// authenticated tokens vouched for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Of the classification.
    #[serde(default, skip_serializing_if = "Source::is_empty")]
    pub classification: Source,
    /// Of the authors and co-authors.
    #[serde(default, skip_serializing_if = "Source::is_empty")]
    pub authors: Source,
    /// Of the last pusher.
    #[serde(default, skip_serializing_if = "Source::is_empty")]
    pub last_pusher: Source,
}

impl Provenance {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.classification.is_empty() && self.authors.is_empty() && self.last_pusher.is_empty()
    }
}

/// Which monthly maintenance occurrence a category-3 change targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceOccurrence {
    /// The regular occurrence (first Tuesday in the seed).
    #[default]
    Primary,
    /// The fallback occurrence (second Tuesday), after the primary window failed.
    Fallback,
}

/// A change request: what is being changed, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// Stable id.
    pub id: String,
    /// Repository (URL or `owner/name`).
    pub repository: String,
    /// Pull request link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_link: Option<String>,
    /// Ticket reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Base commit.
    pub base_commit: String,
    /// Head commit: approvals and attestations are bound to it.
    pub head_commit: String,
    /// Commit authors.
    #[serde(default)]
    pub authors: Vec<Person>,
    /// Co-authors (from `Co-authored-by` trailers, see [`crate::parse_co_authors`]).
    #[serde(default)]
    pub co_authors: Vec<Person>,
    /// Who pushed the head commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pusher: Option<Person>,
    /// The classifier's verdict.
    pub classification: ClassifiedChange,
    /// When the author wants to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_deploy_at: Option<Timestamp>,
    /// How long the deployment runs (the whole of it must fit a window); default from
    /// [`crate::GateSettings::default_deploy_duration`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_duration: Option<Dur>,
    /// Category 3: which maintenance occurrence the deploy targets.
    #[serde(default)]
    pub maintenance: MaintenanceOccurrence,
    /// Where the classification, the authors and the last pusher came from (empty for changes
    /// recorded before it was kept).
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

/// Which approval an approval is: the review sign-off, or the production-deployment gate of a
/// category with `deploy_approval_after` (the Tech Architect after staging, high-risk step 5).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalStage {
    /// The review (the default).
    #[default]
    Review,
    /// The production deployment, after the staging validation.
    Deploy,
}

impl ApprovalStage {
    /// The default stage (`review`).
    pub fn is_review(&self) -> bool {
        *self == ApprovalStage::Review
    }
}

/// A person approving a change in a role, for one head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who.
    pub person: Person,
    /// In which role.
    pub role: RoleId,
    /// The head commit approved.
    pub head_commit: String,
    /// When.
    pub at: Timestamp,
    /// Review sign-off (default) or production-deployment gate.
    #[serde(default, skip_serializing_if = "ApprovalStage::is_review")]
    pub stage: ApprovalStage,
}

/// One step of the feature-flag rollout a change declares (checked against its category's plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagStep {
    /// Percentage of users (1-100).
    pub weight: u8,
    /// Soak before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Dur>,
}

/// A person attesting one pre-deployment checklist item, for one head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Who.
    pub person: Person,
    /// Item id under `[checklist.pre]`, e.g. `rollback-plan`.
    pub item: String,
    /// Evidence link (CI run, staging smoke test, rollback plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The head commit attested.
    pub head_commit: String,
    /// When.
    pub at: Timestamp,
    /// The CI run the server verified behind the evidence link (a person's attestation of a
    /// CI-evidence item); absent for every other attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifiedLink>,
}

/// A CI run the server itself looked up behind an evidence link (GitHub Actions: `GET
/// /repos/{owner}/{repo}/actions/runs/{id}`), and what it saw: recorded with the attestation as
/// its provenance (`"via": "verified-link"`). Never accepted from a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifiedLink {
    /// Always `verified-link`: the server verified it (the provenance kind).
    pub via: String,
    /// Which CI: `github-actions`.
    pub provider: String,
    /// The run's repository as the CI reports it (`owner/name`).
    pub repository: String,
    /// The run id.
    pub run_id: u64,
    /// The commit the run ran on.
    pub head_sha: String,
    /// Its status (`completed`).
    pub status: String,
    /// Its conclusion (`success`).
    pub conclusion: String,
    /// The link as given.
    pub url: String,
}

impl VerifiedLink {
    /// The provenance kind every verified link carries.
    pub const VIA: &'static str = "verified-link";

    /// Whether it proves a successful, completed run of `commit`.
    pub fn proves(&self, commit: &str) -> bool {
        self.via == Self::VIA
            && self.head_sha == commit
            && self.status == "completed"
            && self.conclusion == "success"
    }
}

/// Something published at a time (an RFC, a stakeholder notice, a retrospective).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    /// When it was published.
    pub at: Timestamp,
    /// Link to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Who published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
    /// The notification changegate sent for it (written by the notification worker when the
    /// receiver accepted it, never by a request). A notice the policy requires as sent
    /// (`notifications.require_sent`) counts only with this, from its time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<SentNotice>,
}

/// A notice changegate sent through its notification outbox: the record the gate trusts instead
/// of a declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentNotice {
    /// What it went out as: `email`, `status-page`, `slack`, `webhook`.
    pub via: String,
    /// The policy's channel name.
    pub channel: String,
    /// The outbox row.
    pub notification: i64,
    /// When the receiver accepted it.
    pub at: Timestamp,
}

/// An emergency declared for the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyDeclaration {
    /// The incident the change remediates.
    pub incident: String,
    /// Who declared it (must hold a role in `emergency.declared_by`).
    pub declared_by: Person,
    /// When.
    pub at: Timestamp,
    /// The retrospective, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrospective: Option<Publication>,
    /// The follow-up PR (tests and documentation), once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_pr: Option<String>,
}

/// An approval of an out-of-window exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionApproval {
    /// Who.
    pub person: Person,
    /// In which role.
    pub role: RoleId,
    /// When.
    pub at: Timestamp,
}

/// A request to deploy outside the change window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRequest {
    /// Reason id under `[exceptions.reasons]`, e.g. `security-patch`.
    pub reason: String,
    /// Who asked.
    pub requested_by: Person,
    /// When.
    pub at: Timestamp,
    /// Severity (`low`, `medium`, `high`, `critical`), for reasons with a minimum severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Evidence link, for reasons that require evidence (a monitoring plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The rollout plan the exception selects instead of the category's (one of the reason's
    /// `plans`); approved together with the exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Approvals by the exception approver roles.
    #[serde(default)]
    pub approvals: Vec<ExceptionApproval>,
}

/// One state change of a change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// Previous state.
    pub from: Status,
    /// New state.
    pub to: Status,
    /// When.
    pub at: Timestamp,
    /// Who caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
}

/// A change request with everything recorded about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeState {
    /// The change.
    pub change: ChangeRequest,
    /// Current state.
    #[serde(default)]
    pub status: Status,
    /// State changes, oldest first.
    #[serde(default)]
    pub history: Vec<StatusChange>,
    /// Approvals, in the order given.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Checklist attestations.
    #[serde(default)]
    pub attestations: Vec<Attestation>,
    /// Lead-time items keyed by their `[lead_times]` id (`rfc`, `stakeholder-notice`).
    #[serde(default)]
    pub lead_items: BTreeMap<String, Publication>,
    /// Incidents this change remediates (it may ship through their freeze).
    #[serde(default)]
    pub remediates: Vec<String>,
    /// Emergency declaration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<EmergencyDeclaration>,
    /// Out-of-window exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionRequest>,
    /// The feature-flag rollout the change will run, when it declares one (production steps in
    /// order); checked against the category's rollout plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_rollout: Option<Vec<FlagStep>>,
    /// Manual rollback requests and staging rollback tests ([`crate::rollback`]).
    #[serde(
        default,
        skip_serializing_if = "crate::rollback::RollbackState::is_empty"
    )]
    pub rollback: crate::rollback::RollbackState,
    /// Duties the deployment left (standby, daily status updates), with owners and due times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duties: Vec<crate::rollback::Duty>,
    /// The GitHub pull request the change came from, as GitHub's signed webhooks report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestRecord>,
    /// Deployments GitHub reported for the change's commits (`deployment_status` webhooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentRecord>,
}

/// A GitHub pull request behind a change (recorded from signed webhooks, never from a request
/// body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestRecord {
    /// `owner/name` of the base repository, as GitHub names it.
    pub repository: String,
    /// The pull request number.
    pub number: u64,
    /// The GitHub App installation that delivered it (for the answers back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    /// Base branch.
    #[serde(default)]
    pub base_ref: String,
    /// Head branch.
    #[serde(default)]
    pub head_ref: String,
    /// The merge commit, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    /// When it was merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<Timestamp>,
    /// Who merged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_by: Option<Person>,
}

/// A deployment of one of the change's commits, as GitHub reported its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRecord {
    /// GitHub's deployment id.
    pub id: u64,
    /// Environment (`production`, `staging`).
    pub environment: String,
    /// The commit deployed.
    pub sha: String,
    /// `started`, `finished` or `failed`.
    pub phase: String,
    /// GitHub's state (`in_progress`, `success`, `failure`, `error`, …).
    pub state: String,
    /// When changegate recorded it.
    pub at: Timestamp,
    /// Who created the status (GitHub login, or the person it maps to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
}

impl ChangeState {
    /// A new change in `draft`.
    pub fn new(change: ChangeRequest) -> Self {
        ChangeState {
            change,
            status: Status::Draft,
            history: Vec::new(),
            approvals: Vec::new(),
            attestations: Vec::new(),
            lead_items: BTreeMap::new(),
            remediates: Vec::new(),
            emergency: None,
            exception: None,
            flag_rollout: None,
            rollback: Default::default(),
            duties: Vec::new(),
            pull_request: None,
            deployments: Vec::new(),
        }
    }

    /// When the change last entered `status`.
    pub fn entered(&self, status: Status) -> Option<Timestamp> {
        self.history
            .iter()
            .rev()
            .find(|h| h.to == status)
            .map(|h| h.at)
    }

    /// When the change first entered `status`.
    pub fn first_entered(&self, status: Status) -> Option<Timestamp> {
        self.history.iter().find(|h| h.to == status).map(|h| h.at)
    }
}

/// An incident. Active from `opened_at` until `resolved_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Id (e.g. the PagerDuty incident number).
    pub id: String,
    /// Severity, one of `emergency.incident_severities` (`P0` … `P4`).
    pub severity: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Opened.
    pub opened_at: Timestamp,
    /// Resolved, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The incident commander assigned to it; holds the commander role for this incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commander: Option<Person>,
    /// Kind, one of `emergency.incident_kinds` (`outage`, `security`, `data-loss`, …); none on
    /// incidents recorded before kinds existed. Vouched for by whoever opened the incident (the
    /// audit event of the opening records who).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// CVSS base score of the vulnerability behind a security incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
}

/// A CVSS base score, 0.0 to 10.0 with one decimal (kept in tenths, so it compares exactly);
/// written as a number (`9.8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cvss(u8);

impl Cvss {
    /// From a score; `None` unless it is 0.0 to 10.0 with at most one decimal.
    pub fn new(score: f64) -> Option<Self> {
        let tenths = (score * 10.0).round();
        ((0.0..=100.0).contains(&tenths) && (score * 10.0 - tenths).abs() < 1e-6)
            .then_some(Cvss(tenths as u8))
    }
    /// The score.
    pub fn score(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

impl std::fmt::Display for Cvss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl Serialize for Cvss {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.score())
    }
}

impl<'de> Deserialize<'de> for Cvss {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let score = f64::deserialize(d)?;
        Cvss::new(score).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid CVSS score {score}: expected 0.0 to 10.0 with one decimal"
            ))
        })
    }
}

impl Incident {
    /// Whether the incident is active at `at`.
    pub fn active_at(&self, at: Timestamp) -> bool {
        self.opened_at <= at && self.resolved_at.is_none_or(|r| r > at)
    }
}

/// A planned maintenance window announced to customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Id.
    pub id: String,
    /// Start of the announced window.
    pub window_start: Timestamp,
    /// End (exclusive) of the announced window.
    pub window_end: Timestamp,
    /// When it was announced.
    pub announced_at: Timestamp,
    /// Channels it went out on (`email`, `status-page`), as declared.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// What changegate sent for it (the notification worker writes these): with
    /// `notifications.require_sent` naming `maintenance-announcement`, only these count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<SentNotice>,
}

/// Facts shared by every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldState {
    /// Incidents, open and resolved.
    #[serde(default)]
    pub incidents: Vec<Incident>,
    /// Maintenance announcements.
    #[serde(default)]
    pub announcements: Vec<Announcement>,
    /// Team memberships: `team:NAME` holders in the policy expand to these people.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<Person>>,
    /// Other identifiers of people (lowercase e-mail or git name → person id), so a commit author
    /// `alice@example.com` is recognised as the approver `alice`.
    #[serde(default)]
    pub aliases: BTreeMap<String, Person>,
}

impl WorldState {
    /// The incident with this id.
    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facet(evidence: &[(&str, u32)]) -> ClassifiedFacet {
        ClassifiedFacet {
            kind: "api-endpoint-added".into(),
            roles: vec!["backend-lead".into()],
            category: 2,
            details: String::new(),
            evidence: evidence
                .iter()
                .map(|(p, l)| FacetEvidence {
                    path: (*p).into(),
                    line: Some(*l),
                    side: EvidenceSide::Head,
                })
                .collect(),
            more_evidence: 0,
        }
    }

    fn change(facets: Vec<ClassifiedFacet>) -> ClassifiedChange {
        ClassifiedChange {
            category: 2,
            facets,
            required_roles: Vec::new(),
        }
    }

    #[test]
    fn a_vouched_facet_that_repeats_an_observed_one_without_evidence_adds_nothing() {
        let observed = change(vec![facet(&[("src/pins.ts", 12)])]);
        // The same finding, vouched for without evidence: one facet, the observed one.
        let merged = observed.merge(&change(vec![facet(&[])]));
        assert_eq!(merged.facets, observed.facets);
        // Other evidence is another finding: kept beside it.
        let merged = observed.merge(&change(vec![facet(&[("src/other.ts", 3)])]));
        assert_eq!(merged.facets.len(), 2);
    }

    #[test]
    fn facets_stored_before_evidence_was_kept_still_parse_and_stay_as_they_were() {
        let old = r#"{"kind":"api-endpoint-added","roles":["backend-lead"],"category":2}"#;
        let f: ClassifiedFacet = serde_json::from_str(old).unwrap();
        assert!(f.evidence.is_empty() && f.details.is_empty() && f.more_evidence == 0);
        assert_eq!(serde_json::to_string(&f).unwrap(), old);
        let with = r#"{"kind":"k","category":1,"evidence":[{"path":"a.sql","line":3,"side":"base"},{"path":"b.sql"}]}"#;
        let f: ClassifiedFacet = serde_json::from_str(with).unwrap();
        assert_eq!(f.evidence[0].side, EvidenceSide::Base);
        assert_eq!(f.evidence[1].side, EvidenceSide::Head);
        assert_eq!(
            serde_json::to_string(&f)
                .unwrap()
                .replace("\"roles\":[],", ""),
            with
        );
    }
}

//! Monthly and quarterly change-control reports, computed from the audit log alone.
//!
//! Why this shape: the log is the source of truth, so a report is a pure function of the log's
//! records ([`build`]); anyone holding an export of the log (`changegate audit export --format
//! jsonl`) can recompute it ([`verify::verify_export`]) and prove, from the signed checkpoint the
//! report names, that the export is the log's whole population: the tree root of the exported
//! events must equal the signed root. Nothing here reads a database, a clock or a policy file.
//!
//! docs/reports.md defines every metric (and "window violation", "approval bypass"), and
//! docs/adr/0025-reports-and-proof-of-completeness.md says why it is built so.
#![deny(missing_docs)]

pub mod canonical;
pub mod codes;
pub mod facts;
pub mod metrics;
pub mod period;
pub mod render;
pub mod verify;
pub mod view;

pub use codes::Code;
pub use facts::{ApprovalRow, Deployment, Facts, IncidentRow, SignOff};
pub use metrics::{Body, Metric, Settings, Target, build};
pub use period::{Period, ReportKind};
pub use verify::{Proof, ProofPoint, VerifyOutcome};
pub use view::EventView;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Audit event kind of a reviewer's sign-off of a report.
pub const KIND_SIGNED: &str = "report.signed";

/// Audit event kind of a report the server generated on its schedule (the first day of the
/// month / quarter); `details`: `report`, `kind`, `period`, `digest`, `checkpoint {size, root}`.
pub const KIND_GENERATED: &str = "report.generated";

/// Report file format version.
pub const REPORT_VERSION: u32 = 1;

/// Errors of this crate; each message starts with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A period string is malformed.
    #[error("{code}: {0}", code = Code::PeriodInvalid)]
    Period(String),
    /// An export line is not a record.
    #[error("{code}: {0}", code = Code::ExportMalformed)]
    Export(String),
    /// A report file is malformed.
    #[error("{code}: {0}", code = Code::ReportMalformed)]
    Report(String),
    /// Rendering failed.
    #[error("{code}: {0}", code = Code::RenderFailed)]
    Render(String),
}

impl ReportError {
    /// Stable code.
    pub fn code(&self) -> Code {
        match self {
            ReportError::Period(_) => Code::PeriodInvalid,
            ReportError::Export(_) => Code::ExportMalformed,
            ReportError::Report(_) => Code::ReportMalformed,
            ReportError::Render(_) => Code::RenderFailed,
        }
    }
}

/// Who reviewed a report and who is still missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOffs {
    /// Roles whose review the policy asks for.
    pub required: Vec<String>,
    /// Sign-offs of this report's digest, in log order (the first per role counts).
    pub signed: Vec<SignOff>,
    /// Sign-offs recorded for an earlier digest of the same period (the report changed since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outdated: Vec<SignOff>,
    /// Required roles with no sign-off of this digest.
    pub missing: Vec<String>,
}

/// A report: the recomputable body, its digest, the proof of completeness and the sign-offs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub v: u32,
    /// Monthly or quarterly.
    pub kind: ReportKind,
    /// `2026-11` or `2026-Q4`.
    pub period: String,
    /// When it was generated (not part of the digest).
    pub generated_at: Timestamp,
    /// SHA-256 of the canonical JSON of `{kind, period, body}`, hex: what reviewers sign.
    pub digest: String,
    /// Everything computed from the log's records.
    pub body: Body,
    /// The signed checkpoint the report was computed from, and the consistency proof from the
    /// previous report's checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    /// Reviewer sign-offs.
    pub signoffs: SignOffs,
    /// The server's scheduled generation this report is (not part of the digest): the log
    /// position of its `report.generated` event and when. Absent on a report computed on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Generated>,
}

/// A report the server generated on its schedule and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    /// Log position of the `report.generated` event.
    pub event_seq: u64,
    /// When it was generated.
    pub at: Timestamp,
}

/// SHA-256 over the canonical JSON of `{kind, period, body}`. The body is written straight from
/// its fields ([`canonical`]) and hashed with its envelope around it (keys `body` < `kind` <
/// `period`, as the canonical form sorts them); the `Value` path is the fallback and gives the
/// same bytes.
pub fn digest(kind: ReportKind, period: &str, body: &Body) -> String {
    let mut bytes = Vec::new();
    let mut kind_bytes = Vec::new();
    let mut period_bytes = Vec::new();
    let direct = canonical::write(body, &mut bytes)
        .and_then(|()| canonical::write(&kind, &mut kind_bytes))
        .and_then(|()| canonical::write(period, &mut period_bytes));
    let mut h = Sha256::new();
    if direct.is_ok() {
        h.update(b"{\"body\":");
        h.update(&bytes);
        h.update(b",\"kind\":");
        h.update(&kind_bytes);
        h.update(b",\"period\":");
        h.update(&period_bytes);
        h.update(b"}");
    } else {
        let v = serde_json::json!({ "kind": kind, "period": period, "body": body });
        bytes.clear();
        changegate_audit::record::write_canonical(&v, &mut bytes);
        h.update(&bytes);
    }
    hex::encode(h.finalize())
}

/// The roles whose review the policy asks for (`[reports.monthly]` / `[reports.quarterly]`
/// `reviewers`: Audit Reports; Quarterly Review).
pub fn required_roles(kind: ReportKind, settings: &Settings) -> Vec<String> {
    match kind {
        ReportKind::Monthly => settings.monthly_reviewers.clone(),
        ReportKind::Quarterly => settings.quarterly_reviewers.clone(),
    }
}

/// The report name a sign-off event carries: `monthly:2026-11`, `quarterly:2026-Q4`.
pub fn report_name(kind: ReportKind, period: &str) -> String {
    format!("{}:{period}", kind.as_str())
}

/// Sign-offs of `digest` among `signoffs` (all sign-off events of the log).
pub fn signoffs(
    kind: ReportKind,
    period: &str,
    digest: &str,
    settings: &Settings,
    all: &[SignOff],
) -> SignOffs {
    let name = report_name(kind, period);
    let required = required_roles(kind, settings);
    let mut signed: Vec<SignOff> = Vec::new();
    let mut outdated = Vec::new();
    for s in all.iter().filter(|s| s.report == name) {
        if s.digest == digest {
            if !signed.iter().any(|x| x.role == s.role) {
                signed.push(s.clone());
            }
        } else {
            outdated.push(s.clone());
        }
    }
    let missing = required
        .iter()
        .filter(|r| !signed.iter().any(|s| &s.role == *r))
        .cloned()
        .collect();
    SignOffs {
        required,
        signed,
        outdated,
        missing,
    }
}

/// Build the report of `period` from the log's records (in log order; records recorded at or
/// after the period's end are used only for sign-offs). `proof` is attached by the caller that
/// read the checkpoint.
pub fn report(
    period: &Period,
    records: &[changegate_audit::Record],
    settings: &Settings,
    generated_at: Timestamp,
    proof: Option<Proof>,
) -> Report {
    let mut b = ReportBuilder::new(period, settings);
    for r in records {
        b.push(&EventView::of(r));
    }
    b.finish(generated_at, proof)
}

/// [`report`], one record at a time: the store streams the log's rows through it, each read as
/// an [`EventView`] of its stored bytes, so a million-event log is never held in memory.
pub struct ReportBuilder {
    period: Period,
    settings: Settings,
    body: metrics::BodyBuilder,
    signoffs: Vec<SignOff>,
    previous_end: Timestamp,
    size_at_previous_end: u64,
}

impl ReportBuilder {
    /// A report of `period` under `settings`.
    pub fn new(period: &Period, settings: &Settings) -> Self {
        ReportBuilder {
            period: *period,
            settings: settings.clone(),
            body: metrics::BodyBuilder::new(period, settings),
            signoffs: Vec::new(),
            previous_end: period.previous().end(),
            size_at_previous_end: 0,
        }
    }

    /// Take one record (log order).
    pub fn push(&mut self, e: &EventView<'_>) {
        if e.recorded_at < self.previous_end {
            self.size_at_previous_end += 1;
        }
        if let Some(s) = facts::signoff_of(e) {
            self.signoffs.push(s);
        }
        self.body.push(e);
    }

    /// Take one record as stored (its canonical JSON bytes).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), changegate_audit::RecordError> {
        self.push(&EventView::parse(bytes)?);
        Ok(())
    }

    /// The sign-off events seen so far, in log order.
    pub fn signoffs(&self) -> &[SignOff] {
        &self.signoffs
    }

    /// Records seen so far recorded before the end of the period (the log size at its end: the
    /// body's `population.size_at_end`).
    pub fn size_at_end(&self) -> u64 {
        self.body.size_at_end()
    }

    /// Records seen so far recorded before the end of the previous period (the log size at the
    /// end of the previous period).
    pub fn size_at_previous_end(&self) -> u64 {
        self.size_at_previous_end
    }

    /// The report.
    pub fn finish(self, generated_at: Timestamp, proof: Option<Proof>) -> Report {
        let body = self.body.finish();
        let kind = self.period.kind();
        let name = self.period.to_string();
        let digest = digest(kind, &name, &body);
        Report {
            v: REPORT_VERSION,
            kind,
            signoffs: signoffs(kind, &name, &digest, &self.settings, &self.signoffs),
            period: name,
            generated_at,
            digest,
            body,
            proof,
            generated: None,
        }
    }
}

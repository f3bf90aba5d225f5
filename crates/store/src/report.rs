//! Reports from the log (crate `changegate-report` computes them; this reads the records and the
//! checkpoint and records sign-offs).

use changegate_audit::{AuditEvent, Record};
use changegate_report::{Period, Proof, ProofPoint, Report, ReportKind, Settings, report_name};
use serde_json::json;

use crate::{EventFilter, Result, Store, StoreError};

impl Store {
    /// Every record of the log below position `size`, in log order (pruned records are absent).
    pub async fn records_below(&self, size: u64) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .events(&EventFilter {
                    after_seq: after,
                    limit: Some(20_000),
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            let done = last.seq + 1 >= size;
            out.extend(page.into_iter().filter(|e| e.seq < size).map(|e| e.record));
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// The report of `period`, computed from the records up to the current signed head, with
    /// the proof of completeness (the head's checkpoint, the tree at the end of the period, and
    /// a consistency proof from the previous report's checkpoint).
    pub async fn report(&self, period: &Period, settings: &Settings) -> Result<Report> {
        let head = self.head().await?;
        let records = self.records_below(head.size).await?;
        let mut r = changegate_report::report(period, &records, settings, self.now(), None);
        let end = r.body.population.size_at_end;
        let period_end = ProofPoint {
            size: end,
            root: hex::encode(self.root_at(end).await?),
            note: format!("the log at the end of {period}"),
        };
        // The previous report's checkpoint: the one its latest sign-off names, else the log at
        // the end of the previous period.
        let prev = period.previous();
        let prev_name = report_name(prev.kind(), &prev.to_string());
        let signed = changegate_report::facts::signoff_events(&records)
            .into_iter()
            .filter(|s| s.report == prev_name)
            .filter_map(|s| s.checkpoint_size.map(|n| (n, s)))
            .filter(|(n, _)| *n <= head.size)
            .max_by_key(|(n, _)| *n);
        let (prev_size, prev_note) = match signed {
            Some((n, s)) => (
                n,
                format!("checkpoint of report {prev_name} as {} signed it", s.person),
            ),
            None => (
                records
                    .iter()
                    .filter(|x| x.recorded_at < prev.end())
                    .count() as u64,
                format!("the log at the end of {prev} (no signed report {prev_name})"),
            ),
        };
        let consistency = self.consistency(prev_size, head.size).await?;
        r.proof = Some(Proof {
            origin: self.origin().to_string(),
            verifier_key: self.verifier_key().to_string(),
            checkpoint_note: head.checkpoint.clone(),
            checkpoint: ProofPoint {
                size: head.size,
                root: head.root.clone(),
                note: "the signed log head the report was computed from".into(),
            },
            period_end,
            previous: Some(ProofPoint {
                size: prev_size,
                root: hex::encode(consistency.old_root),
                note: prev_note,
            }),
            consistency: Some(consistency),
        });
        Ok(r)
    }

    /// Record `person`'s sign-off of the current report of `period` in `role` (the caller has
    /// checked that the person holds the role). Returns the report signed.
    pub async fn sign_report(
        &self,
        period: &Period,
        settings: &Settings,
        role: &str,
        person: &str,
        via: serde_json::Value,
    ) -> Result<(Report, crate::Appended)> {
        let kind = period.kind();
        let required = changegate_report::required_roles(kind, settings);
        if !required.iter().any(|r| r == role) {
            return Err(StoreError::Invalid(format!(
                "role `{role}` does not review the {} report (reviewers: {})",
                kind.as_str(),
                required.join(", ")
            )));
        }
        let report = self.report(period, settings).await?;
        let cp = report.proof.as_ref().map(|p| p.checkpoint.clone());
        let ev = AuditEvent::new(changegate_report::KIND_SIGNED, person).details(json!({
            "report": report_name(kind, &report.period),
            "role": role,
            "digest": report.digest,
            "checkpoint": cp.map(|c| json!({"size": c.size, "root": c.root})),
            "via": via,
        }));
        let a = self.append(ev).await?;
        Ok((report, a))
    }
}

/// Which report a period string names.
pub fn parse_period(kind: ReportKind, s: &str) -> Result<Period> {
    Period::parse_as(kind, s).map_err(|e| StoreError::Invalid(e.to_string()))
}

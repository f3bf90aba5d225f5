//! Reports from the log (crate `changegate-report` computes them; this reads the records and the
//! checkpoint and records sign-offs).

use changegate_audit::{AuditEvent, Record};
use changegate_report::{
    EventView, Generated, Period, Proof, ProofPoint, Report, ReportBuilder, ReportKind, Settings,
    report_name,
};
use futures_util::TryStreamExt as _;
use serde_json::json;
use sqlx::Row;

use crate::{EventFilter, Result, Store, StoreError, on_conn, on_pool};

/// A report the server generated on its schedule (`server_report`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// `monthly:2026-11`.
    pub name: String,
    /// Digest as generated.
    pub digest: String,
    /// Log position of the `report.generated` event.
    pub event_seq: u64,
    /// Checkpoint size it was computed from.
    pub checkpoint_size: u64,
    /// The report as generated (JSON).
    pub report: String,
}

/// What [`Store::generate_report`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Generation {
    /// Generated now: the report and its event.
    Generated(Box<Report>, crate::Appended),
    /// Generated before (by this or another replica): nothing written.
    Exists,
}

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

    /// Stream the stored records below position `size` to `each`, in log order, as their stored
    /// bytes (pruned records are absent). The report reads them as views of those bytes
    /// ([`changegate_report::EventView`]), never as parsed [`Record`]s: at a million records
    /// the parse was most of a report's time (docs/adr/0031-report-at-scale.md).
    async fn each_record_below(
        &self,
        size: u64,
        mut each: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        on_pool!(&self.inner.db, p => {
            let mut rows = sqlx::query("SELECT seq, record FROM audit_record WHERE seq < $1 ORDER BY seq")
                .bind(size as i64)
                .fetch(p);
            while let Some(r) = rows.try_next().await? {
                let seq: i64 = r.try_get(0)?;
                let text: &str = r.try_get(1)?;
                each(seq as u64, text.as_bytes())?;
            }
        });
        Ok(())
    }

    /// The report of `period`, computed from the records up to the current signed head, with
    /// the proof of completeness (the head's checkpoint, the tree at the end of the period, and
    /// a consistency proof from the previous report's checkpoint). The records stream through
    /// the report's builder; the trees come from the stored nodes (no leaf is rehashed).
    pub async fn report(&self, period: &Period, settings: &Settings) -> Result<Report> {
        let head = self.head().await?;
        let mut b = ReportBuilder::new(period, settings);
        self.each_record_below(head.size, |seq, bytes| {
            b.push_bytes(bytes)
                .map_err(|e| StoreError::Corrupt(format!("record {seq}: {e}")))
        })
        .await?;
        let generated_at = self.now();
        let end = b.size_at_end();
        let period_end = ProofPoint {
            size: end,
            root: hex::encode(self.root_at(end).await?),
            note: format!("the log at the end of {period}"),
        };
        // The previous report's checkpoint: the one its latest sign-off names, else the log at
        // the end of the previous period.
        let prev = period.previous();
        let prev_name = report_name(prev.kind(), &prev.to_string());
        let signed = b
            .signoffs()
            .iter()
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
                b.size_at_previous_end(),
                format!("the log at the end of {prev} (no signed report {prev_name})"),
            ),
        };
        let consistency = self.consistency(prev_size, head.size).await?;
        let proof = Proof {
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
        };
        Ok(b.finish(generated_at, Some(proof)))
    }

    /// The report the server generated for `name` on its schedule, if any.
    pub async fn stored_report(&self, name: &str) -> Result<Option<StoredReport>> {
        Ok(on_pool!(&self.inner.db, p => {
            sqlx::query("SELECT name, digest, event_seq, checkpoint_size, report FROM server_report WHERE name = $1")
                .bind(name).fetch_optional(p).await?
                .map(|r| -> Result<StoredReport> { Ok(StoredReport {
                    name: r.try_get(0)?,
                    digest: r.try_get(1)?,
                    event_seq: r.try_get::<i64, _>(2)? as u64,
                    checkpoint_size: r.try_get::<i64, _>(3)? as u64,
                    report: r.try_get(4)?,
                }) })
                .transpose()?
        }))
    }

    /// Generate the report of `period` as the server's scheduled run, once: compute it, and in
    /// one transaction append its `report.generated` event (`actor`; the notification router
    /// queues what it causes) and store it under its name. A report stored before (by this or
    /// another replica, before a restart) makes this a no-op: the insert conflicts and the
    /// transaction, event included, rolls back.
    pub async fn generate_report(
        &self,
        period: &Period,
        settings: &Settings,
        actor: &str,
        scheduled_for: jiff::Timestamp,
    ) -> Result<Generation> {
        let kind = period.kind();
        let name = report_name(kind, &period.to_string());
        if self.stored_report(&name).await?.is_some() {
            return Ok(Generation::Exists);
        }
        let mut report = self.report(period, settings).await?;
        let cp = report
            .proof
            .as_ref()
            .map(|p| p.checkpoint.clone())
            .ok_or_else(|| StoreError::Invalid("a report without its checkpoint".into()))?;
        let missed: Vec<&str> = report
            .body
            .metrics
            .iter()
            .filter(|m| m.missed)
            .map(|m| m.id.as_str())
            .collect();
        let ev = AuditEvent::new(changegate_report::KIND_GENERATED, actor).details(json!({
            "report": name,
            "kind": kind,
            "period": report.period,
            "digest": report.digest,
            "checkpoint": {"size": cp.size, "root": cp.root},
            "scheduled_for": scheduled_for,
            "reviewers": report.signoffs.required,
            "deployments": report.body.changes.len(),
            "missed": missed,
        }));
        let mut tx = self.begin().await?;
        let appended = tx.append_audit(ev).await?;
        report.generated = Some(Generated {
            event_seq: appended.seq,
            at: appended.recorded_at,
        });
        let text = serde_json::to_string(&report)
            .map_err(|e| StoreError::Invalid(format!("report: {e}")))?;
        let inserted = on_conn!(tx.conn(), c => {
            sqlx::query("INSERT INTO server_report (name, kind, period, digest, checkpoint_size, checkpoint_root, event_seq, generated_at, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING")
                .bind(&name).bind(kind.as_str()).bind(&report.period).bind(&report.digest)
                .bind(cp.size as i64).bind(&cp.root).bind(appended.seq as i64)
                .bind(appended.recorded_at.to_string()).bind(&text)
                .execute(&mut *c).await?.rows_affected()
        });
        if inserted != 1 {
            tx.rollback().await?;
            return Ok(Generation::Exists);
        }
        tx.commit().await?;
        Ok(Generation::Generated(Box::new(report), appended))
    }

    /// The report of `period` as the API and the CLI serve it: the one the server generated on
    /// its schedule when there is one (as notified: its body, digest and checkpoint), with the
    /// sign-offs recorded since; else computed now ([`Store::report`]). A stored report whose
    /// body does not hash to its digest, or whose digest is not the one its `report.generated`
    /// event recorded, is not served: the report is computed from the log instead.
    pub async fn current_report(&self, period: &Period, settings: &Settings) -> Result<Report> {
        let kind = period.kind();
        let name = report_name(kind, &period.to_string());
        let Some(stored) = self.stored_report(&name).await? else {
            return self.report(period, settings).await;
        };
        let head = self.head().await?;
        let parsed: Option<Report> = serde_json::from_str(&stored.report).ok();
        // One pass over the log for the sign-offs and the `report.generated` event, each record
        // read as a view of its bytes (nothing is computed).
        let mut all = Vec::new();
        let mut logged = None;
        self.each_record_below(head.size, |seq, bytes| {
            let e = EventView::parse(bytes)
                .map_err(|e| StoreError::Corrupt(format!("record {seq}: {e}")))?;
            if e.seq == stored.event_seq && e.kind == changegate_report::KIND_GENERATED {
                logged = e.details.digest.as_str().map(str::to_string);
            }
            all.extend(changegate_report::facts::signoff_of(&e));
            Ok(())
        })
        .await?;
        match parsed {
            Some(mut r)
                if changegate_report::digest(kind, &r.period, &r.body) == stored.digest
                    && r.digest == stored.digest
                    && logged.as_deref() == Some(stored.digest.as_str()) =>
            {
                r.signoffs =
                    changegate_report::signoffs(kind, &r.period, &r.digest, settings, &all);
                Ok(r)
            }
            _ => self.report(period, settings).await,
        }
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
        let report = self.current_report(period, settings).await?;
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

//! Reports from the store, on SQLite and PostgreSQL: a seeded year appended at its own times,
//! every metric of a month and a quarter against the generator's ground truth, the proof of
//! completeness checked by `verify_export` on the store's own export (passes honest, fails with
//! an event dropped), and sign-offs.

mod common;

#[path = "../../report/tests/history/mod.rs"]
mod history;

use changegate_report::verify::verify_export;
use changegate_report::{Period, Settings};
use changegate_store::{EventFilter, Store, StoreError};
use common::{Kind, TestDb};

async fn seed(store: &Store, h: &history::History) {
    for chunk in h.events.chunks(500) {
        let mut tx = store.begin().await.unwrap();
        for (at, ev) in chunk {
            tx.append_audit_at(ev.clone(), *at).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// What `changegate audit export --format jsonl` writes.
async fn export(store: &Store) -> String {
    let events = store.events(&EventFilter::default()).await.unwrap();
    events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e.record).unwrap();
            v["leaf_hash"] = e.leaf_hash.clone().into();
            v["salt"] = e.salt.clone().into();
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn value(r: &changegate_report::Report, id: &str) -> Option<f64> {
    r.body.metrics.iter().find(|m| m.id == id).unwrap().value
}

async fn seeded_reports_match_and_verify(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let h = history::generate(23, 2);
    seed(&store, &h).await;
    // Later writes (the sign-offs) happen after the seeded year, as a real clock would have it.
    db.set_time("2027-01-02T09:00:00Z".parse().unwrap());
    let settings = Settings::default();
    let month = Period::Month(2026, 11);
    let r = store.report(&month, &settings).await.unwrap();
    let e = history::expected(&h, month.start(), month.end());
    assert_eq!(value(&r, "deployments"), Some(e.deployments as f64));
    for (i, c) in ["low-risk", "medium-risk", "high-risk", "emergency"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            value(&r, &format!("deployments-{c}")),
            Some(e.by_category[i] as f64),
            "{c}"
        );
    }
    assert_eq!(value(&r, "rollback-rate"), e.rollback_rate);
    assert_eq!(
        value(&r, "window-violations"),
        Some(e.window_violations as f64)
    );
    assert_eq!(value(&r, "approval-bypasses"), Some(e.bypasses as f64));
    assert_eq!(value(&r, "mttd-low-risk"), e.mttd_low);
    assert_eq!(value(&r, "emergency-changes"), Some(e.emergencies as f64));
    assert_eq!(value(&r, "security-patches"), Some(e.security as f64));
    assert_eq!(value(&r, "dora-deployment-frequency"), Some(e.frequency));
    assert_eq!(value(&r, "dora-lead-time"), e.lead_median);
    assert_eq!(value(&r, "dora-change-failure-rate"), e.cfr);
    assert_eq!(value(&r, "dora-time-to-restore"), e.restore_median);
    let q = Period::Quarter(2026, 4);
    let qr = store.report(&q, &settings).await.unwrap();
    let qe = history::expected(&h, q.start(), q.end());
    assert_eq!(value(&qr, "deployments"), Some(qe.deployments as f64));
    let got: Vec<(String, usize, f64, f64)> = qr
        .body
        .quarterly
        .as_ref()
        .unwrap()
        .approval_by_role
        .iter()
        .map(|x| (x.role.clone(), x.approvals as usize, x.p50_h, x.p90_h))
        .collect();
    assert_eq!(got, qe.approval_by_role);

    // The proof: the store's head, the period end, the previous month's end.
    let p = r.proof.as_ref().unwrap();
    let head = store.head().await.unwrap();
    assert_eq!(
        (p.checkpoint.size, p.checkpoint.root.clone()),
        (head.size, head.root.clone())
    );
    assert_eq!(p.checkpoint.size, h.events.len() as u64);
    let prev_end = h
        .events
        .iter()
        .filter(|(t, _)| *t < month.previous().end())
        .count() as u64;
    assert_eq!(p.previous.as_ref().unwrap().size, prev_end);
    let text = export(&store).await;
    let key = store.verifier_key().clone();
    let out = verify_export(&r, &text, Some(&key));
    assert!(out.ok(), "{:#?}", out.failures);
    let out = verify_export(&qr, &text, Some(&key));
    assert!(out.ok(), "{:#?}", out.failures);
    // One event of the month dropped from the export: refused.
    let mut lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("2026-11-2") && l.contains("deployment.start"))
        .unwrap();
    lines.remove(i);
    let out = verify_export(&r, &lines.join("\n"), Some(&key));
    assert!(!out.ok());
    assert_eq!(
        out.failures[0].code,
        changegate_report::Code::ExportIncomplete
    );

    // Sign-off: recorded for the digest; the next report of the same month shows it, and the
    // December report's previous checkpoint is the one the November sign-off names.
    let (signed, a) = store
        .sign_report(
            &month,
            &settings,
            "security-lead",
            "sam",
            serde_json::json!({"token": "t"}),
        )
        .await
        .unwrap();
    assert_eq!(a.seq, head.size);
    let again = store.report(&month, &settings).await.unwrap();
    assert_eq!(
        again.digest, signed.digest,
        "a past month's digest is stable"
    );
    assert_eq!(again.signoffs.signed.len(), 1);
    assert_eq!(again.signoffs.signed[0].person, "sam");
    assert_eq!(
        again.signoffs.missing,
        vec!["engineering-manager", "compliance-officer"]
    );
    let dec = store
        .report(&Period::Month(2026, 12), &settings)
        .await
        .unwrap();
    let prev = dec.proof.as_ref().unwrap().previous.as_ref().unwrap();
    assert_eq!(prev.size, head.size);
    assert!(prev.note.contains("sam"), "{}", prev.note);
    assert!(verify_export(&dec, &export(&store).await, Some(&key)).ok());
    // A role that does not review the report is refused.
    let err = store
        .sign_report(
            &month,
            &settings,
            "tech-architect",
            "tara",
            serde_json::Value::Null,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    store.close().await;
    db.cleanup().await;
}

both!(
    seeded_reports_match_and_verify,
    a_stored_report_is_served_only_while_the_log_vouches_for_it
);

/// Issue 17, "generated on a schedule": the stored report is generated once, verifies from an
/// export like any report, and is served only while its body hashes to the digest its
/// `report.generated` event recorded (an edited copy is ignored: the report is computed again).
async fn a_stored_report_is_served_only_while_the_log_vouches_for_it(kind: Kind) {
    use changegate_store::report::Generation;
    let db = TestDb::new(kind);
    let store = db.open().await;
    let h = history::generate(5, 1);
    seed(&store, &h).await;
    db.set_time("2026-12-01T00:00:05Z".parse().unwrap());
    let settings = Settings::default();
    let month = Period::Month(2026, 11);
    let end = month.end();
    let Generation::Generated(r, a) = store
        .generate_report(&month, &settings, "integration:changegate-reports", end)
        .await
        .unwrap()
    else {
        panic!("generated");
    };
    assert_eq!(r.generated.as_ref().unwrap().event_seq, a.seq);
    assert_eq!(
        store
            .generate_report(&month, &settings, "integration:changegate-reports", end)
            .await
            .unwrap(),
        Generation::Exists,
        "once"
    );
    let key = store.verifier_key().clone();
    let served = store.current_report(&month, &settings).await.unwrap();
    assert_eq!(served.generated, r.generated);
    assert_eq!(served.digest, r.digest);
    assert!(verify_export(&served, &export(&store).await, Some(&key)).ok());

    // An edited copy (one metric changed, digest kept) is not served.
    let stored = store
        .stored_report("monthly:2026-11")
        .await
        .unwrap()
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&stored.report).unwrap();
    v["body"]["metrics"][0]["value"] = serde_json::json!(9999.0);
    let write = |text: String, digest: String| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            changegate_store::on_conn!(tx.conn(), c => sqlx::query("UPDATE server_report SET report = $1, digest = $2 WHERE name = 'monthly:2026-11'")
                .bind(text).bind(digest).execute(&mut *c).await.unwrap().rows_affected());
            tx.commit().await.unwrap();
        }
    };
    write(v.to_string(), stored.digest.clone()).await;
    let fresh = store.current_report(&month, &settings).await.unwrap();
    assert!(fresh.generated.is_none(), "an edited body is not served");
    assert_eq!(fresh.digest, r.digest, "the log's report");
    // Edited with a matching digest: the generation event names another one.
    let body: changegate_report::Body = serde_json::from_value(v["body"].clone()).unwrap();
    let forged = changegate_report::digest(month.kind(), "2026-11", &body);
    v["digest"] = serde_json::json!(forged);
    write(v.to_string(), forged).await;
    let fresh = store.current_report(&month, &settings).await.unwrap();
    assert!(fresh.generated.is_none(), "a digest the log never recorded");
    assert_eq!(fresh.digest, r.digest);
    store.close().await;
    db.cleanup().await;
}

//! The store's audit log, run against SQLite and PostgreSQL alike: append, verify, prove,
//! check proofs offline, transactions, field policy, search, retention.

mod common;

use changegate_audit::{AuditEvent, ProofFile, kinds};
use changegate_store::{EventFilter, RolloutEvent, RolloutPhase, StoreError, on_conn};
use common::{Kind, TestDb};
use jiff::Timestamp;

fn ev(i: usize) -> AuditEvent {
    AuditEvent::new(
        if i.is_multiple_of(3) {
            kinds::APPROVAL_GRANTED
        } else {
            kinds::DEPLOYMENT_STEP
        },
        format!("user{}", i % 4),
    )
    .change(format!("CR-{}", i % 5))
    .category("medium-risk")
    .what("commit-sha", format!("{i:040x}"))
    .why("pr-link", format!("https://git.example/pr/{i}"))
}

async fn append_verify_prove(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    assert_eq!(store.head().await.unwrap().size, 0);
    assert!(store.verify(None).await.unwrap().ok());
    let mut ids = Vec::new();
    for i in 0..37 {
        let a = store.append(ev(i)).await.unwrap();
        assert_eq!(a.seq, i as u64);
        ids.push(a.id);
    }
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(
        (report.size, report.records, report.checkpoints),
        (37, 37, 1 + 4)
    );
    let key = store.verifier_key().clone();
    for (i, id) in ids.iter().enumerate().step_by(5) {
        let p = store.prove(id).await.unwrap();
        assert_eq!(p.leaf_index, i as u64);
        let text = serde_json::to_string(&p).unwrap();
        let check = ProofFile::parse(&text).unwrap().check(Some(&key)).unwrap();
        assert!(check.signed, "{check:?}");
        // A proof whose record was edited fails.
        let mut bad = p.clone();
        bad.record.as_mut().unwrap().record =
            bad.record.as_ref().unwrap().record.replace("user", "USER");
        assert_eq!(
            ProofFile::Inclusion(bad)
                .check(Some(&key))
                .unwrap_err()
                .code(),
            "proof-record-mismatch"
        );
    }
    // By position too.
    assert_eq!(store.prove("36").await.unwrap().leaf_index, 36);
    assert!(matches!(
        store.prove("ev_nope").await,
        Err(StoreError::NotFound(_))
    ));
    for (old, new) in [(0, 37), (1, 37), (8, 16), (13, 37), (37, 37), (5, 6)] {
        let c = store.consistency(old, new).await.unwrap();
        let file = ProofFile::Consistency(c.clone());
        // Signed checkpoints exist for the head and every 8th size (checkpoint_every = 8).
        if new == 37 || new % 8 == 0 {
            assert!(
                file.check(Some(&key))
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"))
                    .signed
            );
        } else {
            assert_eq!(
                file.check(Some(&key)).unwrap_err().code(),
                "proof-checkpoint"
            );
            assert!(!file.check(None).unwrap().signed);
        }
        if old > 0 && old < new {
            let mut bad = c;
            bad.proof[0][0] ^= 1;
            assert!(ProofFile::Consistency(bad).check(None).is_err());
        }
    }
    assert!(store.consistency(5, 38).await.is_err());
    // Published checkpoints are kept and verified later.
    let note = store.publish_checkpoint().await.unwrap();
    assert!(note.starts_with(&format!("{}\n37\n", store.origin())));
    assert!(store.verify(Some(&note)).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn transaction_commits_state_and_event_together(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    db.exec("CREATE TABLE widget (id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        .await;
    // Failure after the domain write and the append: neither is stored.
    let r: Result<(), StoreError> = store
        .transaction(async |tx| {
            on_conn!(tx.conn(), c => sqlx::query("INSERT INTO widget (id, state) VALUES ($1, $2)").bind("w1").bind("new").execute(&mut *c).await.map(|r| r.rows_affected()))?;
            tx.append_audit(AuditEvent::new("widget.created", "alice")).await?;
            Err(StoreError::Invalid("changed my mind".into()))
        })
        .await;
    assert!(r.is_err());
    assert_eq!(store.head().await.unwrap().size, 0);
    // Success: both.
    let a = store
        .transaction(async |tx| -> Result<_, StoreError> {
            on_conn!(tx.conn(), c => sqlx::query("INSERT INTO widget (id, state) VALUES ($1, $2)").bind("w1").bind("new").execute(&mut *c).await.map(|r| r.rows_affected()))?;
            tx.append_audit(AuditEvent::new("widget.created", "alice").change("w1")).await
        })
        .await
        .unwrap();
    assert_eq!(a.seq, 0);
    let n: i64 = on_conn_count(&store).await;
    assert_eq!(n, 1);
    assert_eq!(
        store
            .events(&EventFilter {
                change_id: Some("w1".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
    db.cleanup().await;
}

async fn on_conn_count(store: &changegate_store::Store) -> i64 {
    use sqlx::Row;
    let mut tx = store.begin().await.unwrap();
    let n = on_conn!(tx.conn(), c => sqlx::query("SELECT COUNT(*) FROM widget")
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .get(0));
    tx.rollback().await.unwrap();
    n
}

async fn field_policy_and_rollout_events(kind: Kind) {
    let db = TestDb::new(kind);
    let mut cfg = db.config();
    cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
        &changegate_policy::load_default().policy.audit.fields,
    ));
    let store = changegate_store::Store::open(cfg).await.unwrap();
    let err = store
        .append(AuditEvent::new("deployment.start", "ci").what("colour", "blue"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("audit-field-unknown"), "{err}");
    let r = RolloutEvent {
        phase: Some(RolloutPhase::Rollback),
        deployer: "ci-bot".into(),
        change_id: Some("CR-9".into()),
        commit_sha: Some("abc".into()),
        result: Some("rollback".into()),
        error_rate: Some(0.07),
        trigger: Some("error-rate-above-5pct".into()),
        metrics: Some(serde_json::json!({"error_rate": 0.07, "p99_ms": 900})),
        ..Default::default()
    };
    let a = store.record_rollout_event(&r).await.unwrap();
    let got = store
        .events(&EventFilter {
            kind: Some("rollback.*".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record.id, a.id);
    assert_eq!(
        got[0].record.event.outcome["error-rate"],
        serde_json::json!(0.07)
    );
    assert_eq!(
        got[0].record.event.details["trigger"],
        "error-rate-above-5pct"
    );
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn search_filters(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    for i in 0..20 {
        store.append(ev(i)).await.unwrap();
    }
    let f = |change: Option<&str>, actor: Option<&str>, kind: Option<&str>| EventFilter {
        change_id: change.map(String::from),
        actor: actor.map(String::from),
        kind: kind.map(String::from),
        ..Default::default()
    };
    assert_eq!(
        store
            .events(&f(Some("CR-1"), None, None))
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        store
            .events(&f(None, Some("user0"), None))
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        store
            .events(&f(None, None, Some("approval.granted")))
            .await
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        store
            .events(&f(None, None, Some("deployment.*")))
            .await
            .unwrap()
            .len(),
        13
    );
    assert_eq!(
        store
            .events(&f(None, None, Some("deployment_*")))
            .await
            .unwrap()
            .len(),
        0,
        "`_` is not a wildcard"
    );
    assert_eq!(
        store
            .events(&f(Some("CR-0"), Some("user0"), None))
            .await
            .unwrap()
            .len(),
        1
    );
    // Times: opening the store read the clock once, so event i was stamped T0 + (i + 1) s.
    let t = |s: i64| Timestamp::from_microsecond(common::T0_US + s * 1_000_000).unwrap();
    let win = EventFilter {
        since: Some(t(5)),
        until: Some(t(10)),
        ..Default::default()
    };
    let got: Vec<u64> = store
        .events(&win)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, vec![4, 5, 6, 7, 8]);
    let page = EventFilter {
        after_seq: Some(17),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        store
            .events(&page)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![18, 19]
    );
    store.close().await;
    db.cleanup().await;
}

async fn retention_prunes_records_and_keeps_proofs(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    for i in 0..12 {
        store.append(ev(i)).await.unwrap();
    }
    // Three years later.
    let later: Timestamp = "2029-01-10T00:00:00Z".parse().unwrap();
    db.set_time(later);
    for i in 12..16 {
        store.append(ev(i)).await.unwrap();
    }
    let two_years = changegate_policy::load_default().policy.audit;
    // Refused: a cutoff younger than the retention period.
    let young: Timestamp = "2028-01-01T00:00:00Z".parse().unwrap();
    let err = store.prune(young, &two_years, "ops").await.unwrap_err();
    assert!(
        err.to_string().starts_with("audit-retention-refused"),
        "{err}"
    );
    // Prune everything before 2027 (the first 12 records).
    let before: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    let out = store.prune(before, &two_years, "ops").await.unwrap();
    assert_eq!(out.deleted, 12);
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!((report.size, report.records, report.pruned), (17, 5, 12));
    // Proofs of what remains, and of a pruned leaf (without its record), still verify.
    let key = store.verifier_key().clone();
    for pos in ["3", "14", "16"] {
        let p = store.prove(pos).await.unwrap();
        assert_eq!(p.record.is_some(), pos != "3");
        ProofFile::Inclusion(p).check(Some(&key)).unwrap();
    }
    assert_eq!(
        store.events(&EventFilter::default()).await.unwrap().len(),
        5
    );
    // Deleting a young record by hand is still caught.
    db.exec("DELETE FROM audit_record WHERE seq = 13").await;
    let report = store.verify(None).await.unwrap();
    assert_eq!(report.first_bad_position(), Some(13));
    assert_eq!(report.failures[0].code, "audit-record-deleted");
    store.close().await;
    db.cleanup().await;
}

async fn guards_refuse_updates_and_key_mismatch_is_refused(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    store.append(ev(1)).await.unwrap();
    for sql in [
        "UPDATE audit_record SET actor = 'mallory'",
        "UPDATE audit_leaf SET seq = 5",
        "DELETE FROM audit_leaf",
        "DELETE FROM audit_node",
    ] {
        let e = db.try_exec(sql).await.unwrap_err();
        assert!(
            e.contains("append-only") || e.contains("no UPDATE path"),
            "{sql}: {e}"
        );
    }
    store.close().await;
    // Another data directory (another key) against the same database is refused.
    if kind == Kind::Postgres {
        let other = tempfile::tempdir().unwrap();
        let mut cfg = db.config();
        cfg.data_dir = other.path().to_path_buf();
        let err = changegate_store::Store::open(cfg).await.unwrap_err();
        assert!(err.to_string().starts_with("audit-key-mismatch"), "{err}");
    }
    // Reopening with the right key works and continues the log.
    let store = db.open().await;
    assert_eq!(store.append(ev(2)).await.unwrap().seq, 1);
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn batch_append_matches_single_appends(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    store.append(ev(0)).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let got = tx
        .append_audit_batch((1..1201).map(ev).collect())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((got[0].seq, got[1199].seq), (1, 1200));
    store.append(ev(1201)).await.unwrap();
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!((report.size, report.checkpoints), (1202, 1 + 1202 / 8));
    let key = store.verifier_key().clone();
    for pos in ["0", "777", "1201"] {
        ProofFile::Inclusion(store.prove(pos).await.unwrap())
            .check(Some(&key))
            .unwrap();
    }
    ProofFile::Consistency(store.consistency(800, 1202).await.unwrap())
        .check(Some(&key))
        .unwrap();
    store.close().await;
    db.cleanup().await;
}

both!(
    batch_append_matches_single_appends,
    append_verify_prove,
    transaction_commits_state_and_event_together,
    field_policy_and_rollout_events,
    search_filters,
    retention_prunes_records_and_keeps_proofs,
    guards_refuse_updates_and_key_mismatch_is_refused,
);

/// An in-memory SQLite database cannot be opened a second time: `verify` reads it through the
/// store's own pool (the path PostgreSQL takes) and finds the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = changegate_store::Store::open(changegate_store::StoreConfig {
        database_url: Some("sqlite::memory:".into()),
        ..changegate_store::StoreConfig::new(dir.path())
    })
    .await
    .unwrap();
    for i in 0..12 {
        store.append(ev(i)).await.unwrap();
    }
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!((report.size, report.records), (12, 12));
    store.close().await;
}

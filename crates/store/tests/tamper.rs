//! Tamper tests: an insider with database access drops the guard triggers and edits, deletes,
//! inserts or reorders rows directly; `verify` must catch each, at the right position. Run on
//! SQLite and PostgreSQL.

mod common;

use changegate_audit::{AuditEvent, Checkpoint, LogSigner};
use changegate_store::Store;
use common::{Kind, TestDb};

const N: usize = 20;

async fn setup(kind: Kind) -> (TestDb, Store) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    for i in 0..N {
        store
            .append(
                AuditEvent::new("change.approved", format!("user{i}"))
                    .change(format!("CR-{i}"))
                    .what("commit-sha", format!("{i:07x}")),
            )
            .await
            .unwrap();
    }
    assert!(store.verify(None).await.unwrap().ok());
    db.drop_guards().await;
    (db, store)
}

async fn expect(db: TestDb, store: Store, code: &str, position: Option<u64>) {
    let report = store.verify(None).await.unwrap();
    assert!(!report.ok(), "tampering went unnoticed");
    assert!(
        report.failures.iter().any(|f| f.code == code),
        "expected {code}, got {:#?}",
        report.failures
    );
    if let Some(p) = position {
        assert_eq!(
            report.first_bad_position(),
            Some(p),
            "{:#?}",
            report.failures
        );
    }
    store.close().await;
    db.cleanup().await;
}

async fn edited_record(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(
        "UPDATE audit_record SET record = replace(record, '\"user7\"', '\"user8\"') WHERE seq = 7",
    )
    .await;
    expect(db, store, "audit-record-modified", Some(7)).await;
}

async fn edited_search_column(kind: Kind) {
    // Hiding an event from `audit log --actor` by editing the column, not the record.
    let (db, store) = setup(kind).await;
    db.exec("UPDATE audit_record SET actor = 'someone-else' WHERE seq = 4")
        .await;
    expect(db, store, "audit-index-mismatch", Some(4)).await;
}

async fn edited_leaf(kind: Kind) {
    let (db, store) = setup(kind).await;
    let flip = match kind {
        Kind::Sqlite => {
            "UPDATE audit_leaf SET leaf = (SELECT leaf FROM audit_leaf WHERE seq = 3) WHERE seq = 9"
        }
        Kind::Postgres => {
            "UPDATE audit_leaf SET leaf = (SELECT leaf FROM audit_leaf WHERE seq = 3) WHERE seq = 9"
        }
    };
    db.exec(flip).await;
    expect(db, store, "audit-leaf-reordered", Some(9)).await;
}

async fn deleted_event(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("DELETE FROM audit_record WHERE seq = 11; DELETE FROM audit_leaf WHERE seq = 11;")
        .await;
    expect(db, store, "audit-leaf-missing", Some(11)).await;
}

async fn deleted_record_only(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("DELETE FROM audit_record WHERE seq = 2").await;
    expect(db, store, "audit-record-deleted", Some(2)).await;
}

async fn deleted_leaf_only(kind: Kind) {
    // Its record stays behind, between records that have leaves.
    let (db, store) = setup(kind).await;
    db.exec("DELETE FROM audit_leaf WHERE seq = 6").await;
    let report = store.verify(None).await.unwrap();
    for code in ["audit-leaf-missing", "audit-record-orphan"] {
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.code == code && f.position == Some(6)),
            "expected {code} at 6, got {:#?}",
            report.failures
        );
    }
    store.close().await;
    db.cleanup().await;
}

async fn deleted_tail(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(&format!(
        "DELETE FROM audit_record WHERE seq >= {}; DELETE FROM audit_leaf WHERE seq >= {};",
        N - 3,
        N - 3
    ))
    .await;
    expect(db, store, "audit-log-truncated", Some((N - 3) as u64)).await;
}

async fn inserted_at_end(kind: Kind) {
    // A row appended behind the log's back (copied from a real one, renumbered).
    let (db, store) = setup(kind).await;
    db.exec(&format!(
        "INSERT INTO audit_leaf (seq, leaf) SELECT {N}, leaf FROM audit_leaf WHERE seq = 5; \
         INSERT INTO audit_record (seq, event_id, kind, actor, change_id, recorded_at, salt, record) \
         SELECT {N}, event_id || 'x', kind, actor, change_id, recorded_at, salt, record FROM audit_record WHERE seq = 5;"
    ))
    .await;
    expect(db, store, "audit-leaf-unexpected", Some(N as u64)).await;
}

async fn inserted_record_without_leaf(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(&format!(
        "INSERT INTO audit_record (seq, event_id, kind, actor, change_id, recorded_at, salt, record) \
         SELECT {}, 'ev_forged', kind, actor, change_id, recorded_at, salt, record FROM audit_record WHERE seq = 5;",
        N + 5
    ))
    .await;
    expect(db, store, "audit-record-orphan", Some((N + 5) as u64)).await;
}

async fn inserted_in_the_middle(kind: Kind) {
    // Shift events 10.. up by one and put a forged one at 10: every later leaf names the
    // wrong position.
    let (db, store) = setup(kind).await;
    // Primary keys are checked row by row: move through a free range.
    let shift = "UPDATE audit_leaf SET seq = seq + 1000 WHERE seq >= 10; UPDATE audit_leaf SET seq = seq - 999 WHERE seq >= 1000; \
                 UPDATE audit_record SET seq = seq + 1000 WHERE seq >= 10; UPDATE audit_record SET seq = seq - 999 WHERE seq >= 1000;";
    db.exec(shift).await;
    db.exec("INSERT INTO audit_leaf (seq, leaf) SELECT 10, leaf FROM audit_leaf WHERE seq = 11; \
             INSERT INTO audit_record (seq, event_id, kind, actor, change_id, recorded_at, salt, record) \
             SELECT 10, 'ev_forged', kind, actor, change_id, recorded_at, salt, record FROM audit_record WHERE seq = 11;")
        .await;
    expect(db, store, "audit-leaf-reordered", Some(10)).await;
}

async fn reordered_rows(kind: Kind) {
    // Swap events 5 and 12 whole (leaf and record move together).
    let (db, store) = setup(kind).await;
    db.exec(
        "UPDATE audit_leaf SET seq = -1 WHERE seq = 5; UPDATE audit_leaf SET seq = 5 WHERE seq = 12; UPDATE audit_leaf SET seq = 12 WHERE seq = -1; \
         UPDATE audit_record SET seq = -1 WHERE seq = 5; UPDATE audit_record SET seq = 5 WHERE seq = 12; UPDATE audit_record SET seq = 12 WHERE seq = -1;",
    )
    .await;
    expect(db, store, "audit-leaf-reordered", Some(5)).await;
}

async fn reordered_records_only(kind: Kind) {
    // Swap only the records of 3 and 4: each now fails its leaf's commitment.
    let (db, store) = setup(kind).await;
    db.exec("UPDATE audit_record SET seq = -1 WHERE seq = 3; UPDATE audit_record SET seq = 3 WHERE seq = 4; UPDATE audit_record SET seq = 4 WHERE seq = -1;")
        .await;
    expect(db, store, "audit-record-modified", Some(3)).await;
}

async fn forged_head(kind: Kind) {
    // Re-sign the head with another key (the insider does not have the log key).
    let (db, store) = setup(kind).await;
    let mallory = LogSigner::from_seed(store.origin(), [66; 32]).unwrap();
    let head = store.head().await.unwrap();
    let root: [u8; 32] = hex::decode(&head.root).unwrap().try_into().unwrap();
    let note = mallory.sign(&Checkpoint {
        origin: store.origin().into(),
        size: head.size,
        root,
    });
    db.exec(&format!("UPDATE audit_head SET checkpoint = '{note}'"))
        .await;
    expect(db, store, "checkpoint-signature-invalid", None).await;
}

async fn rewritten_history_against_kept_checkpoint(kind: Kind) {
    // The auditor kept a checkpoint; later the log is rebuilt from scratch with the real key
    // (a compromised server). The kept checkpoint exposes it.
    let (db, store) = setup(kind).await;
    let kept = store.publish_checkpoint().await.unwrap();
    // The rebuilt log: same key, other events.
    let fresh = TestDb {
        dir: tempfile::tempdir().unwrap(),
        kind,
        schema: format!("{}_b", db.schema),
        clock: db.clock.clone(),
    };
    std::fs::copy(
        db.dir.path().join("audit-log.key"),
        fresh.dir.path().join("audit-log.key"),
    )
    .unwrap();
    let other = fresh.open().await;
    for i in 0..N {
        other
            .append(AuditEvent::new("change.approved", format!("rewritten{i}")))
            .await
            .unwrap();
    }
    let report = other.verify(Some(&kept)).await.unwrap();
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.code == "checkpoint-root-mismatch"),
        "{:#?}",
        report.failures
    );
    assert_eq!(report.first_bad_position(), Some(0));
    // A checkpoint for more leaves than the log has.
    let bigger =
        LogSigner::parse(&std::fs::read_to_string(db.dir.path().join("audit-log.key")).unwrap())
            .unwrap();
    let note = bigger.sign(&Checkpoint {
        origin: other.origin().into(),
        size: 99,
        root: [0; 32],
    });
    let report = other.verify(Some(&note)).await.unwrap();
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.code == "audit-log-truncated"),
        "{:#?}",
        report.failures
    );
    other.close().await;
    fresh.cleanup().await;
    store.close().await;
    db.cleanup().await;
}

async fn tampered_node(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("UPDATE audit_node SET hash = (SELECT hash FROM audit_node WHERE id = 0) WHERE id = 1")
        .await;
    expect(db, store, "audit-node-mismatch", Some(1)).await;
}

both!(
    edited_record,
    edited_search_column,
    edited_leaf,
    deleted_event,
    deleted_record_only,
    deleted_leaf_only,
    deleted_tail,
    inserted_at_end,
    inserted_record_without_leaf,
    inserted_in_the_middle,
    reordered_rows,
    reordered_records_only,
    forged_head,
    rewritten_history_against_kept_checkpoint,
    tampered_node,
);

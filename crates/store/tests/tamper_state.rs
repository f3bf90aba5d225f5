//! The log proves the state: an insider edits the server's state tables (or the log's head and
//! checkpoints) directly, behind the server's back; `verify` must name what was touched, with a
//! typed code and the change id. Run on SQLite and PostgreSQL.

mod common;

use changegate_audit::{AuditEvent, Code, Report};
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, Incident, Status, WorldState};
use changegate_store::{ServerStore, Store, StoreError};
use common::{Kind, TestDb};

fn change(id: &str, title: &str) -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: id.into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: title.into(),
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        authors: vec!["alice".into()],
        co_authors: Vec::new(),
        last_pusher: None,
        classification: ClassifiedChange {
            category: 3,
            facets: Vec::new(),
            required_roles: vec!["backend-lead".into()],
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance: Default::default(),
    })
}

fn event(kind: &str, id: &str) -> AuditEvent {
    AuditEvent::new(kind, "alice").change(id)
}

/// `changes` changes, each created and moved to review; every third also retitled; the world
/// written twice (a team, then an incident with its commander). Verifies ok.
async fn setup_with(kind: Kind, changes: usize) -> (TestDb, Store) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    for i in 0..changes {
        let id = format!("chg-{i}");
        let first = change(&id, &format!("change {i}"));
        s.create_change(&first, event("change.created", &id), None)
            .await
            .unwrap();
        let mut next = first.clone();
        next.status = Status::InReview;
        let mut v = s
            .update_change(&id, 1, &next, event("change.state", &id))
            .await
            .unwrap()
            .expect("version 1");
        if i % 3 == 0 {
            next.change.title = format!("change {i}, retitled");
            v = s
                .update_change(&id, v.version, &next, event("change.state", &id))
                .await
                .unwrap()
                .expect("version 2");
        }
        assert!(v.version >= 2);
        // Decisions about the change are logged too, without a stored document.
        s.record(event("gate.decision", &id)).await.unwrap();
    }
    let mut world = WorldState::default();
    world.teams.insert("db".into(), vec!["alice".into()]);
    let w = s
        .update_world(0, &world, AuditEvent::new("team.updated", "admin"))
        .await
        .unwrap()
        .expect("version 0");
    world.incidents.push(Incident {
        id: "INC-1".into(),
        severity: "P1".into(),
        title: "chat down".into(),
        opened_at: "2026-01-05T08:00:00Z".parse().unwrap(),
        resolved_at: None,
        commander: Some("carol".into()),
        kind: None,
        cvss: None,
    });
    s.update_world(
        w.version,
        &world,
        AuditEvent::new("incident.recorded", "carol"),
    )
    .await
    .unwrap()
    .expect("version 1");
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    (db, store)
}

async fn setup(kind: Kind) -> (TestDb, Store) {
    setup_with(kind, 4).await
}

/// Verify fails with `code` about `subject` (when given), and nothing else fails.
async fn expect(db: TestDb, store: Store, code: Code, subject: Option<&str>) -> Report {
    let report = store.verify(None).await.unwrap();
    assert!(!report.ok(), "tampering went unnoticed");
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.code == code && f.subject.as_deref() == subject),
        "expected only {code} about {subject:?}, got {:#?}",
        report.failures
    );
    if let Some(s) = subject {
        assert!(
            report.failures.iter().all(|f| f.message.contains(s)),
            "the message names {s}: {:#?}",
            report.failures
        );
    }
    store.close().await;
    db.cleanup().await;
    report
}

async fn approval_added_to_a_change_row(kind: Kind) {
    // The attack of the issue: an approval written straight into the stored document.
    let (db, store) = setup(kind).await;
    db.exec(&format!(
        "UPDATE server_change SET state = replace(state, '\"approvals\":[]', \
         '\"approvals\":[{{\"person\":\"mallory\",\"role\":\"backend-lead\",\"head_commit\":\"{}\",\"at\":\"2026-01-05T09:30:00Z\"}}]') \
         WHERE id = 'chg-2'",
        "b".repeat(40)
    ))
    .await;
    // The server would now decide on it...
    let s: &dyn ServerStore = &store;
    let stored = s.change("chg-2").await.unwrap().unwrap();
    assert_eq!(stored.value.approvals.len(), 1);
    // ...but verify names the change.
    expect(db, store, Code::StateModified, Some("change chg-2")).await;
}

async fn version_column_edited(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("UPDATE server_change SET version = version + 1 WHERE id = 'chg-1'")
        .await;
    expect(db, store, Code::StateModified, Some("change chg-1")).await;
}

async fn change_row_rolled_back_to_an_older_document(kind: Kind) {
    // An older document the server really wrote, put back (version and all): it is not the
    // latest one the log recorded.
    let (db, store) = setup(kind).await;
    let s: &dyn ServerStore = &store;
    let old = serde_json::to_string(&change("chg-3", "change 3")).unwrap();
    assert_ne!(s.change("chg-3").await.unwrap().unwrap().version, 1);
    db.exec(&format!(
        "UPDATE server_change SET version = 1, status = 'draft', state = '{}' WHERE id = 'chg-3'",
        old.replace('\'', "''")
    ))
    .await;
    expect(db, store, Code::StateModified, Some("change chg-3")).await;
}

async fn change_row_inserted(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(
        "INSERT INTO server_change (id, version, status, category, title, state, created_at, updated_at) \
         SELECT 'chg-forged', 1, status, category, title, state, created_at, updated_at FROM server_change WHERE id = 'chg-0'",
    )
    .await;
    expect(db, store, Code::StateUnlogged, Some("change chg-forged")).await;
}

async fn change_row_deleted(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("DELETE FROM server_change WHERE id = 'chg-1'")
        .await;
    expect(db, store, Code::StateDeleted, Some("change chg-1")).await;
}

async fn incident_commander_replaced_in_the_world_row(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(
        "UPDATE server_world SET state = replace(state, '\"commander\":\"carol\"', '\"commander\":\"mallory\"') WHERE id = 1",
    )
    .await;
    let s: &dyn ServerStore = &store;
    let w = s.world().await.unwrap().value;
    assert_eq!(w.incidents[0].commander.as_deref(), Some("mallory"));
    expect(db, store, Code::StateModified, Some("world")).await;
}

async fn world_row_written_without_an_event(kind: Kind) {
    // A fresh log: the seeded world row is fine untouched, not once edited.
    let db = TestDb::new(kind);
    let store = db.open().await;
    assert!(store.verify(None).await.unwrap().ok());
    db.exec("UPDATE server_world SET state = '{\"teams\":{\"db\":[\"mallory\"]}}' WHERE id = 1")
        .await;
    expect(db, store, Code::StateUnlogged, Some("world")).await;
}

async fn stored_checkpoint_deleted(kind: Kind) {
    let (db, store) = setup(kind).await;
    // Past 1024 events, the log's fixed interval (this store also keeps one every 8).
    let mut tx = store.begin().await.unwrap();
    tx.append_audit_batch(
        (0..1100)
            .map(|i| AuditEvent::new("test.bulk", "ci").details(serde_json::json!({ "i": i })))
            .collect(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(store.verify(None).await.unwrap().ok());
    db.exec("DELETE FROM audit_checkpoint WHERE size = 1024")
        .await;
    let report = expect(db, store, Code::CheckpointMissing, None).await;
    assert!(report.failures[0].message.contains("checkpoint 1024"));
}

async fn head_frontier_corrupted(kind: Kind) {
    let (db, store) = setup(kind).await;
    // The frontier the next append builds on: swap in another node's hash of the same length.
    let sql = match kind {
        Kind::Sqlite => {
            "UPDATE audit_head SET frontier = (SELECT hash FROM audit_node WHERE id = 0) || substr(frontier, 33) WHERE id = 1"
        }
        Kind::Postgres => {
            "UPDATE audit_head SET frontier = (SELECT hash FROM audit_node WHERE id = 0) || substring(frontier from 33) WHERE id = 1"
        }
    };
    db.exec(sql).await;
    expect(db, store, Code::HeadMismatch, None).await;
}

async fn head_size_column_edited(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec("UPDATE audit_head SET size = size - 1 WHERE id = 1")
        .await;
    expect(db, store, Code::HeadMismatch, None).await;
}

async fn a_caller_cannot_vouch_for_a_row(kind: Kind) {
    // An event that claims to record a stored document is refused unless the store writes it.
    let db = TestDb::new(kind);
    let store = db.open().await;
    let mut ev = event("change.state", "chg-1");
    ev.state = Some(changegate_audit::StateRef::of(
        changegate_audit::StateTable::Change,
        "chg-1",
        1,
        b"{}",
    ));
    let e = store.append(ev).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Record(r) if r.code() == Code::EventInvalid),
        "{e}"
    );
    assert_eq!(store.head().await.unwrap().size, 0);
    store.close().await;
    db.cleanup().await;
}

async fn untouched_log_with_many_changes_verifies(kind: Kind) {
    let (db, store) = setup_with(kind, 60).await;
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    // Every change row and the world row were checked.
    assert_eq!(report.states, 61);
    // Each write's event records what it stored.
    let events = store
        .events(&changegate_store::EventFilter {
            change_id: Some("chg-0".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let versions: Vec<i64> = events
        .iter()
        .filter_map(|e| e.record.event.state.as_ref().map(|s| s.version))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    store.close().await;
    db.cleanup().await;
}

both!(
    approval_added_to_a_change_row,
    version_column_edited,
    change_row_rolled_back_to_an_older_document,
    change_row_inserted,
    change_row_deleted,
    incident_commander_replaced_in_the_world_row,
    world_row_written_without_an_event,
    stored_checkpoint_deleted,
    head_frontier_corrupted,
    head_size_column_edited,
    a_caller_cannot_vouch_for_a_row,
    untouched_log_with_many_changes_verifies,
);

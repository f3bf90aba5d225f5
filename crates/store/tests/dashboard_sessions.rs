//! The dashboard's persistence (issue 18) through `&dyn ServerStore`, on SQLite and PostgreSQL:
//! sessions (create, find, end, expire) and the bulk reads of the change list.

mod common;

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange};
use changegate_store::{ServerStore, SessionRow, Store};
use common::{Kind, TestDb};

fn change(id: &str) -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: id.into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: format!("change {id}"),
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        authors: vec!["alice".into()],
        co_authors: Vec::new(),
        last_pusher: None,
        classification: ClassifiedChange {
            category: 1,
            facets: Vec::new(),
            required_roles: Vec::new(),
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance: Default::default(),
    })
}

fn session(id: &str, expires_us: i64) -> SessionRow {
    SessionRow {
        id: id.into(),
        token_id: "0123456789abcdef".into(),
        person: "bob".into(),
        csrf: format!("csrf-{id}"),
        created_us: 1_000,
        expires_us,
        github: None,
    }
}

async fn sessions_are_kept_found_ended_and_expired(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    let size = s.audit_log().head().await.unwrap().size;
    s.create_session(&session("s1", 5_000)).await.unwrap();
    s.create_session(&session("s2", 9_000)).await.unwrap();
    // The same id twice is refused (the primary key): a session is never overwritten.
    assert!(s.create_session(&session("s1", 7_000)).await.is_err());
    assert_eq!(
        s.find_session("s1").await.unwrap(),
        Some(session("s1", 5_000))
    );
    assert_eq!(s.find_session("nope").await.unwrap(), None);
    // A GitHub sign-in's session keeps its login and user id (migration 420).
    let gh = SessionRow {
        token_id: String::new(),
        github: Some(("Bob-GH".into(), 4242)),
        ..session("s-gh", 20_000)
    };
    s.create_session(&gh).await.unwrap();
    assert_eq!(s.find_session("s-gh").await.unwrap(), Some(gh));
    assert!(s.delete_session("s1").await.unwrap());
    assert!(!s.delete_session("s1").await.unwrap());
    assert_eq!(s.find_session("s1").await.unwrap(), None);
    s.create_session(&session("s3", 4_000)).await.unwrap();
    // Expiry is numeric: 4,000 and exactly 9,000 go at 9,000; nothing later stays behind.
    assert_eq!(s.delete_expired_sessions(8_999).await.unwrap(), 1);
    assert!(s.find_session("s2").await.unwrap().is_some());
    assert_eq!(s.delete_expired_sessions(9_000).await.unwrap(), 1);
    assert_eq!(s.find_session("s2").await.unwrap(), None);
    // Sessions are no audit events.
    assert_eq!(s.audit_log().head().await.unwrap().size, size);
    store.close().await;
    db.cleanup().await;
}

async fn changes_are_read_in_bulk(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    let ids: Vec<String> = (0..1203).map(|i| format!("CR-{i}")).collect();
    for id in ids.iter().take(1200) {
        s.create_change(
            &change(id),
            AuditEvent::new("change.created", "alice").change(id),
            None,
        )
        .await
        .unwrap();
    }
    // More ids than one chunk (500), three of them unknown: every known one, once.
    let docs = s.changes_by_id(&ids).await.unwrap();
    assert_eq!(docs.len(), 1200);
    let mut got: Vec<String> = docs.iter().map(|d| d.value.change.id.clone()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 1200);
    assert!(docs.iter().all(|d| d.version == 1));
    assert!(s.changes_by_id(&[]).await.unwrap().is_empty());
    assert!(s.active_rollout_changes().await.unwrap().is_empty());
    assert!(s.recent_rollout_changes(10).await.unwrap().is_empty());
    store.close().await;
    db.cleanup().await;
}

both!(
    sessions_are_kept_found_ended_and_expired,
    changes_are_read_in_bulk,
);

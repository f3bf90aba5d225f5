//! The server's persistence (`ServerStore`), used as the server does (through `&dyn ServerStore`),
//! on SQLite and PostgreSQL alike: tokens, change documents with compare-and-swap versions,
//! idempotency keys, the world document, and the audit event of every write.

mod common;

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, Status, WorldState};
use changegate_store::{
    Backend, EventFilter, NewTokenRow, Revocation, ServerStore, Store, StoreCode, StoreError,
    TokenKind, Versioned,
};
use common::{Kind, TestDb};

fn change(id: &str, title: &str, category: u8) -> ChangeState {
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
            category,
            facets: Vec::new(),
            required_roles: Vec::new(),
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

async fn log_size(s: &dyn ServerStore) -> u64 {
    s.audit_log().head().await.unwrap().size
}

async fn tokens_are_stored_as_digests_and_audited(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    assert_eq!(
        s.backend(),
        match kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        }
    );
    s.ping().await.unwrap();
    assert_eq!(s.token_count().await.unwrap(), 0);
    s.create_token(NewTokenRow {
        id: "0123456789abcdef",
        digest: "d1gest",
        kind: TokenKind::Admin,
        person: "alice",
        scopes: &[],
        expires_at: None,
        issued_by: "changegate",
    })
    .await
    .unwrap();
    assert_eq!(s.token_count().await.unwrap(), 1);
    let row = s.find_token("0123456789abcdef").await.unwrap().unwrap();
    assert_eq!(
        (
            row.digest.as_str(),
            row.person.as_str(),
            row.admin,
            row.revoked
        ),
        ("d1gest", "alice", true, false)
    );
    assert_eq!(s.find_token("ffffffffffffffff").await.unwrap(), None);
    // Audited without the digest.
    let events = store.events(&EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    let record = serde_json::to_string(&events[0].record).unwrap();
    assert!(record.contains("token.created") && record.contains("0123456789abcdef"));
    assert!(!record.contains("d1gest"), "{record}");
    // The same id twice is refused, and nothing is audited.
    assert!(
        s.create_token(NewTokenRow {
            id: "0123456789abcdef",
            digest: "other",
            kind: TokenKind::Person,
            person: "bob",
            scopes: &[],
            expires_at: None,
            issued_by: "changegate",
        })
        .await
        .is_err()
    );
    assert_eq!(log_size(s).await, 1);
    store.close().await;
    db.cleanup().await;
}

async fn changes_compare_and_swap(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    assert_eq!(s.change("chg-1").await.unwrap(), None);
    assert!(s.change_and_world("chg-1").await.unwrap().is_none());
    let first = change("chg-1", "first", 2);
    let v = s
        .create_change(&first, event("change.created", "chg-1"), None)
        .await
        .unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(
        s.change("chg-1").await.unwrap(),
        Some(Versioned {
            value: first.clone(),
            version: 1
        })
    );
    // A new version, with its event.
    let mut next = first.clone();
    next.status = Status::InReview;
    next.change.title = "first, retitled".into();
    let v2 = s
        .update_change("chg-1", 1, &next, event("change.state", "chg-1"))
        .await
        .unwrap()
        .expect("at version 1");
    assert_eq!(v2.version, 2);
    assert_eq!(log_size(s).await, 2);
    // A writer that read version 1 loses: nothing is written, not even its event.
    let mut stale = first.clone();
    stale.change.title = "lost".into();
    assert_eq!(
        s.update_change("chg-1", 1, &stale, event("change.state", "chg-1"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(log_size(s).await, 2);
    let (stored, world) = s.change_and_world("chg-1").await.unwrap().unwrap();
    assert_eq!((stored.value, stored.version), (next, 2));
    assert_eq!(world, WorldState::default());
    // The listing: newest first, with the summary columns of the last write.
    s.create_change(
        &change("chg-2", "second", 1),
        event("change.created", "chg-2"),
        None,
    )
    .await
    .unwrap();
    let list = s.list_changes().await.unwrap();
    let rows: Vec<_> = list
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.title.as_str(),
                c.status.as_str(),
                c.category,
                c.version,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("chg-2", "second", "draft", 1, 1),
            ("chg-1", "first, retitled", "in-review", 2, 2)
        ]
    );
    // The same id twice is refused (and not audited).
    assert!(
        s.create_change(&first, event("change.created", "chg-1"), None)
            .await
            .is_err()
    );
    assert_eq!(log_size(s).await, 3);
    store.close().await;
    db.cleanup().await;
}

async fn concurrent_writers_one_wins(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    store
        .create_change(
            &change("chg-1", "c", 1),
            event("change.created", "chg-1"),
            None,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s: &dyn ServerStore = &store;
            let next = change("chg-1", &format!("writer {i}"), 1);
            s.update_change("chg-1", 1, &next, event("change.state", "chg-1"))
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one writer of version 1 wins");
    let s: &dyn ServerStore = &store;
    assert_eq!(s.change("chg-1").await.unwrap().unwrap().version, 2);
    assert_eq!(log_size(s).await, 2);
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn concurrent_creates_of_one_id_one_wins_the_rest_are_told_it_exists(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s: &dyn ServerStore = &store;
            let c = change("chg-race", &format!("creator {i}"), 1);
            s.create_change(&c, event("change.created", "chg-race"), None)
                .await
        }));
    }
    let (mut won, mut exists) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => {
                assert_eq!(v.version, 1);
                won += 1;
            }
            Err(e) => {
                assert!(
                    matches!(&e, StoreError::ChangeExists(id) if id == "chg-race"),
                    "{e}"
                );
                assert_eq!(e.code(), Some(StoreCode::ChangeExists));
                exists += 1;
            }
        }
    }
    assert_eq!((won, exists), (1, 7));
    let s: &dyn ServerStore = &store;
    assert_eq!(s.change("chg-race").await.unwrap().unwrap().version, 1);
    assert_eq!(log_size(s).await, 1, "only the winner's event is logged");
    // Sequentially too, with an idempotency key: the key is not left behind.
    let e = s
        .create_change(
            &change("chg-race", "again", 1),
            event("change.created", "chg-race"),
            Some(("alice", "k-race")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::ChangeExists(_)), "{e}");
    assert_eq!(s.idempotent("alice", "k-race").await.unwrap(), None);
    assert_eq!(log_size(s).await, 1);
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn idempotency_keys_return_the_first_change(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    assert_eq!(s.idempotent("alice", "k1").await.unwrap(), None);
    let a = change("chg-a", "a", 1);
    s.create_change(&a, event("change.created", "chg-a"), Some(("alice", "k1")))
        .await
        .unwrap();
    assert_eq!(
        s.idempotent("alice", "k1").await.unwrap().as_deref(),
        Some("chg-a")
    );
    // A retry that made up another id gets the first change; nothing more is written.
    let again = s
        .create_change(
            &change("chg-b", "b", 1),
            event("change.created", "chg-b"),
            Some(("alice", "k1")),
        )
        .await
        .unwrap();
    assert_eq!((again.value, again.version), (a, 1));
    assert_eq!(s.change("chg-b").await.unwrap(), None);
    assert_eq!(log_size(s).await, 1);
    // Keys are per person.
    s.create_change(
        &change("chg-c", "c", 1),
        event("change.created", "chg-c"),
        Some(("bob", "k1")),
    )
    .await
    .unwrap();
    assert_eq!(
        s.idempotent("bob", "k1").await.unwrap().as_deref(),
        Some("chg-c")
    );
    store.close().await;
    db.cleanup().await;
}

async fn world_compare_and_swap_and_records(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    let w = s.world().await.unwrap();
    assert_eq!((w.value, w.version), (WorldState::default(), 0));
    let mut next = WorldState::default();
    next.teams.insert("db".into(), vec!["alice".into()]);
    let v = s
        .update_world(0, &next, AuditEvent::new("incident", "alice"))
        .await
        .unwrap()
        .expect("at version 0");
    assert_eq!(v.version, 1);
    assert_eq!(
        s.update_world(
            0,
            &WorldState::default(),
            AuditEvent::new("incident", "bob")
        )
        .await
        .unwrap(),
        None
    );
    let w = s.world().await.unwrap();
    assert_eq!((w.value, w.version), (next, 1));
    let a = s
        .record(AuditEvent::new("gate.decision", "ci").change("chg-1"))
        .await
        .unwrap();
    assert_eq!((a.seq, log_size(s).await), (1, 2));
    store.close().await;
    db.cleanup().await;
}

async fn a_corrupt_document_is_a_coded_error(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    s.create_change(
        &change("chg-1", "c", 1),
        event("change.created", "chg-1"),
        None,
    )
    .await
    .unwrap();
    db.exec("UPDATE server_change SET state = '{\"not\": \"a change\"}' WHERE id = 'chg-1'")
        .await;
    let e = s.change("chg-1").await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
    assert_eq!(e.code(), Some(StoreCode::Corrupt));
    assert!(
        e.to_string()
            .starts_with("store-corrupt: stored change does not parse"),
        "{e}"
    );
    assert!(!e.is_unavailable());
    store.close().await;
    db.cleanup().await;
}

async fn token_kinds_scopes_expiry_list_and_revoke(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    let expiry: jiff::Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    let scopes = vec!["ci-evidence".to_string(), "classify".to_string()];
    s.create_token(NewTokenRow {
        id: "1111111111111111",
        digest: "d-ci",
        kind: TokenKind::Integration,
        person: "ci",
        scopes: &scopes,
        expires_at: Some(expiry),
        issued_by: "admin",
    })
    .await
    .unwrap();
    s.create_token(NewTokenRow {
        id: "2222222222222222",
        digest: "d-alice",
        kind: TokenKind::Person,
        person: "alice",
        scopes: &[],
        expires_at: None,
        issued_by: "changegate",
    })
    .await
    .unwrap();
    let ci = s.find_token("1111111111111111").await.unwrap().unwrap();
    assert_eq!(
        (ci.kind, ci.admin, ci.scopes.clone(), ci.expires_at),
        (TokenKind::Integration, false, scopes.clone(), Some(expiry))
    );
    // A scope name with a comma would read back as two: refused, nothing written.
    let size = log_size(s).await;
    assert!(
        s.create_token(NewTokenRow {
            id: "3333333333333333",
            digest: "d",
            kind: TokenKind::Integration,
            person: "x",
            scopes: &["classify,incidents".to_string()],
            expires_at: None,
            issued_by: "changegate",
        })
        .await
        .is_err()
    );
    assert_eq!(log_size(s).await, size);
    // The listing never carries a digest.
    let list = s.list_tokens().await.unwrap();
    assert_eq!(
        list.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["1111111111111111", "2222222222222222"]
    );
    assert_eq!(list[0].name, "ci");
    assert_eq!(list[0].scopes, scopes);
    assert_eq!(list[1].kind, TokenKind::Person);
    assert!(list.iter().all(|t| t.revoked_at.is_none()));
    assert!(!serde_json::to_string(&list).unwrap().contains("d-ci"));
    // Revocation: once, audited with who; again or unknown: nothing written.
    assert_eq!(
        s.revoke_token("2222222222222222", "admin").await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(log_size(s).await, size + 1);
    assert_eq!(
        s.revoke_token("2222222222222222", "admin").await.unwrap(),
        Revocation::AlreadyRevoked
    );
    assert_eq!(
        s.revoke_token("ffffffffffffffff", "admin").await.unwrap(),
        Revocation::NotFound
    );
    assert_eq!(log_size(s).await, size + 1);
    assert!(
        s.find_token("2222222222222222")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !s.find_token("1111111111111111")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let alice = s.list_tokens().await.unwrap().remove(1);
    assert!(alice.revoked_at.is_some());
    assert_eq!(alice.revoked_by.as_deref(), Some("admin"));
    let events = store.events(&EventFilter::default()).await.unwrap();
    let last = serde_json::to_string(&events.last().unwrap().record).unwrap();
    assert!(
        last.contains("token.revoked") && last.contains("2222222222222222"),
        "{last}"
    );
    store.close().await;
    db.cleanup().await;
}

/// Tokens issued before migration 110 keep what they were: admin stays admin, person stays
/// person, none expires, none is revoked.
async fn tokens_from_before_the_scopes_migration_keep_working(kind: Kind) {
    let db = TestDb::new(kind);
    db.open().await.close().await;
    // Back to the table of migration 100, with two tokens in it.
    db.exec(
        "DROP TABLE server_token;
         CREATE TABLE server_token (
             id TEXT PRIMARY KEY, digest TEXT NOT NULL, person TEXT NOT NULL,
             admin BOOLEAN NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE, created_at TEXT NOT NULL);
         INSERT INTO server_token (id, digest, person, admin, revoked, created_at) VALUES
             ('aaaaaaaaaaaaaaaa', 'd-admin', 'admin', TRUE, FALSE, '2026-01-01T00:00:00Z'),
             ('bbbbbbbbbbbbbbbb', 'd-bob', 'bob', FALSE, FALSE, '2026-01-02T00:00:00Z'),
             ('cccccccccccccccc', 'd-old', 'carol', FALSE, TRUE, '2026-01-03T00:00:00Z');
         DELETE FROM changegate_migrations WHERE version = 110;",
    )
    .await;
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    let admin = s.find_token("aaaaaaaaaaaaaaaa").await.unwrap().unwrap();
    assert_eq!(
        (admin.kind, admin.admin, admin.revoked, admin.expires_at),
        (TokenKind::Admin, true, false, None)
    );
    assert!(admin.scopes.is_empty());
    let bob = s.find_token("bbbbbbbbbbbbbbbb").await.unwrap().unwrap();
    assert_eq!(
        (
            bob.kind,
            bob.admin,
            bob.revoked,
            bob.expires_at,
            bob.person.as_str()
        ),
        (TokenKind::Person, false, false, None, "bob")
    );
    assert!(
        s.find_token("cccccccccccccccc")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(s.list_tokens().await.unwrap().len(), 3);
    store.close().await;
    db.cleanup().await;
}

both!(
    tokens_are_stored_as_digests_and_audited,
    changes_compare_and_swap,
    concurrent_writers_one_wins,
    concurrent_creates_of_one_id_one_wins_the_rest_are_told_it_exists,
    idempotency_keys_return_the_first_change,
    world_compare_and_swap_and_records,
    a_corrupt_document_is_a_coded_error,
    token_kinds_scopes_expiry_list_and_revoke,
    tokens_from_before_the_scopes_migration_keep_working,
);

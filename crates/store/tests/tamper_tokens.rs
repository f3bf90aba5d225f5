//! The log proves the token table too: a token row inserted, or its digest, person, kind,
//! scopes, expiry or revocation edited behind the server's back, is reported by `verify` with
//! the token's id (never its digest). Rows written before state proofs are adopted by an
//! explicit, audited operator act (`audit adopt`), which refuses to launder any other failure.
//! Idempotency rows are not state a decision reads: they are excluded, on purpose (ADR 0016).
//! Run on SQLite and PostgreSQL.

mod common;

use changegate_audit::{AuditEvent, Code, Report, StateTable, kinds};
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange};
use changegate_store::{
    EventFilter, NewTokenRow, Revocation, ServerStore, Store, StoreError, TokenKind,
};
use common::{Kind, TestDb};

const DIGEST: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

fn change(id: &str) -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: id.into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: "t".into(),
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        authors: vec!["alice".into()],
        co_authors: Vec::new(),
        last_pusher: None,
        classification: ClassifiedChange {
            category: 2,
            facets: Vec::new(),
            required_roles: Vec::new(),
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance: Default::default(),
    })
}

async fn token(s: &dyn ServerStore, id: &str, kind: TokenKind, person: &str, scopes: &[&str]) {
    let scopes: Vec<String> = scopes.iter().map(|x| x.to_string()).collect();
    s.create_token(NewTokenRow {
        id,
        digest: DIGEST,
        kind,
        person,
        scopes: &scopes,
        expires_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
        issued_by: "changegate",
    })
    .await
    .unwrap();
}

/// A person token, an integration token with one scope, an admin token revoked; one change.
async fn setup(kind: Kind) -> (TestDb, Store) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    token(s, "tok_alice", TokenKind::Person, "alice", &[]).await;
    token(s, "tok_ci", TokenKind::Integration, "ci", &["classify"]).await;
    token(s, "tok_root", TokenKind::Admin, "root", &[]).await;
    assert_eq!(
        s.revoke_token("tok_root", "carol").await.unwrap(),
        Revocation::Revoked
    );
    s.create_change(
        &change("chg-1"),
        AuditEvent::new("change.created", "alice").change("chg-1"),
        Some(("alice", "key-1")),
    )
    .await
    .unwrap();
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    // Three tokens, one change, the world row.
    assert_eq!(report.states, 5);
    (db, store)
}

/// Verify fails with exactly `code` about `subject`; the messages never carry the digest.
async fn expect(store: &Store, code: Code, subject: &str) -> Report {
    let report = store.verify(None).await.unwrap();
    assert!(!report.ok(), "tampering went unnoticed");
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.code == code && f.subject.as_deref() == Some(subject)),
        "expected only {code} about {subject}, got {:#?}",
        report.failures
    );
    for f in &report.failures {
        assert!(f.message.contains(subject), "{}", f.message);
        assert!(!f.message.contains(DIGEST), "{}", f.message);
    }
    report
}

async fn finish(db: TestDb, store: Store) {
    store.close().await;
    db.cleanup().await;
}

async fn each_edit_of_a_token_row_is_named(kind: Kind) {
    for (sql, subject) in [
        // Scopes widened: the CI token may now also attest CI evidence.
        (
            "UPDATE server_token SET scopes = 'classify,ci-evidence' WHERE id = 'tok_ci'",
            "token tok_ci",
        ),
        // A person token made admin.
        (
            "UPDATE server_token SET kind = 'admin', admin = TRUE WHERE id = 'tok_alice'",
            "token tok_alice",
        ),
        // Expiry pushed out.
        (
            "UPDATE server_token SET expires_at = '2099-01-01T00:00:00Z' WHERE id = 'tok_alice'",
            "token tok_alice",
        ),
        // Revocation undone.
        (
            "UPDATE server_token SET revoked = FALSE, revoked_at = NULL, revoked_by = NULL WHERE id = 'tok_root'",
            "token tok_root",
        ),
        // The digest swapped for one of a secret the insider knows.
        (
            "UPDATE server_token SET digest = 'ffff' WHERE id = 'tok_alice'",
            "token tok_alice",
        ),
        // Given to someone else.
        (
            "UPDATE server_token SET person = 'mallory' WHERE id = 'tok_alice'",
            "token tok_alice",
        ),
    ] {
        let (db, store) = setup(kind).await;
        let size = store.head().await.unwrap().size;
        db.exec(sql).await;
        expect(&store, Code::StateModified, subject).await;
        // Verify changed nothing.
        assert_eq!(store.head().await.unwrap().size, size);
        finish(db, store).await;
    }
}

async fn a_token_row_inserted_is_named(kind: Kind) {
    let (db, store) = setup(kind).await;
    db.exec(
        "INSERT INTO server_token (id, digest, person, admin, revoked, created_at, kind, scopes) \
         VALUES ('tok_forged', 'abcd', 'mallory', TRUE, FALSE, '2026-01-05T09:00:00Z', 'admin', '')",
    )
    .await;
    expect(&store, Code::StateUnlogged, "token tok_forged").await;
    finish(db, store).await;
}

async fn a_token_row_deleted_is_named(kind: Kind) {
    // Deleting a revoked token's row would hide that it ever existed.
    let (db, store) = setup(kind).await;
    db.exec("DELETE FROM server_token WHERE id = 'tok_root'")
        .await;
    expect(&store, Code::StateDeleted, "token tok_root").await;
    finish(db, store).await;
}

async fn token_writes_log_their_state(kind: Kind) {
    let (db, store) = setup(kind).await;
    let events = store.events(&EventFilter::default()).await.unwrap();
    let refs: Vec<(String, String, i64)> = events
        .iter()
        .filter_map(|e| e.record.event.state.as_ref())
        .filter(|s| s.table == StateTable::Token)
        .map(|s| (s.id.clone(), e_kind(&events, &s.id, s.version), s.version))
        .collect();
    assert_eq!(
        refs,
        [
            ("tok_alice".into(), "token.created".into(), 1),
            ("tok_ci".into(), "token.created".into(), 1),
            ("tok_root".into(), "token.created".into(), 1),
            ("tok_root".into(), "token.revoked".into(), 2),
        ]
    );
    finish(db, store).await;
}

fn e_kind(events: &[changegate_store::StoredEvent], id: &str, version: i64) -> String {
    events
        .iter()
        .find(|e| {
            e.record
                .event
                .state
                .as_ref()
                .is_some_and(|s| s.id == id && s.version == version)
        })
        .map(|e| e.record.event.kind.clone())
        .unwrap_or_default()
}

async fn idempotency_rows_are_not_state(kind: Kind) {
    // An idempotency row only says which change a retried create returns; no decision reads it
    // (ADR 0016), so verify does not scan it: a forged row is not a verify failure, and the
    // change it points at stays proven.
    let (db, store) = setup(kind).await;
    db.exec(
        "INSERT INTO server_idempotency (person, key, change_id) VALUES ('mallory', 'k', 'chg-1')",
    )
    .await;
    let s: &dyn ServerStore = &store;
    assert_eq!(
        s.idempotent("mallory", "k").await.unwrap().as_deref(),
        Some("chg-1")
    );
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    assert_eq!(report.states, 5);
    finish(db, store).await;
}

/// Rows as a database from before state proofs has them: no logged state.
async fn legacy_rows(db: &TestDb) {
    db.exec(
        "INSERT INTO server_token (id, digest, person, admin, revoked, created_at, kind, scopes) \
         VALUES ('tok_old', 'abcd', 'olga', FALSE, FALSE, '2025-01-05T09:00:00Z', 'person', '')",
    )
    .await;
    db.exec(
        "INSERT INTO server_change (id, version, status, category, title, state, created_at, updated_at) \
         SELECT 'chg-old', 1, status, category, title, state, created_at, updated_at FROM server_change WHERE id = 'chg-1'",
    )
    .await;
}

async fn adopt_logs_unlogged_rows_once(kind: Kind) {
    let (db, store) = setup(kind).await;
    legacy_rows(&db).await;
    let report = store.verify(None).await.unwrap();
    let mut unlogged: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.code, f.subject.clone().unwrap_or_default()))
        .collect();
    unlogged.sort();
    assert_eq!(
        unlogged,
        [
            (Code::StateUnlogged, "change chg-old".to_string()),
            (Code::StateUnlogged, "token tok_old".to_string()),
        ]
    );
    // A dry run and a missing reason write nothing.
    let size = store.head().await.unwrap().size;
    let listed = store
        .adopt_unlogged("carol", "pre-0.2 rows", true)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let e = store.adopt_unlogged("carol", " ", false).await.unwrap_err();
    assert!(e.to_string().starts_with("audit-adopt-refused"), "{e}");
    assert_eq!(store.head().await.unwrap().size, size);
    // Adopted: one audited event per row, naming who and why; verify is ok.
    let adopted = store
        .adopt_unlogged("carol", "rows written before state proofs", false)
        .await
        .unwrap();
    assert_eq!(adopted.len(), 2);
    assert_eq!(store.head().await.unwrap().size, size + 2);
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    let events = store
        .events(&EventFilter {
            kind: Some(kinds::AUDIT_ADOPTED.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e.record.event.actor, "carol");
        assert_eq!(
            e.record.event.details["reason"],
            "rows written before state proofs"
        );
    }
    // Nothing left to adopt; an edit after adoption is caught like any other.
    assert!(
        store
            .adopt_unlogged("carol", "again", false)
            .await
            .unwrap()
            .is_empty()
    );
    db.exec("UPDATE server_token SET person = 'mallory' WHERE id = 'tok_old'")
        .await;
    expect(&store, Code::StateModified, "token tok_old").await;
    finish(db, store).await;
}

async fn adopt_never_launders_an_edited_row(kind: Kind) {
    let (db, store) = setup(kind).await;
    legacy_rows(&db).await;
    db.exec("UPDATE server_token SET scopes = 'classify,deployments' WHERE id = 'tok_ci'")
        .await;
    let size = store.head().await.unwrap().size;
    let e = store
        .adopt_unlogged("mallory", "cleanup", false)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AdoptRefused(_)), "{e}");
    assert!(e.to_string().contains("audit-state-modified"), "{e}");
    // Nothing adopted, nothing logged: all three are still reported.
    assert_eq!(store.head().await.unwrap().size, size);
    let report = store.verify(None).await.unwrap();
    assert_eq!(report.failures.len(), 3, "{:#?}", report.failures);
    finish(db, store).await;
}

both!(
    each_edit_of_a_token_row_is_named,
    a_token_row_inserted_is_named,
    a_token_row_deleted_is_named,
    token_writes_log_their_state,
    idempotency_rows_are_not_state,
    adopt_logs_unlogged_rows_once,
    adopt_never_launders_an_edited_row,
);

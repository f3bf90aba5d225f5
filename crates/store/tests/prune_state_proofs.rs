//! Retention never deletes the proof of a stored row's state: `prune` keeps, for every change,
//! the world and every token, the latest record carrying its state, however old (its leaf and
//! the checkpoints over it are never deleted). After a prune the log verifies, and a row edited
//! afterwards is still named. Every prune is itself an audited event. SQLite and PostgreSQL.

mod common;

use changegate_audit::{AuditEvent, Code, kinds};
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, Status, WorldState};
use changegate_store::{EventFilter, NewTokenRow, ServerStore, Store, TokenKind};
use common::{Kind, TestDb};
use jiff::{SignedDuration, Timestamp};

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

/// Three changes written three times each, decisions about them, the world written twice, a
/// token issued and one revoked; then three years pass. Returns the prune cutoff (180 days after
/// all of it, well before the 2-year retention horizon).
async fn old_rows(kind: Kind) -> (TestDb, Store, Timestamp) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    for i in 0..3 {
        let id = format!("chg-{i}");
        let mut c = change(&id);
        s.create_change(
            &c,
            AuditEvent::new("change.created", "alice").change(&id),
            None,
        )
        .await
        .unwrap();
        c.status = Status::InReview;
        s.update_change(
            &id,
            1,
            &c,
            AuditEvent::new("change.state", "alice").change(&id),
        )
        .await
        .unwrap()
        .unwrap();
        c.change.title = format!("retitled {i}");
        s.update_change(
            &id,
            2,
            &c,
            AuditEvent::new("change.state", "alice").change(&id),
        )
        .await
        .unwrap()
        .unwrap();
        s.record(AuditEvent::new("gate.decision", "ci").change(&id))
            .await
            .unwrap();
    }
    let mut w = WorldState::default();
    w.teams.insert("db".into(), vec!["alice".into()]);
    s.update_world(0, &w, AuditEvent::new("team.updated", "admin"))
        .await
        .unwrap()
        .unwrap();
    w.teams.insert("sre".into(), vec!["sam".into()]);
    s.update_world(1, &w, AuditEvent::new("team.updated", "admin"))
        .await
        .unwrap()
        .unwrap();
    for id in ["tok_a", "tok_b"] {
        s.create_token(NewTokenRow {
            id,
            digest: "00",
            kind: TokenKind::Person,
            person: "alice",
            scopes: &[],
            expires_at: None,
            issued_by: "changegate",
        })
        .await
        .unwrap();
    }
    s.revoke_token("tok_b", "carol").await.unwrap();
    let t0 = Timestamp::from_microsecond(common::T0_US).unwrap();
    db.set_time(t0 + SignedDuration::from_hours(3 * 365 * 24));
    let before = t0 + SignedDuration::from_hours(180 * 24);
    (db, store, before)
}

fn seed_audit() -> changegate_policy::Audit {
    changegate_policy::load_default().policy.audit
}

async fn pruned(kind: Kind) -> (TestDb, Store) {
    let (db, store, before) = old_rows(kind).await;
    let r = store.verify(None).await.unwrap();
    assert!(r.ok(), "{:#?}", r.failures);
    let (size, records) = (r.size, r.records);
    let out = store.prune(before, &seed_audit(), "carol").await.unwrap();
    // Latest proofs kept: 3 changes (version 3 each), the world (version 2), 2 tokens.
    assert_eq!(out.kept, 6);
    // Deleted: 2 older versions per change, 3 decisions, the world's first write, the first
    // write of tok_b.
    assert_eq!(out.deleted, 6 + 3 + 1 + 1);
    assert_eq!(records, out.kept + out.deleted);
    let r = store.verify(None).await.unwrap();
    assert!(r.ok(), "after prune: {:#?}", r.failures);
    assert_eq!(r.size, size + 1);
    assert_eq!(r.pruned, out.deleted);
    assert_eq!(r.states, 6);
    (db, store)
}

async fn prune_keeps_the_proof_of_every_row(kind: Kind) {
    let (db, store) = pruned(kind).await;
    store.close().await;
    db.cleanup().await;
}

async fn a_row_edited_after_prune_is_still_named(kind: Kind) {
    for (sql, subject) in [
        (
            "UPDATE server_change SET state = replace(state, '\"approvals\":[]', '\"approvals\":[{\"person\":\"mallory\",\"role\":\"backend-lead\",\"head_commit\":\"x\",\"at\":\"2026-01-05T09:30:00Z\"}]') WHERE id = 'chg-1'",
            "change chg-1",
        ),
        (
            "UPDATE server_world SET state = replace(state, '\"sam\"', '\"mallory\"') WHERE id = 1",
            "world",
        ),
        (
            "UPDATE server_token SET revoked = FALSE WHERE id = 'tok_b'",
            "token tok_b",
        ),
    ] {
        let (db, store) = pruned(kind).await;
        db.exec(sql).await;
        let r = store.verify(None).await.unwrap();
        let got: Vec<_> = r
            .failures
            .iter()
            .map(|f| (f.code, f.subject.as_deref()))
            .collect();
        assert_eq!(got, [(Code::StateModified, Some(subject))], "{sql}");
        store.close().await;
        db.cleanup().await;
    }
}

async fn every_prune_is_an_audited_event(kind: Kind) {
    let (db, store) = pruned(kind).await;
    let events = store
        .events(&EventFilter {
            kind: Some(kinds::AUDIT_PRUNED.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0].record.event;
    assert_eq!(e.actor, "carol");
    assert_eq!(e.details["deleted"], 11);
    assert_eq!(e.details["kept_state_records"], 6);
    assert_eq!(e.details["policy_retention"], "2y");
    // A second prune (nothing left to delete) is logged too, and keeps the same proofs.
    let before = events[0].record.event.details["before"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let out = store.prune(before, &seed_audit(), "dave").await.unwrap();
    assert_eq!((out.deleted, out.kept), (0, 6));
    let n = store
        .events(&EventFilter {
            kind: Some(kinds::AUDIT_PRUNED.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(n, 2);
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

both!(
    prune_keeps_the_proof_of_every_row,
    a_row_edited_after_prune_is_still_named,
    every_prune_is_an_audited_event,
);

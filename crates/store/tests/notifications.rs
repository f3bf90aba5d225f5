//! The notification outbox on SQLite and PostgreSQL: rows queued by the routing function inside
//! the transaction of the audit event that causes them (a rolled-back write queues nothing), the
//! dedupe key unique, leases, backoff and the dead letter, and several workers claiming at once
//! never sharing a row (PostgreSQL: `FOR UPDATE SKIP LOCKED`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use changegate_audit::AuditEvent;
use changegate_store::{
    Finished, NewNotification, NotificationRouter, NotificationStatus, ServerStore, Store,
};
use common::{Kind, TestDb};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const LEASE: SignedDuration = SignedDuration::from_secs(60);

fn far() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

/// A router that queues one row per `test.*` event on channel `c`, keyed by the event's
/// `details.key` (so two events with the same key dedupe).
fn install(store: &Store) {
    let router: NotificationRouter = Arc::new(|e: &AuditEvent, _seq: u64, _at: Timestamp| {
        if !e.kind.starts_with("test.") {
            return Vec::new();
        }
        let key = e.details["key"].as_str().unwrap_or("k").to_string();
        vec![NewNotification {
            dedupe_key: format!("{key}/c"),
            channel: "c".into(),
            event: e.kind.clone(),
            subject: key,
            payload: json!({ "n": e.details["n"] }),
            due: None,
        }]
    });
    store.set_notification_router(Some(router));
}

fn ev(key: &str, n: i64) -> AuditEvent {
    AuditEvent::new("test.happened", "alice").details(json!({ "key": key, "n": n }))
}

async fn rows_commit_with_their_event_and_dedupe(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    install(&store);
    let s: &dyn ServerStore = &store;
    // Committed: one row, carrying the event's log position.
    let a = store.append(ev("x", 1)).await.unwrap();
    // Rolled back: the event and its row vanish together.
    let mut tx = store.begin().await.unwrap();
    tx.append_audit(ev("y", 2)).await.unwrap();
    tx.rollback().await.unwrap();
    // Same key again: no second row.
    store.append(ev("x", 3)).await.unwrap();
    // An event the router does not route: nothing.
    store
        .append(AuditEvent::new("other.kind", "alice"))
        .await
        .unwrap();
    let all = s.list_notifications(None, None, 100).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let n = &all[0];
    assert_eq!(
        (n.dedupe_key.as_str(), n.status, n.event_seq as u64),
        ("x/c", NotificationStatus::Pending, a.seq)
    );
    assert_eq!(n.payload["n"], 1, "the first event's row is kept");
    assert_eq!(n.payload["event_id"], a.id.as_str());

    // Lease, lose, retry with backoff, die, be retried by hand.
    let now = far();
    let got = s.claim_notifications("w1", now, LEASE, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attempts, 1);
    assert!(
        s.claim_notifications("w2", now, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let later = now.checked_add(SignedDuration::from_secs(5)).unwrap();
    assert!(
        s.fail_notification(n.id, "w1", "503", now, Some(later))
            .await
            .unwrap()
    );
    assert!(
        s.claim_notifications("w2", now, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its backoff"
    );
    let got = s.claim_notifications("w2", later, LEASE, 10).await.unwrap();
    assert_eq!((got.len(), got[0].attempts), (1, 2));
    // The old owner can no longer mark it.
    assert_eq!(
        s.finish_notification(
            n.id,
            "w1",
            NotificationStatus::Sent,
            &json!({}),
            later,
            None
        )
        .await
        .unwrap(),
        Finished::LeaseLost
    );
    assert!(
        s.fail_notification(n.id, "w2", "gone", later, None)
            .await
            .unwrap()
    );
    let dead = s
        .list_notifications(Some(NotificationStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("gone"));
    let size = store.head().await.unwrap().size;
    assert!(s.retry_notification(n.id, "admin", later).await.unwrap());
    assert!(
        !s.retry_notification(n.id, "admin", later).await.unwrap(),
        "only a dead one"
    );
    assert_eq!(
        store.head().await.unwrap().size,
        size + 1,
        "retry is audited"
    );
    let got = s.claim_notifications("w3", later, LEASE, 10).await.unwrap();
    assert_eq!(got[0].attempts, 1, "attempts start over");
    assert_eq!(
        s.finish_notification(
            n.id,
            "w3",
            NotificationStatus::Sent,
            &json!({"ts": "1"}),
            later,
            None
        )
        .await
        .unwrap(),
        Finished::Done
    );
    let sent = s
        .list_notifications(Some(NotificationStatus::Sent), Some("x"), 10)
        .await
        .unwrap();
    assert_eq!(sent[0].receipt, Some(json!({"ts": "1"})));
    store.close().await;
    db.cleanup().await;
}

async fn a_row_due_later_waits(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let due: Timestamp = "2029-06-01T00:00:00Z".parse().unwrap();
    let router: NotificationRouter = Arc::new(move |e: &AuditEvent, _: u64, _: Timestamp| {
        vec![NewNotification {
            dedupe_key: format!("{}/later/c", e.kind),
            channel: "c".into(),
            event: "reminder".into(),
            subject: String::new(),
            payload: json!({}),
            due: Some(due),
        }]
    });
    store.set_notification_router(Some(router));
    store.append(AuditEvent::new("a", "alice")).await.unwrap();
    let before = due.checked_sub(SignedDuration::from_secs(1)).unwrap();
    assert!(
        store
            .claim_notifications("w", before, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_notifications("w", due, LEASE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
    db.cleanup().await;
}

async fn concurrent_workers_never_share_a_notification(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    install(&store);
    let n = 120;
    for i in 0..n {
        store.append(ev(&format!("k{i}"), i)).await.unwrap();
    }
    let now = far();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let replica = db.open().await;
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut got = Vec::new();
            loop {
                let batch = replica
                    .claim_notifications(&owner, now, LEASE, 8)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for row in batch {
                    assert_eq!(
                        replica
                            .finish_notification(
                                row.id,
                                &owner,
                                NotificationStatus::Sent,
                                &json!({}),
                                now,
                                None
                            )
                            .await
                            .unwrap(),
                        Finished::Done
                    );
                    got.push(row.id);
                }
            }
            replica.close().await;
            got
        }));
    }
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for t in tasks {
        for id in t.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), n as usize, "every notification sent");
    assert!(seen.values().all(|&c| c == 1), "none twice");
    store.close().await;
    db.cleanup().await;
}

both!(
    rows_commit_with_their_event_and_dedupe,
    a_row_due_later_waits,
    concurrent_workers_never_share_a_notification
);

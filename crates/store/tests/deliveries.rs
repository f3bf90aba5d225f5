//! Webhook deliveries (`ServerStore::insert_delivery` … `retry_delivery`) on SQLite and
//! PostgreSQL: dedupe on (source, delivery id), several workers claiming at once never sharing a
//! row (PostgreSQL: `FOR UPDATE SKIP LOCKED`), one subject's deliveries in arrival order, leases
//! that expire, and the world write committed with `done` only while the lease is held.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use changegate_audit::AuditEvent;
use changegate_gate::WorldState;
use changegate_store::{
    Completion, DeliverySource, DeliveryStatus, NewDelivery, Received, ServerStore, WorldWrite,
};
use common::{Kind, TestDb};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn new<'a>(id: &'a str, subject: &'a str, now: Timestamp) -> NewDelivery<'a> {
    NewDelivery {
        source: DeliverySource::Pagerduty,
        delivery_id: id,
        subject,
        received_by: "integration:pagerduty",
        body: "{}",
        at: now,
    }
}

const LEASE: SignedDuration = SignedDuration::from_secs(60);

async fn dedupe_order_and_leases(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let s: &dyn ServerStore = &store;
    let now = at("2026-03-10T10:00:00Z");
    let Received::Stored { row: r1 } = s.insert_delivery(new("e1", "PD-1", now)).await.unwrap()
    else {
        panic!("first is stored")
    };
    assert_eq!(
        s.insert_delivery(new("e1", "PD-1", now)).await.unwrap(),
        Received::Duplicate {
            row: r1,
            status: DeliveryStatus::Pending
        }
    );
    // Another source may use the same id.
    let other = NewDelivery {
        source: DeliverySource::Alertmanager,
        ..new("e1", "AM-1", now)
    };
    assert!(matches!(
        s.insert_delivery(other).await.unwrap(),
        Received::Stored { .. }
    ));
    s.insert_delivery(new("e2", "PD-1", now)).await.unwrap();
    // e2 waits for e1 (same subject); the Alertmanager row is free.
    let a = s.claim_deliveries("a", now, LEASE, 10).await.unwrap();
    let ids: Vec<&str> = a.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["e1", "e1"]);
    assert_eq!(a[0].attempts, 1);
    // Leased: nobody else gets them until the lease expires.
    assert!(
        s.claim_deliveries("b", now, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now.checked_add(SignedDuration::from_secs(61)).unwrap();
    let b = s.claim_deliveries("b", later, LEASE, 10).await.unwrap();
    assert_eq!(b.len(), 2, "taken over after the lease");
    assert_eq!(b[0].attempts, 2);
    // The old owner's completion is refused and writes nothing, the world included.
    let world = WorldState::default();
    let write = |expected| WorldWrite {
        expected,
        world: &world,
        event: AuditEvent::new("incident.recorded", "integration:pagerduty"),
    };
    let size = s.audit_log().head().await.unwrap().size;
    let version = s.world().await.unwrap().version;
    assert_eq!(
        s.complete_delivery(r1, "a", &json!({}), later, Some(write(version)))
            .await
            .unwrap(),
        Completion::LeaseLost
    );
    assert_eq!(s.world().await.unwrap().version, version);
    assert_eq!(s.audit_log().head().await.unwrap().size, size);
    // A stale world version: nothing written either.
    assert_eq!(
        s.complete_delivery(r1, "b", &json!({}), later, Some(write(version + 7)))
            .await
            .unwrap(),
        Completion::WorldConflict
    );
    assert_eq!(
        s.complete_delivery(
            r1,
            "b",
            &json!({"result": "opened"}),
            later,
            Some(write(version))
        )
        .await
        .unwrap(),
        Completion::Done
    );
    assert_eq!(s.world().await.unwrap().version, version + 1);
    assert_eq!(s.audit_log().head().await.unwrap().size, size + 1);
    // Now e2 is free; a failure makes it due later, then failed.
    let c = s.claim_deliveries("c", later, LEASE, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].delivery_id, "e2");
    let retry_at = later.checked_add(SignedDuration::from_secs(5)).unwrap();
    assert!(
        s.fail_delivery(c[0].row, "c", "boom", later, Some(retry_at))
            .await
            .unwrap()
    );
    assert!(
        s.claim_deliveries("c", later, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "not yet due"
    );
    let d = s.claim_deliveries("c", retry_at, LEASE, 10).await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(
        s.fail_delivery(d[0].row, "c", "boom again", retry_at, None)
            .await
            .unwrap()
    );
    let failed = s
        .list_deliveries(Some(DeliveryStatus::Failed), None, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].attempts, failed[0].last_error.as_deref()),
        (2, Some("boom again"))
    );
    assert!(
        s.retry_delivery(failed[0].row, "root", retry_at)
            .await
            .unwrap()
    );
    assert!(
        !s.retry_delivery(failed[0].row, "root", retry_at)
            .await
            .unwrap()
    );
    let done = s
        .list_deliveries(
            Some(DeliveryStatus::Done),
            Some(DeliverySource::Pagerduty),
            10,
        )
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, Some(json!({"result": "opened"})));
    store.close().await;
    db.cleanup().await;
}

/// Four workers (each its own store, as replicas would be) claim 200 deliveries at once: every
/// delivery is claimed by exactly one of them.
async fn concurrent_workers_never_share_a_delivery(kind: Kind) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    let now = at("2026-03-10T10:00:00Z");
    let n = 200;
    for i in 0..n {
        let id = format!("e{i}");
        let subject = format!("PD-{i}");
        store
            .insert_delivery(new(&id, &subject, now))
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let replica = db.open().await;
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut got = Vec::new();
            loop {
                let batch = replica
                    .claim_deliveries(&owner, now, LEASE, 8)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for d in batch {
                    let done = replica
                        .complete_delivery(d.row, &owner, &json!({}), now, None)
                        .await
                        .unwrap();
                    assert_eq!(done, Completion::Done);
                    got.push(d.row);
                }
            }
            replica.close().await;
            got
        }));
    }
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut per_worker = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        per_worker.push(got.len());
        for row in got {
            *seen.entry(row).or_default() += 1;
        }
    }
    eprintln!(
        "{kind:?}: {n} deliveries claimed and completed by 4 workers in {:?} ({per_worker:?})",
        started.elapsed()
    );
    assert_eq!(seen.len(), n, "every delivery processed");
    assert!(seen.values().all(|&c| c == 1), "none twice");
    store.close().await;
    db.cleanup().await;
}

/// A burst of concurrent inserts (SQLite: group-committed in batches, ADR 0032), with every
/// delivery sent twice at once: each stored exactly once, in its own row, and the twin told it
/// is a duplicate of that row; nothing lost.
async fn a_burst_of_concurrent_inserts_stores_each_once(kind: Kind) {
    let db = TestDb::new(kind);
    let store = std::sync::Arc::new(db.open().await);
    let now = at("2026-03-10T10:00:00Z");
    let n = 200;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        for _twin in 0..2 {
            let store = store.clone();
            tasks.spawn(async move {
                let id = format!("burst-{i}");
                let subject = format!("PD-{}", i % 7);
                let s: &dyn ServerStore = &*store;
                (
                    id.clone(),
                    s.insert_delivery(new(&id, &subject, now)).await.unwrap(),
                )
            });
        }
    }
    let mut by_id: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (id, received) = r.unwrap();
        by_id.entry(id).or_default().push(received);
    }
    assert_eq!(by_id.len(), n);
    let mut rows = std::collections::BTreeSet::new();
    for (id, answers) in &by_id {
        let stored: Vec<i64> = answers
            .iter()
            .filter_map(|a| match a {
                Received::Stored { row } => Some(*row),
                Received::Duplicate { .. } => None,
            })
            .collect();
        assert_eq!(stored.len(), 1, "{id}: stored once: {answers:?}");
        assert!(
            answers.iter().any(|a| *a
                == Received::Duplicate {
                    row: stored[0],
                    status: DeliveryStatus::Pending
                }),
            "{id}: its twin is a duplicate of the same row: {answers:?}"
        );
        assert!(rows.insert(stored[0]), "{id}: a row of its own");
    }
    let s: &dyn ServerStore = &*store;
    let mut claimed = 0;
    loop {
        let c = s.claim_deliveries("w", now, LEASE, 500).await.unwrap();
        if c.is_empty() {
            break;
        }
        for d in &c {
            assert!(s.fail_delivery(d.row, "w", "x", now, None).await.unwrap());
        }
        claimed += c.len();
    }
    assert_eq!(claimed, n, "every delivery is in the queue");
    db.cleanup().await;
}

both!(
    dedupe_order_and_leases,
    concurrent_workers_never_share_a_delivery,
    a_burst_of_concurrent_inserts_stores_each_once
);

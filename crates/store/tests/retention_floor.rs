//! Issue 13: "a policy with `[audit] retention = "60s"` validates, and `audit prune` then deletes
//! records three minutes old; `audit verify` still says ok". The policy no longer validates
//! (crates/policy/tests/loading.rs); here the store itself refuses such a prune when called
//! directly, on SQLite and PostgreSQL, changing nothing — and every prune it does run is an
//! audited event naming what, who and under which retention.

mod common;

use changegate_audit::{AuditEvent, kinds};
use changegate_policy::{Audit, RetentionAcknowledgement};
use changegate_store::{EventFilter, Store, StoreError};
use common::{Kind, TestDb};
use jiff::Timestamp;

fn audit(retention: &str, ack: Option<&str>) -> Audit {
    let mut a = changegate_policy::load_default().policy.audit;
    a.retention = retention.parse().unwrap();
    a.retention_below_minimum_acknowledged = ack.map(|r| RetentionAcknowledgement {
        retention: r.parse().unwrap(),
        by: "carol".into(),
        reason: "throw-away staging log".into(),
        date: "2026-01-02".parse().unwrap(),
    });
    a
}

/// Size, records and pruned count of the log, and whether it verifies.
async fn snapshot(store: &Store) -> (u64, u64, u64, bool) {
    let r = store.verify(None).await.unwrap();
    (r.size, r.records, r.pruned, r.ok())
}

/// Ten records, then three minutes pass.
async fn setup(kind: Kind) -> (TestDb, Store, Timestamp) {
    let db = TestDb::new(kind);
    let store = db.open().await;
    for i in 0..10 {
        store
            .append(AuditEvent::new(kinds::APPROVAL_GRANTED, format!("user{i}")))
            .await
            .unwrap();
    }
    let now = Timestamp::from_microsecond(common::T0_US + 180 * 1_000_000).unwrap();
    db.set_time(now);
    (db, store, now)
}

async fn a_sixty_second_retention_prunes_nothing(kind: Kind) {
    let (db, store, now) = setup(kind).await;
    let before = snapshot(&store).await;
    assert_eq!(before, (10, 10, 0, true));
    let two_minutes_ago = now - jiff::SignedDuration::from_secs(120);
    for a in [
        audit("60s", None),
        // An acknowledgement of another period does not cover this one.
        audit("60s", Some("1y")),
    ] {
        let err = store
            .prune(two_minutes_ago, &a, "mallory")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::RetentionBelowMinimum { .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("audit-retention-below-minimum"),
            "{err}"
        );
    }
    // With the seed's two years, a three-minute-old cutoff is refused too.
    let err = store
        .prune(two_minutes_ago, &audit("2y", None), "mallory")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("audit-retention-refused"),
        "{err}"
    );
    // Nothing was deleted and nothing was logged.
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(
        store.events(&EventFilter::default()).await.unwrap().len(),
        10
    );
    store.close().await;
    db.cleanup().await;
}

async fn an_acknowledged_short_retention_prunes_and_is_audited(kind: Kind) {
    let (db, store, now) = setup(kind).await;
    let two_minutes_ago = now - jiff::SignedDuration::from_secs(120);
    let out = store
        .prune(two_minutes_ago, &audit("60s", Some("60s")), "carol")
        .await
        .unwrap();
    assert_eq!(out.deleted, 10);
    assert_eq!(snapshot(&store).await, (11, 1, 10, true));
    let pruned = store
        .events(&EventFilter {
            kind: Some(kinds::AUDIT_PRUNED.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pruned.len(), 1);
    let ev = &pruned[0].record.event;
    assert_eq!(ev.actor, "carol");
    assert_eq!(pruned[0].record.id, out.event_id);
    let d = &ev.details;
    assert_eq!(d["deleted"], 10);
    assert_eq!(
        (d["first_seq"].as_u64(), d["last_seq"].as_u64()),
        (Some(0), Some(9))
    );
    assert_eq!(d["policy_retention"], "60s");
    assert_eq!(d["minimum_retention"], "2y");
    assert_eq!(d["below_minimum_acknowledged"]["by"], "carol");
    assert_eq!(
        d["below_minimum_acknowledged"]["reason"],
        "throw-away staging log"
    );
    store.close().await;
    db.cleanup().await;
}

async fn a_prune_under_the_floor_is_audited_too(kind: Kind) {
    let (db, store, _) = setup(kind).await;
    let later: Timestamp = "2029-01-10T00:00:00Z".parse().unwrap();
    db.set_time(later);
    let cutoff: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    let out = store
        .prune(cutoff, &audit("3y", None), "ops")
        .await
        .unwrap_err();
    assert!(
        out.to_string().starts_with("audit-retention-refused"),
        "{out}"
    );
    let out = store
        .prune(cutoff, &audit("2y", None), "ops")
        .await
        .unwrap();
    assert_eq!(out.deleted, 10);
    let ev = store
        .events(&EventFilter {
            kind: Some(kinds::AUDIT_PRUNED.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let d = &ev[0].record.event.details;
    assert_eq!(
        (ev[0].record.event.actor.as_str(), d["retention"].as_str()),
        ("ops", Some("P2Y"))
    );
    assert!(d["below_minimum_acknowledged"].is_null());
    assert_eq!(snapshot(&store).await, (11, 1, 10, true));
    store.close().await;
    db.cleanup().await;
}

both!(
    a_sixty_second_retention_prunes_nothing,
    an_acknowledged_short_retention_prunes_and_is_audited,
    a_prune_under_the_floor_is_audited_too,
);

//! Server-run rollouts in the store (`server_rollout`), on SQLite and PostgreSQL: the lease that
//! lets one replica act, writes conditioned on version and lease, one active rollout per change,
//! and every write in one transaction with its audit event (and the change's compare-and-swap).

mod common;

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, Status};
use changegate_store::{NewRollout, RolloutSaved, RolloutStart, RolloutWrite, ServerStore, Store};
use common::{Kind, TestDb};

fn change(id: &str) -> ChangeState {
    let mut s = ChangeState::new(ChangeRequest {
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
    });
    s.status = Status::Approved;
    s
}

fn new<'a>(id: &'a str, change: &'a str) -> NewRollout<'a> {
    NewRollout {
        id,
        change_id: change,
        plan: "standard",
        category: 2,
        phase: "running",
        state: "{}",
        due_at: 100,
        started_by: "alice",
    }
}

async fn size(s: &dyn ServerStore) -> u64 {
    s.audit_log().head().await.unwrap().size
}

async fn lease_and_conditioned_writes(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    let c = change("CR-1");
    let v1 = s
        .create_change(
            &c,
            AuditEvent::new("change.created", "alice").change("CR-1"),
            None,
        )
        .await
        .unwrap();
    let mut deploying = c.clone();
    deploying.status = Status::Deploying;

    // Start: change CAS + rollout row + event in one transaction; a stale version writes nothing.
    let before = size(s).await;
    let stale = s
        .start_rollout(
            new("R1", "CR-1"),
            v1.version + 5,
            &deploying,
            AuditEvent::new("deployment.start", "alice").change("CR-1"),
        )
        .await
        .unwrap();
    assert_eq!(stale, RolloutStart::ChangeMoved);
    assert!(s.rollout("R1").await.unwrap().is_none());
    assert_eq!(size(s).await, before, "nothing written");
    let RolloutStart::Started(row) = s
        .start_rollout(
            new("R1", "CR-1"),
            v1.version,
            &deploying,
            AuditEvent::new("deployment.start", "alice").change("CR-1"),
        )
        .await
        .unwrap()
    else {
        panic!("started");
    };
    assert_eq!(
        (row.version, row.active, row.lease_owner.clone()),
        (1, true, None)
    );
    assert_eq!(
        s.change("CR-1").await.unwrap().unwrap().value.status,
        Status::Deploying
    );
    assert_eq!(size(s).await, before + 1);
    // One active rollout per change.
    let v2 = s.change("CR-1").await.unwrap().unwrap().version;
    assert_eq!(
        s.start_rollout(
            new("R2", "CR-1"),
            v2,
            &deploying,
            AuditEvent::new("deployment.start", "alice").change("CR-1")
        )
        .await
        .unwrap(),
        RolloutStart::AlreadyActive
    );
    assert_eq!(
        s.change("CR-1").await.unwrap().unwrap().version,
        v2,
        "the change is untouched"
    );

    // Due; the lease goes to one replica until it expires.
    assert_eq!(
        s.due_rollouts(99, "a", 10).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(s.due_rollouts(100, "a", 10).await.unwrap(), ["R1"]);
    assert!(s.lease_rollout("R1", "a", 100, 1_000).await.unwrap());
    assert!(
        !s.lease_rollout("R1", "b", 500, 1_500).await.unwrap(),
        "held by a"
    );
    assert!(
        s.due_rollouts(500, "b", 10).await.unwrap().is_empty(),
        "not due for b while a holds it"
    );
    assert_eq!(
        s.due_rollouts(500, "a", 10).await.unwrap(),
        ["R1"],
        "still a's"
    );
    assert!(
        s.lease_rollout("R1", "a", 500, 1_500).await.unwrap(),
        "a renews"
    );

    // Writes: only the lease holder, only at the version read.
    let write = |owner: &'static str, v: i64| RolloutWrite {
        id: "R1",
        expected_version: v,
        owner,
        phase: "running",
        step: Some(0),
        active: true,
        state: "{\"step\":0}",
        due_at: 2_000,
    };
    let ev = || AuditEvent::new("deployment.step", "x").change("CR-1");
    let n = size(s).await;
    assert_eq!(
        s.save_rollout(write("b", 1), Some(ev()), None)
            .await
            .unwrap(),
        RolloutSaved::LeaseLost
    );
    assert_eq!(
        s.save_rollout(write("a", 7), Some(ev()), None)
            .await
            .unwrap(),
        RolloutSaved::LeaseLost
    );
    assert_eq!(size(s).await, n, "lost writes append nothing");
    assert_eq!(
        s.save_rollout(write("a", 1), Some(ev()), None)
            .await
            .unwrap(),
        RolloutSaved::Saved(2)
    );
    assert_eq!(size(s).await, n + 1);
    // With the change: a stale change version rolls the rollout write back too.
    let mut deployed = deploying.clone();
    deployed.status = Status::Deployed;
    let vc = s.change("CR-1").await.unwrap().unwrap().version;
    assert_eq!(
        s.save_rollout(write("a", 2), Some(ev()), Some(("CR-1", vc - 1, &deployed)))
            .await
            .unwrap(),
        RolloutSaved::ChangeMoved
    );
    assert_eq!(
        s.rollout("R1").await.unwrap().unwrap().version,
        2,
        "rolled back"
    );
    let mut done = write("a", 2);
    done.active = false;
    done.phase = "completed";
    assert_eq!(
        s.save_rollout(done, Some(ev()), Some(("CR-1", vc, &deployed)))
            .await
            .unwrap(),
        RolloutSaved::Saved(3)
    );
    assert_eq!(
        s.change("CR-1").await.unwrap().unwrap().value.status,
        Status::Deployed
    );
    // Expired lease: another replica takes an active rollout; an inactive one is never due.
    assert!(s.due_rollouts(10_000, "b", 10).await.unwrap().is_empty());
    assert!(
        !s.lease_rollout("R1", "b", 10_000, 11_000).await.unwrap(),
        "finished"
    );
    let rows = s.change_rollouts("CR-1").await.unwrap();
    assert_eq!(
        (rows.len(), rows[0].phase.as_str(), rows[0].active),
        (1, "completed", false)
    );
    store.close().await;
    db.cleanup().await;
}

async fn an_expired_lease_passes_to_another_replica(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    let c = change("CR-2");
    let v = s
        .create_change(
            &c,
            AuditEvent::new("change.created", "alice").change("CR-2"),
            None,
        )
        .await
        .unwrap();
    let mut d = c.clone();
    d.status = Status::Deploying;
    s.start_rollout(
        new("R", "CR-2"),
        v.version,
        &d,
        AuditEvent::new("deployment.start", "alice").change("CR-2"),
    )
    .await
    .unwrap();
    assert!(s.lease_rollout("R", "a", 100, 200).await.unwrap());
    assert!(!s.lease_rollout("R", "b", 199, 300).await.unwrap());
    assert!(
        s.lease_rollout("R", "b", 201, 300).await.unwrap(),
        "expired: b takes it"
    );
    let w = RolloutWrite {
        id: "R",
        expected_version: 1,
        owner: "a",
        phase: "running",
        step: None,
        active: true,
        state: "{}",
        due_at: 0,
    };
    assert_eq!(
        s.save_rollout(w, None, None).await.unwrap(),
        RolloutSaved::LeaseLost,
        "a lost it"
    );
    s.release_rollout("R", "b").await.unwrap();
    assert!(
        s.lease_rollout("R", "a", 202, 300).await.unwrap(),
        "released: free at once"
    );
    store.close().await;
    db.cleanup().await;
}

both!(
    lease_and_conditioned_writes,
    an_expired_lease_passes_to_another_replica
);

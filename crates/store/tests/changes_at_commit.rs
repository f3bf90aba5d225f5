//! `ServerStore::changes_at_commit` on SQLite and PostgreSQL: the changes whose head (or merge
//! commit) is a SHA, found through the indexes of migration 400 — never by reading every change
//! — and following the document as it changes (a new head, a merge).

mod common;

use std::str::FromStr;

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, PullRequestRecord};
use changegate_store::{Backend, ServerStore, Store, changes_at_commit_sql};
use common::{Kind, TestDb, pg_url};
use sqlx::Row;

fn change(id: &str, head: &str) -> ChangeState {
    let mut s = ChangeState::new(ChangeRequest {
        id: id.into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: id.into(),
        base_commit: "a".repeat(40),
        head_commit: head.into(),
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
    s.pull_request = Some(PullRequestRecord {
        repository: "acme/chat".into(),
        number: 1,
        installation_id: None,
        base_ref: "main".into(),
        head_ref: "feature".into(),
        merge_commit: None,
        merged_at: None,
        merged_by: None,
    });
    s
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

async fn ids(s: &dyn ServerStore, at: &str, merged: bool) -> Vec<String> {
    s.changes_at_commit(at, merged)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.value.change.id)
        .collect()
}

/// The query plan of the lookup: what the database says it reads.
async fn plan(db: &TestDb, backend: Backend, merged: bool) -> String {
    let sql = changes_at_commit_sql(backend, merged).replace("$1", &format!("'{}'", sha('b')));
    match db.kind {
        Kind::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db.dir.path().join("changegate.db"));
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows.iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Kind::Postgres => {
            let opts = sqlx::postgres::PgConnectOptions::from_str(&pg_url())
                .unwrap()
                .options([("search_path", db.schema.as_str())]);
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .unwrap();
            let mut c = pool.acquire().await.unwrap();
            // A handful of rows: the planner would rightly read the table; forbid that to see
            // whether the indexes serve the query at all.
            sqlx::raw_sql("SET enable_seqscan = off")
                .execute(&mut *c)
                .await
                .unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                .fetch_all(&mut *c)
                .await
                .unwrap();
            drop(c);
            pool.close().await;
            rows.iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

async fn changes_are_found_by_commit_through_an_index(kind: Kind) {
    let db = TestDb::new(kind);
    let store: Store = db.open().await;
    let s: &dyn ServerStore = &store;
    for (id, head) in [("c1", sha('b')), ("c2", sha('b')), ("c3", sha('c'))] {
        s.create_change(
            &change(id, &head),
            AuditEvent::new("change.created", "alice").change(id),
            None,
        )
        .await
        .unwrap();
    }
    let mut both = ids(s, &sha('b'), false).await;
    both.sort();
    assert_eq!(both, ["c1", "c2"]);
    assert_eq!(ids(s, &sha('c'), true).await, ["c3"]);
    assert!(ids(s, &sha('d'), true).await.is_empty());

    // c3 merged as d…d: found by its merge commit only when asked for merges.
    let cur = s.change("c3").await.unwrap().unwrap();
    let mut next = cur.value.clone();
    next.pull_request.as_mut().unwrap().merge_commit = Some(sha('d'));
    s.update_change(
        "c3",
        cur.version,
        &next,
        AuditEvent::new("change.merged", "integration:github").change("c3"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ids(s, &sha('d'), true).await, ["c3"]);
    assert!(ids(s, &sha('d'), false).await.is_empty());
    // A new head of c1: the lookup follows the document.
    let cur = s.change("c1").await.unwrap().unwrap();
    let mut next = cur.value.clone();
    next.change.head_commit = sha('e');
    s.update_change(
        "c1",
        cur.version,
        &next,
        AuditEvent::new("change.classified", "integration:github").change("c1"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ids(s, &sha('b'), true).await, ["c2"]);
    assert_eq!(ids(s, &sha('e'), false).await, ["c1"]);

    // The database reads the indexes, not every change.
    let backend = s.backend();
    for merged in [false, true] {
        let p = plan(&db, backend, merged).await;
        assert!(p.contains("server_change_head_commit"), "{p}");
        assert_eq!(p.contains("server_change_merge_commit"), merged, "{p}");
        match kind {
            Kind::Sqlite => assert!(!p.contains("SCAN server_change"), "{p}"),
            Kind::Postgres => assert!(!p.contains("Seq Scan"), "{p}"),
        }
    }
    drop(store);
    db.cleanup().await;
}

both!(changes_are_found_by_commit_through_an_index);

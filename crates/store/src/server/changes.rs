//! Change documents: one JSON document per change (the gate's `ChangeState`) with a version;
//! every write is a compare-and-swap on (id, version) in the transaction of its audit event.

use changegate_audit::{AuditEvent, StateRef, StateTable};
use changegate_gate::ChangeState;
use sqlx::Row;

use super::{
    ChangeAndWorld, ChangeSummary, Versioned, append_with_state, finish_cas, parse_doc, to_doc,
};
use crate::error::is_unique_violation;
use crate::{Result, Store, StoreError, on_conn, on_pool};

impl Store {
    pub(crate) async fn select_change(&self, id: &str) -> Result<Option<Versioned<ChangeState>>> {
        let row: Option<(String, i64)> = on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT state, version FROM server_change WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                None => None,
            }
        });
        row.map(|(state, version)| {
            Ok(Versioned {
                value: parse_doc("change", &state)?,
                version,
            })
        })
        .transpose()
    }

    pub(crate) async fn select_change_and_world(&self, id: &str) -> Result<Option<ChangeAndWorld>> {
        let row: Option<(String, i64, String)> = on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT c.state, c.version, w.state FROM server_change c, server_world w WHERE c.id = $1 AND w.id = 1")
                .bind(id).fetch_optional(p).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
                None => None,
            }
        });
        row.map(|(state, version, world)| {
            Ok((
                Versioned {
                    value: parse_doc("change", &state)?,
                    version,
                },
                parse_doc("world", &world)?,
            ))
        })
        .transpose()
    }

    pub(crate) async fn select_idempotent(
        &self,
        person: &str,
        key: &str,
    ) -> Result<Option<String>> {
        Ok(on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT change_id FROM server_idempotency WHERE person = $1 AND key = $2").bind(person).bind(key).fetch_optional(p).await? {
                Some(r) => Some(r.try_get::<String, _>(0)?),
                None => None,
            }
        }))
    }

    pub(crate) async fn insert_change(
        &self,
        state: &ChangeState,
        event: AuditEvent,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Versioned<ChangeState>> {
        let doc = to_doc("change", state)?;
        let now = self.now().to_string();
        let c = &state.change;
        let mut tx = self.begin().await?;
        if let Some((person, key)) = idempotency {
            let inserted = on_conn!(tx.conn(), conn => {
                sqlx::query("INSERT INTO server_idempotency (person, key, change_id) VALUES ($1, $2, $3) ON CONFLICT (person, key) DO NOTHING")
                    .bind(person).bind(key).bind(&c.id).execute(&mut *conn).await?.rows_affected()
            });
            if inserted == 0 {
                // A concurrent duplicate won: return what it created.
                tx.rollback().await?;
                let id = self
                    .select_idempotent(person, key)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("idempotency row vanished".into()))?;
                return self.select_change(&id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "idempotency key names change {id}, which does not exist"
                    ))
                });
            }
        }
        // The id's unique key decides a race of creates with the same id: the loser is told
        // `ChangeExists` (a 409 for the API), never a database error.
        let inserted = on_conn!(tx.conn(), conn => {
            match sqlx::query("INSERT INTO server_change (id, version, status, category, title, state, created_at, updated_at) VALUES ($1, 1, $2, $3, $4, $5, $6, $7)")
                .bind(&c.id).bind(state.status.as_str()).bind(i64::from(c.classification.category)).bind(&c.title).bind(&doc).bind(&now).bind(&now)
                .execute(&mut *conn).await {
                Ok(_) => true,
                Err(e) if is_unique_violation(&e) => false,
                Err(e) => return Err(e.into()),
            }
        });
        if !inserted {
            tx.rollback().await?;
            return Err(StoreError::ChangeExists(c.id.clone()));
        }
        let stored = StateRef::of(StateTable::Change, &c.id, 1, doc.as_bytes());
        append_with_state(&mut tx, event, stored).await?;
        tx.commit().await?;
        Ok(Versioned {
            value: state.clone(),
            version: 1,
        })
    }

    pub(crate) async fn cas_change(
        &self,
        id: &str,
        expected: i64,
        state: &ChangeState,
        event: AuditEvent,
    ) -> Result<Option<Versioned<ChangeState>>> {
        let doc = to_doc("change", state)?;
        let now = self.now().to_string();
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_change SET version = $1, status = $2, category = $3, title = $4, state = $5, updated_at = $6 WHERE id = $7 AND version = $8")
                .bind(expected + 1).bind(state.status.as_str()).bind(i64::from(state.change.classification.category))
                .bind(&state.change.title).bind(&doc).bind(&now).bind(id).bind(expected)
                .execute(&mut *c).await?.rows_affected()
        });
        let stored = StateRef::of(StateTable::Change, id, expected + 1, doc.as_bytes());
        finish_cas(tx, n, event, stored, state, expected + 1).await
    }

    /// The changes at commit `sha`: its head, or with `merged` its pull request's merge commit.
    /// The `WHERE` expressions are exactly those migration 400 indexes. Newest first.
    pub(crate) async fn select_changes_at_commit(
        &self,
        sha: &str,
        merged: bool,
    ) -> Result<Vec<Versioned<ChangeState>>> {
        let sql = changes_at_commit_sql(self.backend(), merged);
        let rows: Vec<(String, i64)> = on_pool!(&self.inner.db, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sha).fetch_all(p).await?
                .iter().map(|r| Ok((r.try_get(1)?, r.try_get(2)?))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter()
            .map(|(state, version)| {
                Ok(Versioned {
                    value: parse_doc("change", &state)?,
                    version,
                })
            })
            .collect()
    }

    /// Several change writes in one transaction: each a compare-and-swap with its audit event;
    /// all or none (false, nothing written, when any change moved on).
    pub(crate) async fn cas_changes(&self, writes: Vec<super::ChangeWrite<'_>>) -> Result<bool> {
        let now = self.now().to_string();
        let mut tx = self.begin().await?;
        for w in writes {
            let doc = to_doc("change", w.state)?;
            let n = on_conn!(tx.conn(), c => {
                sqlx::query("UPDATE server_change SET version = $1, status = $2, category = $3, title = $4, state = $5, updated_at = $6 WHERE id = $7 AND version = $8")
                    .bind(w.expected + 1).bind(w.state.status.as_str()).bind(i64::from(w.state.change.classification.category))
                    .bind(&w.state.change.title).bind(&doc).bind(&now).bind(w.id).bind(w.expected)
                    .execute(&mut *c).await?.rows_affected()
            });
            if n != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let stored = StateRef::of(StateTable::Change, w.id, w.expected + 1, doc.as_bytes());
            append_with_state(&mut tx, w.event, stored).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn select_changes(&self) -> Result<Vec<ChangeSummary>> {
        Ok(on_pool!(&self.inner.db, p => {
            let rows = sqlx::query("SELECT id, title, status, category, version, updated_at FROM server_change ORDER BY created_at DESC, id").fetch_all(p).await?;
            rows.iter().map(|r| Ok(ChangeSummary {
                id: r.try_get(0)?, title: r.try_get(1)?, status: r.try_get(2)?, category: r.try_get(3)?, version: r.try_get(4)?, updated_at: r.try_get(5)?,
            })).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }
}

/// The lookup of [`Store::select_changes_at_commit`] (public for the test that checks it uses the
/// indexes): one indexed query for the head, `UNION` one for the merge commit;
/// newest change first.
pub fn changes_at_commit_sql(backend: crate::Backend, merged: bool) -> String {
    let (head, merge) = match backend {
        crate::Backend::Sqlite => (
            "json_extract(state, '$.change.head_commit')",
            "json_extract(state, '$.pull_request.merge_commit')",
        ),
        crate::Backend::Postgres => (
            "((state::jsonb) #>> '{change,head_commit}')",
            "((state::jsonb) #>> '{pull_request,merge_commit}')",
        ),
    };
    let cols = "SELECT id, state, version, created_at FROM server_change";
    let mut sql = format!("{cols} WHERE {head} = $1");
    if merged {
        sql.push_str(&format!(" UNION {cols} WHERE {merge} = $1"));
    }
    sql.push_str(" ORDER BY created_at DESC, id");
    sql
}

//! `audit adopt`: log the state of stored rows that no event recorded (rows written before
//! state proofs existed: changes and world before issue 13's state references, tokens before
//! migration 120), as one explicit, audited operator act.
//!
//! Only rows `audit verify` reports as `audit-state-unlogged` are adopted, and only when that is
//! the log's only failure: a row whose logged state differs (`audit-state-modified`) or a log
//! that fails any other check is never adopted, since that would launder tampering. Each adopted
//! row gets its own `audit.adopted` event carrying its state as found, who adopted it and why.

use changegate_audit::{AuditEvent, Code, StateRef, StateTable, WORLD_ID, kinds, parse_subject};
use serde::Serialize;
use sqlx::Row;

use crate::{Result, Store, StoreError, on_conn};

/// One row adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adopted {
    /// Its table.
    pub table: StateTable,
    /// Its id (change id, `world`, token id).
    pub id: String,
    /// Its version as found.
    pub version: i64,
    /// The `audit.adopted` event that now proves it.
    pub event_id: String,
}

impl Store {
    /// Log the state of every row no event recorded (see the module doc). `actor` and `reason`
    /// go into each event; `dry_run` lists what would be adopted and writes nothing.
    pub async fn adopt_unlogged(
        &self,
        actor: &str,
        reason: &str,
        dry_run: bool,
    ) -> Result<Vec<Adopted>> {
        if reason.trim().is_empty() || actor.trim().is_empty() {
            return Err(StoreError::AdoptRefused(
                "give who adopts (--actor) and why (--reason): the adoption is audited".into(),
            ));
        }
        let report = self.verify(None).await?;
        let mut rows = Vec::new();
        let mut other = Vec::new();
        for f in &report.failures {
            match (f.code, f.subject.as_deref().and_then(parse_subject)) {
                (Code::StateUnlogged, Some(key)) => rows.push(key),
                _ => other.push(format!("{}: {}", f.code, f.message)),
            }
        }
        if !other.is_empty() {
            return Err(StoreError::AdoptRefused(format!(
                "the log fails {} check(s) besides unlogged rows (first: {}); adopting would hide them, nothing was adopted",
                other.len(),
                other[0]
            )));
        }
        if dry_run || rows.is_empty() {
            return Ok(rows
                .into_iter()
                .map(|(table, id)| Adopted {
                    table,
                    id,
                    version: 0,
                    event_id: String::new(),
                })
                .collect());
        }
        let mut tx = self.begin().await?;
        let mut out = Vec::new();
        for (table, id) in rows {
            let stored = match table {
                StateTable::Token => crate::server::token_state(&mut tx, &id).await?,
                StateTable::Change => {
                    let (version, doc): (i64, String) = on_conn!(tx.conn(), c => {
                        let r = sqlx::query("SELECT version, state FROM server_change WHERE id = $1").bind(&id).fetch_one(&mut *c).await?;
                        (r.try_get(0)?, r.try_get(1)?)
                    });
                    StateRef::of(table, &id, version, doc.as_bytes())
                }
                StateTable::World => {
                    let (version, doc): (i64, String) = on_conn!(tx.conn(), c => {
                        let r = sqlx::query("SELECT version, state FROM server_world WHERE id = 1").fetch_one(&mut *c).await?;
                        (r.try_get(0)?, r.try_get(1)?)
                    });
                    StateRef::of(table, WORLD_ID, version, doc.as_bytes())
                }
            };
            let mut ev = AuditEvent::new(kinds::AUDIT_ADOPTED, actor).details(serde_json::json!({
                "table": table,
                "id": id,
                "version": stored.version,
                "reason": reason,
            }));
            if table == StateTable::Change {
                ev = ev.change(&id);
            }
            // Internal event: not subject to the policy's field list; the store sets `state`.
            ev.validate(None)?;
            ev.state = Some(stored.clone());
            let a = tx.append_inner(ev, None).await?;
            out.push(Adopted {
                table,
                id,
                version: stored.version,
                event_id: a.id,
            });
        }
        tx.commit().await?;
        Ok(out)
    }
}

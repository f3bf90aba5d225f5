//! The shared world document: one versioned row.

use changegate_audit::{AuditEvent, StateRef, StateTable, WORLD_ID};
use changegate_gate::WorldState;
use sqlx::Row;

use super::{Versioned, finish_cas, parse_doc, to_doc};
use crate::{Result, Store, on_conn, on_pool};

impl Store {
    pub(crate) async fn select_world(&self) -> Result<Versioned<WorldState>> {
        let (state, version): (String, i64) = on_pool!(&self.inner.db, p => {
            let r = sqlx::query("SELECT state, version FROM server_world WHERE id = 1").fetch_one(p).await?;
            (r.try_get(0)?, r.try_get(1)?)
        });
        Ok(Versioned {
            value: parse_doc("world", &state)?,
            version,
        })
    }

    pub(crate) async fn cas_world(
        &self,
        expected: i64,
        world: &WorldState,
        event: AuditEvent,
    ) -> Result<Option<Versioned<WorldState>>> {
        let doc = to_doc("world", world)?;
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_world SET version = $1, state = $2 WHERE id = 1 AND version = $3")
                .bind(expected + 1).bind(&doc).bind(expected)
                .execute(&mut *c).await?.rows_affected()
        });
        let stored = StateRef::of(StateTable::World, WORLD_ID, expected + 1, doc.as_bytes());
        finish_cas(tx, n, event, stored, world, expected + 1).await
    }
}

//! `audit verify`: recompute the whole log and check it against every stored checkpoint.
//!
//! A SQLite file is read by [`scan`] (rusqlite on its own connections and threads, see
//! docs/adr/0011-audit-verify-scan.md); PostgreSQL and in-memory SQLite through sqlx, here. Both
//! feed the same [`Verifier`](changegate_audit::Verifier) through [`common`].

mod adopt;
mod common;
pub use adopt::Adopted;
pub(crate) use common::{KEPT_CHECKPOINT_EVERY, STATE_TOKENS, TokenDoc, token_doc_from_sqlx};
mod scan;

use changegate_audit::{LeafRow, RecordRow, Report, StateRow, StateTable, WORLD_ID};
use futures_util::TryStreamExt as _;
use sqlx::Row;

use crate::{Result, Store, StoreError, on_pool};
use common::{
    HeadRow, LEAF_SCAN, NODE_SCAN, ORPHAN_RECORD, STATE_CHANGES, STATE_WORLD, VERIFY_CHECKPOINTS,
    VERIFY_HEAD, VERIFY_META, VerifyMeta, finish_verify, node_hash_or_ones, start_verify,
};

impl Store {
    /// Recompute the whole log and check it against every stored checkpoint, the head, and
    /// `extra_checkpoint` (a note the auditor kept). See [`changegate_audit::verify`].
    ///
    /// A SQLite file is read by [`scan`] (its own connections and threads, see
    /// docs/adr/0011-audit-verify-scan.md); PostgreSQL and in-memory SQLite through sqlx.
    pub async fn verify(&self, extra_checkpoint: Option<&str>) -> Result<Report> {
        if let (crate::Db::Sqlite(_), Some(file)) = (&self.inner.db, &self.inner.sqlite_file) {
            let (inner, file) = (self.inner.clone(), file.clone());
            let extra = extra_checkpoint.map(str::to_owned);
            return tokio::task::spawn_blocking(move || {
                scan::verify(&inner, &file, extra.as_deref())
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("verify task: {e}")))?;
        }
        let inner = &self.inner;
        let (v, extra_failures, orphan, stored_nodes) = on_pool!(&inner.db, p => {
            // One snapshot for everything but the node scan, so concurrent appends do not look
            // like tampering (SQLite: a read transaction in WAL mode; PostgreSQL: repeatable
            // read). The snapshot is taken by the first read below.
            let begin = if matches!(inner.db, crate::Db::Sqlite(_)) { "BEGIN" } else { "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" };
            let mut rtx = p.begin_with(begin).await?;
            let meta = match sqlx::query(VERIFY_META).fetch_optional(&mut *rtx).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                None => None,
            };
            let head = match sqlx::query(VERIFY_HEAD).fetch_optional(&mut *rtx).await? {
                Some(r) => Some(HeadRow { size: r.try_get(0)?, root: r.try_get(1)?, frontier: r.try_get(2)?, checkpoint: r.try_get(3)? }),
                None => None,
            };
            let mut checkpoints = Vec::new();
            for r in sqlx::query(VERIFY_CHECKPOINTS).fetch_all(&mut *rtx).await? {
                checkpoints.push((r.try_get(0)?, r.try_get(1)?));
            }
            let (mut v, extra_failures) = start_verify(inner, VerifyMeta { meta, head, checkpoints }, extra_checkpoint);
            // The stored nodes are read on a second connection while the leaves stream in
            // (two cores, two SQLite worker threads), then compared. Its snapshot starts after
            // ours, so it may hold nodes of later appends; the verifier ignores those.
            // Its own task, so its rows are decoded on the other runtime thread.
            let pool = p.clone();
            let node_scan = tokio::spawn(async move {
                let mut out: Vec<(i64, [u8; 32])> = Vec::new();
                let mut nodes = sqlx::query(NODE_SCAN).fetch(&pool);
                while let Some(r) = nodes.try_next().await? {
                    let h: &[u8] = r.try_get(1)?;
                    out.push((r.try_get(0)?, node_hash_or_ones(h)));
                }
                Ok::<_, StoreError>(out)
            });
            let leaf_scan = async {
                let mut rows = sqlx::query(LEAF_SCAN).fetch(&mut *rtx);
                while let Some(r) = rows.try_next().await? {
                    let seq: i64 = r.try_get(0)?;
                    let leaf: &[u8] = r.try_get(1)?;
                    let event_id: Option<&str> = r.try_get(2)?;
                    let record = match event_id {
                        Some(event_id) => Some(RecordRow {
                            event_id,
                            kind: r.try_get(3)?,
                            actor: r.try_get(4)?,
                            change_id: r.try_get(5)?,
                            recorded_at_us: r.try_get(6)?,
                            salt: r.try_get(7)?,
                            record: r.try_get::<&str, _>(8)?.as_bytes(),
                        }),
                        None => None,
                    };
                    v.leaf(LeafRow { seq, leaf, record });
                }
                Ok::<_, StoreError>(())
            };
            let leaves_done = leaf_scan.await;
            let nodes_done = node_scan.await.map_err(|e| StoreError::Corrupt(format!("node scan task: {e}")))?;
            leaves_done?;
            let orphan = sqlx::query(ORPHAN_RECORD).fetch_one(&mut *rtx).await?.try_get::<Option<i64>, _>(0)?;
            // The state tables, once each, in the same snapshot.
            {
                let mut rows = sqlx::query(STATE_CHANGES).fetch(&mut *rtx);
                while let Some(r) = rows.try_next().await? {
                    let doc: &str = r.try_get(2)?;
                    v.state_row(StateRow { table: StateTable::Change, id: r.try_get(0)?, version: r.try_get(1)?, doc: doc.as_bytes() });
                }
            }
            if let Some(r) = sqlx::query(STATE_WORLD).fetch_optional(&mut *rtx).await? {
                let doc: &str = r.try_get(1)?;
                v.state_row(StateRow { table: StateTable::World, id: WORLD_ID, version: r.try_get(0)?, doc: doc.as_bytes() });
            }
            {
                let mut rows = sqlx::query(STATE_TOKENS).fetch(&mut *rtx);
                while let Some(r) = rows.try_next().await? {
                    let t = token_doc_from_sqlx!(&r);
                    let doc = t.doc();
                    v.state_row(StateRow { table: StateTable::Token, id: &t.id, version: t.version, doc: doc.as_bytes() });
                }
            }
            rtx.rollback().await?;
            (v, extra_failures, orphan, nodes_done?)
        });
        Ok(finish_verify(v, extra_failures, orphan, stored_nodes))
    }
}

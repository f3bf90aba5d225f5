//! Transactions: domain writes and their audit events commit together, or not at all.

use changegate_audit::record::LeafData;
use changegate_audit::tree::leaf_hash;
use changegate_audit::{AuditEvent, Checkpoint, Frontier, seal};
use jiff::Timestamp;
use rand::RngCore as _;
use serde::Serialize;
use sqlx::{PgConnection, Postgres, Row, Sqlite, SqliteConnection, Transaction};

use crate::{Db, Result, Store, StoreError};

/// The connection of an open transaction, per backend (use with [`crate::on_conn!`]).
pub enum TxConn<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
}

enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: Inner,
    store: Store,
    appended: Vec<Appended>,
}

/// What one append assigned. Durable once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Log position.
    pub seq: u64,
    /// Event id.
    pub id: String,
    /// Time stamped into the leaf.
    pub recorded_at: Timestamp,
    /// Tree size after this append.
    pub tree_size: u64,
    /// Root after this append, hex.
    pub root: String,
}

impl Store {
    /// Begin a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue instead of
    /// failing on lock upgrade).
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.inner.db {
            Db::Sqlite(p) => Inner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Inner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            store: self.clone(),
            appended: Vec::new(),
        })
    }

    /// Run `f` in a transaction and commit it when `f` returns `Ok`; roll back otherwise.
    /// `f` makes its domain writes through the [`Tx`] and appends their audit events with
    /// [`Tx::append_audit`], so no change is stored without its event.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut Tx) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut tx = self.begin().await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Append one event in its own transaction.
    pub async fn append(&self, event: AuditEvent) -> Result<Appended> {
        let mut tx = self.begin().await?;
        let a = tx.append_audit(event).await?;
        tx.commit().await?;
        Ok(a)
    }
}

impl Tx {
    /// The connection, for domain writes: `on_conn!(tx.conn(), c => sqlx::query(..).execute(c).await)`.
    pub fn conn(&mut self) -> TxConn<'_> {
        match &mut self.inner {
            Inner::Sqlite(t) => TxConn::Sqlite(t),
            Inner::Postgres(t) => TxConn::Postgres(t),
        }
    }

    /// The store this transaction belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Events appended so far in this transaction.
    pub fn appended(&self) -> &[Appended] {
        &self.appended
    }

    /// Commit: the domain writes and their events become durable together.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await?,
            Inner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Roll back explicitly.
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            Inner::Sqlite(t) => t.rollback().await?,
            Inner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Append an audit event, stamped with the store's clock. The event is checked against the
    /// policy's audit fields first (fail closed).
    pub async fn append_audit(&mut self, event: AuditEvent) -> Result<Appended> {
        event.validate(self.store.inner.fields.as_ref())?;
        self.append_inner(event, None).await
    }

    /// Append with an explicit time (imports, tests). The log does not require times to grow.
    pub async fn append_audit_at(&mut self, event: AuditEvent, at: Timestamp) -> Result<Appended> {
        event.validate(self.store.inner.fields.as_ref())?;
        self.append_inner(event, Some(at)).await
    }

    pub(crate) async fn append_inner(
        &mut self,
        event: AuditEvent,
        at: Option<Timestamp>,
    ) -> Result<Appended> {
        let inner = self.store.inner.clone();
        let signer = inner.signer.as_ref().ok_or_else(|| {
            StoreError::Invalid(
                "this store was opened without the log's private key: it cannot append".into(),
            )
        })?;
        // Lock the head: from here to commit, no other writer can append.
        let row = crate::on_conn!(self.conn(), c => {
            let sql = if matches!(inner.db, Db::Postgres(_)) {
                "SELECT size, frontier FROM audit_head WHERE id = 1 FOR UPDATE"
            } else {
                "SELECT size, frontier FROM audit_head WHERE id = 1"
            };
            let r = sqlx::query(sql).fetch_one(&mut *c).await?;
            (r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)
        });
        let size = row.0 as u64;
        let mut frontier = Frontier::from_bytes(size, &row.1).ok_or_else(|| {
            StoreError::Corrupt(format!("log head frontier does not match size {size}"))
        })?;
        let at = at.unwrap_or_else(|| (inner.clock)());
        let mut salt = [0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        let mut idb = [0u8; 16];
        rand::rng().fill_bytes(&mut idb);
        let id = format!("ev_{}", hex::encode(idb));
        let sealed = seal(event, size, id.clone(), at, &salt);
        let leaf: [u8; changegate_audit::record::LEAF_LEN] = LeafData::encode(&sealed.leaf);
        let nodes = frontier.push(leaf_hash(&leaf));
        let root = frontier.root();
        let note = signer.sign(&Checkpoint {
            origin: inner.origin.clone(),
            size: size + 1,
            root,
        });
        let mut node_sql = String::from("INSERT INTO audit_node (id, hash) VALUES ");
        for i in 0..nodes.len() {
            if i > 0 {
                node_sql.push(',');
            }
            node_sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
        }
        let ev = &sealed.record.event;
        let record_text =
            String::from_utf8(sealed.record_bytes.clone()).expect("canonical JSON is UTF-8");
        let keep_checkpoint = (size + 1) % inner.checkpoint_every == 0;
        crate::on_conn!(self.conn(), c => {
            sqlx::query("INSERT INTO audit_leaf (seq, leaf) VALUES ($1, $2)").bind(size as i64).bind(&leaf[..]).execute(&mut *c).await?;
            sqlx::query("INSERT INTO audit_record (seq, event_id, kind, actor, change_id, recorded_at, salt, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(size as i64)
                .bind(&id)
                .bind(&ev.kind)
                .bind(&ev.actor)
                .bind(ev.change_id.as_deref())
                .bind(sealed.leaf.recorded_at_us)
                .bind(&salt[..])
                .bind(&record_text)
                .execute(&mut *c)
                .await?;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(node_sql));
            for (nid, h) in &nodes {
                q = q.bind(nid.key()).bind(h.to_vec());
            }
            q.execute(&mut *c).await?;
            sqlx::query("UPDATE audit_head SET size = $1, root = $2, frontier = $3, checkpoint = $4 WHERE id = 1")
                .bind((size + 1) as i64)
                .bind(&root[..])
                .bind(frontier.to_bytes())
                .bind(&note)
                .execute(&mut *c)
                .await?;
            if keep_checkpoint {
                sqlx::query("INSERT INTO audit_checkpoint (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                    .bind((size + 1) as i64)
                    .bind(&note)
                    .bind(sealed.leaf.recorded_at_us)
                    .execute(&mut *c)
                    .await?;
            }
        });
        let a = Appended {
            seq: size,
            id,
            recorded_at: sealed.record.recorded_at,
            tree_size: size + 1,
            root: hex::encode(root),
        };
        self.appended.push(a.clone());
        Ok(a)
    }
}

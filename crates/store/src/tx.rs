//! Transactions: domain writes and their audit events commit together, or not at all.

use changegate_audit::record::{LEAF_LEN, LeafData};
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
    // Declared last: given back only once the transaction above has ended.
    _turn: Option<crate::WriteTurn>,
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
    /// Root after this append (for a batch: after the whole batch), hex.
    pub root: String,
}

impl Store {
    /// Begin a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue instead of
    /// failing on lock upgrade).
    /// On SQLite it first waits for this process's write turn (see [`crate::background`]).
    pub async fn begin(&self) -> Result<Tx> {
        let turn = self.write_turn().await;
        let inner = match &self.inner.db {
            Db::Sqlite(p) => Inner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Inner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            store: self.clone(),
            appended: Vec::new(),
            _turn: turn,
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
        let mut v = self.append_many(vec![(event, at)]).await?;
        Ok(v.pop().expect("one appended"))
    }

    /// Append several events at once (imports, bulk loads): one head lock, multi-row inserts.
    /// Each event is checked against the policy's audit fields first.
    pub async fn append_audit_batch(&mut self, events: Vec<AuditEvent>) -> Result<Vec<Appended>> {
        for e in &events {
            e.validate(self.store.inner.fields.as_ref())?;
        }
        self.append_many(events.into_iter().map(|e| (e, None)).collect())
            .await
    }

    async fn append_many(
        &mut self,
        events: Vec<(AuditEvent, Option<Timestamp>)>,
    ) -> Result<Vec<Appended>> {
        let inner = self.store.inner.clone();
        let signer = inner.signer.as_ref().ok_or_else(|| {
            StoreError::Invalid(
                "this store was opened without the log's private key: it cannot append".into(),
            )
        })?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Lock the head: from here to commit, no other writer can append. (SQLite: the
        // transaction began IMMEDIATE, so it already holds the write lock.)
        let row = crate::on_conn!(self.conn(), c => {
            let sql = if matches!(inner.db, Db::Postgres(_)) {
                "SELECT size, frontier FROM audit_head WHERE id = 1 FOR UPDATE"
            } else {
                "SELECT size, frontier FROM audit_head WHERE id = 1"
            };
            let r = sqlx::query(sql).fetch_one(&mut *c).await?;
            (r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)
        });
        let start = row.0 as u64;
        let mut frontier = Frontier::from_bytes(start, &row.1).ok_or_else(|| {
            StoreError::Corrupt(format!("log head frontier does not match size {start}"))
        })?;
        struct Row {
            seq: i64,
            id: String,
            kind: String,
            actor: String,
            change_id: Option<String>,
            at_us: i64,
            salt: [u8; 32],
            record: String,
            leaf: [u8; LEAF_LEN],
        }
        let mut rows = Vec::with_capacity(events.len());
        let mut nodes = Vec::with_capacity(events.len() * 2);
        let mut checkpoints = Vec::new();
        let mut out = Vec::with_capacity(events.len());
        // The notifications each event causes (the server's routing function), queued below in
        // this transaction.
        let router = self.store.notification_router();
        let mut queued = Vec::new();
        for (event, at) in events {
            let seq = frontier.size();
            // Stamp after taking the lock, so times follow positions on one host.
            let at = at.unwrap_or_else(|| (inner.clock)());
            let mut salt = [0u8; 32];
            // ThreadRng is not Send: take it per use so the future stays Send.
            rand::rng().fill_bytes(&mut salt);
            let mut idb = [0u8; 16];
            rand::rng().fill_bytes(&mut idb);
            let id = format!("ev_{}", hex::encode(idb));
            if let Some(route) = &router {
                let rows = route(&event, seq, at);
                if !rows.is_empty() {
                    queued.push((rows, seq, id.clone(), at));
                }
            }
            let sealed = seal(event, seq, id.clone(), at, &salt);
            let leaf = LeafData::encode(&sealed.leaf);
            frontier.push_with(leaf_hash(&leaf), |nid, h| nodes.push((nid.key(), *h)));
            // Also at every multiple of the log's fixed interval, whatever this process's
            // `checkpoint_every`: `audit verify` expects those and so detects a deleted one.
            if frontier.size() % inner.checkpoint_every == 0
                || frontier.size() % crate::verify::KEPT_CHECKPOINT_EVERY == 0
            {
                let cp = Checkpoint {
                    origin: inner.origin.clone(),
                    size: frontier.size(),
                    root: frontier.root(),
                };
                checkpoints.push((
                    frontier.size() as i64,
                    signer.sign(&cp),
                    sealed.leaf.recorded_at_us,
                ));
            }
            out.push(Appended {
                seq,
                id: id.clone(),
                recorded_at: sealed.record.recorded_at,
                tree_size: seq + 1,
                root: String::new(),
            });
            let ev = sealed.record.event;
            rows.push(Row {
                seq: seq as i64,
                id,
                kind: ev.kind,
                actor: ev.actor,
                change_id: ev.change_id,
                at_us: sealed.leaf.recorded_at_us,
                salt,
                record: String::from_utf8(sealed.record_bytes).expect("canonical JSON is UTF-8"),
                leaf,
            });
        }
        let size = frontier.size();
        let root = frontier.root();
        if let Some(last) = out.last_mut() {
            last.root = hex::encode(root);
        }
        let note = signer.sign(&Checkpoint {
            origin: inner.origin.clone(),
            size,
            root,
        });
        const CHUNK: usize = 500;
        crate::on_conn!(self.conn(), c => {
            for chunk in rows.chunks(CHUNK) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql("INSERT INTO audit_leaf (seq, leaf) VALUES ", chunk.len(), 2)));
                for r in chunk {
                    q = q.bind(r.seq).bind(r.leaf.to_vec());
                }
                q.execute(&mut *c).await?;
                let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql(
                    "INSERT INTO audit_record (seq, event_id, kind, actor, change_id, recorded_at, salt, record) VALUES ",
                    chunk.len(),
                    8,
                )));
                for r in chunk {
                    q = q.bind(r.seq).bind(&r.id).bind(&r.kind).bind(&r.actor).bind(r.change_id.as_deref()).bind(r.at_us).bind(r.salt.to_vec()).bind(&r.record);
                }
                q.execute(&mut *c).await?;
            }
            for chunk in nodes.chunks(CHUNK * 2) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql("INSERT INTO audit_node (id, hash) VALUES ", chunk.len(), 2)));
                for (k, h) in chunk {
                    q = q.bind(*k).bind(h.to_vec());
                }
                q.execute(&mut *c).await?;
            }
            sqlx::query("UPDATE audit_head SET size = $1, root = $2, frontier = $3, checkpoint = $4 WHERE id = 1")
                .bind(size as i64)
                .bind(&root[..])
                .bind(frontier.to_bytes())
                .bind(&note)
                .execute(&mut *c)
                .await?;
            for (cp_size, cp_note, at) in &checkpoints {
                sqlx::query("INSERT INTO audit_checkpoint (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                    .bind(*cp_size)
                    .bind(cp_note)
                    .bind(*at)
                    .execute(&mut *c)
                    .await?;
            }
        });
        for (rows, seq, id, at) in queued {
            crate::server::queue_notifications(self.conn(), rows, seq, &id, at).await?;
        }
        // Intermediate roots are not computed per event in a batch; each carries the root
        // after the whole batch.
        let root_hex = hex::encode(root);
        for a in &mut out {
            a.root = root_hex.clone();
        }
        self.appended.extend(out.iter().cloned());
        Ok(out)
    }
}

/// `prefix ($1, $2), ($3, $4), ...` for `rows` rows of `cols` columns.
fn values_sql(prefix: &str, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + rows * cols * 6);
    s.push_str(prefix);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            n += 1;
            s.push('$');
            s.push_str(&n.to_string());
        }
        s.push(')');
    }
    s
}

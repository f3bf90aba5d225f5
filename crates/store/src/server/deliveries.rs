//! Incoming webhook deliveries (`server_delivery`): stored inside the request, processed later by
//! a background worker, at least once.
//!
//! The life of a row: [`crate::ServerStore::insert_delivery`] (unique on source and delivery id, so a
//! redelivery is found, not stored again) → [`crate::ServerStore::claim_deliveries`] (a worker leases due rows:
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas share the work, the write lock of `BEGIN
//! IMMEDIATE` on SQLite) → [`crate::ServerStore::complete_delivery`] (the world write it causes, its audit
//! event and `done`, in one transaction, only while the worker still holds the lease) or
//! [`crate::ServerStore::fail_delivery`] (back to `pending` with a later due time, or `failed`). A worker that
//! dies holding a lease leaves the row `pending`; once the lease expires another worker takes it.
//! Because the world write and `done` commit together, a delivery changes the world at most once
//! even when it is processed twice; the processors are idempotent besides (same state, no write).

use changegate_audit::{AuditEvent, StateRef, StateTable, WORLD_ID};
use changegate_gate::WorldState;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sqlx::Row;

use super::{append_with_state, to_doc};
use crate::{Db, Result, Store, StoreError, on_conn, on_pool};

/// Where a delivery comes from (column `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliverySource {
    /// PagerDuty V3 webhooks.
    Pagerduty,
    /// Prometheus Alertmanager's webhook receiver (payload version 4).
    Alertmanager,
    /// GitHub webhooks.
    Github,
}

impl DeliverySource {
    /// Every source.
    pub const ALL: [DeliverySource; 3] = [
        DeliverySource::Pagerduty,
        DeliverySource::Alertmanager,
        DeliverySource::Github,
    ];

    /// The stored name: `pagerduty`, `alertmanager`, `github`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliverySource::Pagerduty => "pagerduty",
            DeliverySource::Alertmanager => "alertmanager",
            DeliverySource::Github => "github",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<DeliverySource> {
        DeliverySource::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for DeliverySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a delivery is in its life (column `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    /// To process (also while a worker holds its lease).
    Pending,
    /// Processed.
    Done,
    /// Given up on after too many attempts.
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Done,
        DeliveryStatus::Failed,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Done => "done",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery to store.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    /// Source.
    pub source: DeliverySource,
    /// The sender's id of the event (unique per source: the dedupe key).
    pub delivery_id: &'a str,
    /// What it is about (an incident id; empty for nothing in particular): deliveries of one
    /// subject are processed in the order they arrived.
    pub subject: &'a str,
    /// Who sent it (the token's actor, or `integration:pagerduty` for a signed webhook).
    pub received_by: &'a str,
    /// The raw body, as received.
    pub body: &'a str,
    /// When it arrived.
    pub at: Timestamp,
}

/// What [`crate::ServerStore::insert_delivery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Received {
    /// Stored as a new pending delivery.
    Stored {
        /// Its row id.
        row: i64,
    },
    /// The same (source, delivery id) was received before: nothing stored.
    Duplicate {
        /// The earlier row.
        row: i64,
        /// Its status.
        status: DeliveryStatus,
    },
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Row id.
    pub row: i64,
    /// Source.
    pub source: DeliverySource,
    /// The sender's id of the event.
    pub delivery_id: String,
    /// What it is about.
    pub subject: String,
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// Who sent it.
    pub received_by: String,
    /// The raw body (not listed).
    #[serde(skip)]
    pub body: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Processing attempts started so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is due (next attempt).
    pub next_attempt_at: Timestamp,
    /// When it was done or given up on (RFC 3339).
    pub finished_at: Option<String>,
    /// What processing did (JSON), once done.
    pub outcome: Option<serde_json::Value>,
}

/// The world write a processed delivery causes, committed with its `done`.
#[derive(Debug)]
pub struct WorldWrite<'a> {
    /// The world's version it was computed from (compare-and-swap).
    pub expected: i64,
    /// The new world.
    pub world: &'a WorldState,
    /// Its audit event.
    pub event: AuditEvent,
}

/// What [`crate::ServerStore::complete_delivery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Marked done (with its world write and audit event, when given).
    Done,
    /// The world changed since it was read: nothing written; compute again.
    WorldConflict,
    /// This worker no longer holds the delivery (its lease expired and another took it, or it
    /// is not pending): nothing written.
    LeaseLost,
}

const COLUMNS: &str = "id, source, delivery_id, subject, received_at, received_by, body, status, attempts, last_error, next_attempt_us, finished_at, outcome";

type Raw = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);

macro_rules! raw {
    ($r:expr) => {
        (
            $r.try_get(0)?,
            $r.try_get(1)?,
            $r.try_get(2)?,
            $r.try_get(3)?,
            $r.try_get(4)?,
            $r.try_get(5)?,
            $r.try_get(6)?,
            $r.try_get(7)?,
            $r.try_get(8)?,
            $r.try_get(9)?,
            $r.try_get(10)?,
            $r.try_get(11)?,
            $r.try_get(12)?,
        )
    };
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("delivery {what} `{v}` is unknown"))
}

fn delivery(r: Raw) -> Result<Delivery> {
    let (row, source, delivery_id, subject, received_at, received_by, body, status, attempts) =
        (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8);
    Ok(Delivery {
        row,
        source: DeliverySource::parse(&source).ok_or_else(|| corrupt("source", &source))?,
        delivery_id,
        subject,
        received_at,
        received_by,
        body,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts,
        last_error: r.9,
        next_attempt_at: Timestamp::from_microsecond(r.10)
            .map_err(|e| StoreError::Corrupt(format!("delivery due time: {e}")))?,
        finished_at: r.11,
        outcome: r.12.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// Insert one delivery on `c` (a transaction's or a pooled connection): stored, or the earlier
/// row of the same (source, delivery id).
macro_rules! insert_one_on {
    ($c:expr, $d:expr) => {{
        let d: &Owned = $d;
        let at = us(d.at);
        let source = d.source.as_str();
        let inserted: Option<i64> = sqlx::query("INSERT INTO server_delivery (source, delivery_id, subject, received_at, received_at_us, received_by, body, next_attempt_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id")
            .bind(source).bind(&d.delivery_id).bind(&d.subject).bind(d.at.to_string()).bind(at)
            .bind(&d.received_by).bind(&d.body).bind(at)
            .fetch_optional(&mut *$c).await?
            .map(|r| r.try_get::<i64, _>(0)).transpose()?;
        match inserted {
            Some(row) => Ok(Received::Stored { row }),
            None => {
                let r = sqlx::query("SELECT id, status FROM server_delivery WHERE source = $1 AND delivery_id = $2")
                    .bind(source).bind(&d.delivery_id).fetch_one(&mut *$c).await?;
                let (row, status): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
                Ok(Received::Duplicate {
                    row,
                    status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
                })
            }
        }
    }};
}

impl Store {
    pub(crate) async fn insert_delivery_row(&self, d: NewDelivery<'_>) -> Result<Received> {
        match &self.inner.db {
            Db::Sqlite(_) => self.insert_delivery_grouped(d).await,
            Db::Postgres(_) => {
                let _turn = self.write_turn().await;
                let d = Owned::of(&d);
                on_pool!(&self.inner.db, p => {
                    let mut c = p.acquire().await?;
                    insert_one_on!(c, &d)
                })
            }
        }
    }

    /// SQLite: group commit (ADR 0032). The insert joins the queue; when no inserter is running,
    /// one is spawned. The inserter waits for the write turn, takes every insert queued by then
    /// and stores them in one transaction — one commit, one fsync — and answers each; it goes on
    /// while more have queued, then ends. A burst of acknowledgements then costs a commit per
    /// batch instead of a commit per delivery. When a batch's transaction fails, its inserts are
    /// tried one at a time, so each gets its own answer.
    async fn insert_delivery_grouped(&self, d: NewDelivery<'_>) -> Result<Received> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let spawn = {
            let mut q = self.inner.inserts.lock().unwrap_or_else(|p| p.into_inner());
            q.pending.push((Owned::of(&d), reply));
            !std::mem::replace(&mut q.running, true)
        };
        if spawn {
            let store = self.clone();
            tokio::spawn(async move { store.run_inserter().await });
        }
        answer.await.map_err(|_| {
            StoreError::Invalid("the delivery inserter stopped before answering".into())
        })?
    }

    async fn run_inserter(&self) {
        loop {
            let batch = async {
                let mut tx = self.begin().await?;
                let batch = {
                    let mut q = self.inner.inserts.lock().unwrap_or_else(|p| p.into_inner());
                    std::mem::take(&mut q.pending)
                };
                let mut out = Vec::with_capacity(batch.len());
                for (d, _) in &batch {
                    let r: Result<Received> = on_conn!(tx.conn(), c => insert_one_on!(c, d));
                    out.push(r?);
                }
                tx.commit().await?;
                Ok::<_, StoreError>((batch, out))
            }
            .await;
            match batch {
                Ok((batch, out)) => {
                    for ((_, reply), r) in batch.into_iter().zip(out) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delivery inserts: the batch failed; one at a time");
                    let batch = {
                        let mut q = self.inner.inserts.lock().unwrap_or_else(|p| p.into_inner());
                        std::mem::take(&mut q.pending)
                    };
                    for (d, reply) in batch {
                        let r = async {
                            let mut tx = self.begin().await?;
                            let r: Result<Received> =
                                on_conn!(tx.conn(), c => insert_one_on!(c, &d));
                            let r = r?;
                            tx.commit().await?;
                            Ok(r)
                        }
                        .await;
                        let _ = reply.send(r);
                    }
                }
            }
            let mut q = self.inner.inserts.lock().unwrap_or_else(|p| p.into_inner());
            if q.pending.is_empty() {
                q.running = false;
                return;
            }
        }
    }

    pub(crate) async fn claim_delivery_rows(
        &self,
        owner: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let now_us = us(now);
        let until = us(now.checked_add(lease).unwrap_or(now));
        // Due, not leased (or the lease expired), and no older pending delivery of the same
        // subject: one subject's deliveries apply in arrival order, whichever replica takes them.
        let pick = "SELECT d.id FROM server_delivery d WHERE d.status = 'pending' AND d.next_attempt_us <= $3 AND (d.lease_until_us IS NULL OR d.lease_until_us < $3) AND NOT EXISTS (SELECT 1 FROM server_delivery e WHERE e.source = d.source AND e.subject = d.subject AND d.subject <> '' AND e.id < d.id AND e.status = 'pending') ORDER BY d.id LIMIT $4";
        let lock = match self.inner.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE server_delivery SET lease_owner = $1, lease_until_us = $2, attempts = attempts + 1 WHERE id IN ({pick}{lock}) RETURNING {COLUMNS}"
        );
        // SQLite: `begin` is BEGIN IMMEDIATE, so claims of several processes serialise.
        let mut tx = self.begin().await?;
        let rows: Vec<Raw> = on_conn!(tx.conn(), c => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(until).bind(now_us).bind(limit)
                .fetch_all(&mut *c).await?;
            rows.iter().map(|r| Ok(raw!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        tx.commit().await?;
        let mut out = rows.into_iter().map(delivery).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|d| d.row);
        Ok(out)
    }

    pub(crate) async fn complete_delivery_row(
        &self,
        row: i64,
        owner: &str,
        outcome: &serde_json::Value,
        at: Timestamp,
        write: Option<WorldWrite<'_>>,
    ) -> Result<Completion> {
        let outcome = to_doc("delivery outcome", outcome)?;
        let mut tx = self.begin().await?;
        let mut stored = None;
        if let Some(w) = &write {
            let doc = to_doc("world", w.world)?;
            let n = on_conn!(tx.conn(), c => {
                sqlx::query("UPDATE server_world SET version = $1, state = $2 WHERE id = 1 AND version = $3")
                    .bind(w.expected + 1).bind(&doc).bind(w.expected)
                    .execute(&mut *c).await?.rows_affected()
            });
            if n != 1 {
                tx.rollback().await?;
                return Ok(Completion::WorldConflict);
            }
            stored = Some(StateRef::of(
                StateTable::World,
                WORLD_ID,
                w.expected + 1,
                doc.as_bytes(),
            ));
        }
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_delivery SET status = 'done', finished_at = $1, outcome = $2, last_error = NULL, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                .bind(at.to_string()).bind(&outcome).bind(row).bind(owner)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(Completion::LeaseLost);
        }
        if let (Some(w), Some(state)) = (write, stored) {
            append_with_state(&mut tx, w.event, state).await?;
        }
        tx.commit().await?;
        Ok(Completion::Done)
    }

    pub(crate) async fn fail_delivery_row(
        &self,
        row: i64,
        owner: &str,
        error: &str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let n = on_pool!(&self.inner.db, p => match retry_at {
            Some(next) => sqlx::query("UPDATE server_delivery SET last_error = $1, next_attempt_us = $2, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                .bind(error).bind(us(next)).bind(row).bind(owner)
                .execute(p).await?.rows_affected(),
            None => sqlx::query("UPDATE server_delivery SET status = 'failed', last_error = $1, finished_at = $2, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                .bind(error).bind(at.to_string()).bind(row).bind(owner)
                .execute(p).await?.rows_affected(),
        });
        Ok(n == 1)
    }

    pub(crate) async fn select_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        source: Option<DeliverySource>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM server_delivery WHERE ($1 = '' OR status = $1) AND ($2 = '' OR source = $2) ORDER BY id DESC LIMIT $3"
        );
        let status = status.map_or("", DeliveryStatus::as_str);
        let source = source.map_or("", DeliverySource::as_str);
        let rows: Vec<Raw> = on_pool!(&self.inner.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(status).bind(source).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(raw!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter().map(delivery).collect()
    }

    pub(crate) async fn retry_delivery_row(
        &self,
        row: i64,
        by: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_delivery SET status = 'pending', attempts = 0, next_attempt_us = $1, finished_at = NULL, lease_owner = NULL, lease_until_us = NULL WHERE id = $2 AND status = 'failed'")
                .bind(us(at)).bind(row)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.append_audit(
            AuditEvent::new("delivery.retried", by).details(serde_json::json!({ "row": row })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn select_pending_after(
        &self,
        source: DeliverySource,
        subject: &str,
        row: i64,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM server_delivery WHERE source = $1 AND subject = $2 AND subject <> '' AND id > $3 AND status = 'pending' AND (lease_until_us IS NULL OR lease_until_us < $4) ORDER BY id LIMIT $5"
        );
        let rows: Vec<Raw> = on_pool!(&self.inner.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source.as_str()).bind(subject).bind(row).bind(us(now)).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(raw!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter().map(delivery).collect()
    }

    pub(crate) async fn complete_delivery_rows(
        &self,
        owner: &str,
        leased: i64,
        rows: &[(i64, serde_json::Value)],
        at: Timestamp,
        event: Option<AuditEvent>,
    ) -> Result<Completion> {
        let mut tx = self.begin().await?;
        for (row, outcome) in rows {
            let outcome = to_doc("delivery outcome", outcome)?;
            // The leased row must still be this worker's; the others (which no worker can claim
            // while the leased one is pending) must still be pending and unleased.
            let n = on_conn!(tx.conn(), c => {
                if *row == leased {
                    sqlx::query("UPDATE server_delivery SET status = 'done', finished_at = $1, outcome = $2, last_error = NULL, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                        .bind(at.to_string()).bind(&outcome).bind(row).bind(owner)
                        .execute(&mut *c).await?.rows_affected()
                } else {
                    sqlx::query("UPDATE server_delivery SET status = 'done', finished_at = $1, outcome = $2, last_error = NULL, attempts = attempts + 1, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND status = 'pending' AND (lease_until_us IS NULL OR lease_until_us < $4)")
                        .bind(at.to_string()).bind(&outcome).bind(row).bind(us(at))
                        .execute(&mut *c).await?.rows_affected()
                }
            });
            if n != 1 {
                tx.rollback().await?;
                return Ok(Completion::LeaseLost);
            }
        }
        if let Some(e) = event {
            tx.append_audit(e).await?;
        }
        tx.commit().await?;
        Ok(Completion::Done)
    }
}

/// A delivery to insert, owned (it waits in the group-commit queue).
#[derive(Debug)]
pub(crate) struct Owned {
    source: DeliverySource,
    delivery_id: String,
    subject: String,
    received_by: String,
    body: String,
    at: Timestamp,
}

impl Owned {
    fn of(d: &NewDelivery<'_>) -> Owned {
        Owned {
            source: d.source,
            delivery_id: d.delivery_id.to_string(),
            subject: d.subject.to_string(),
            received_by: d.received_by.to_string(),
            body: d.body.to_string(),
            at: d.at,
        }
    }
}

/// The SQLite group-commit queue of delivery inserts (see `insert_delivery_grouped`).
#[derive(Debug, Default)]
pub(crate) struct InsertQueue {
    pending: Vec<(Owned, tokio::sync::oneshot::Sender<Result<Received>>)>,
    running: bool,
}

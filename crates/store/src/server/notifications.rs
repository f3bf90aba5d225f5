//! The notification outbox (`server_notification`): rows written in the transaction of the audit
//! event that causes them, sent later by a background worker, at least once.
//!
//! Writing: the server installs a [`NotificationRouter`] on the store
//! ([`crate::Store::set_notification_router`]). Every append of an audit event (whatever writes
//! it: a route, the delivery worker, the rollout worker) calls it with the event, inside the
//! append's transaction, and inserts the rows it returns (`ON CONFLICT (dedupe_key) DO NOTHING`).
//! So a notification exists exactly when its state change committed, and the same key is never
//! queued twice.
//!
//! Sending: [`crate::ServerStore::claim_notifications`] leases due rows (`FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, so replicas share the work; `BEGIN IMMEDIATE` on SQLite), the worker sends
//! each, then [`crate::ServerStore::finish_notification`] marks it `sent` (or `cancelled`) with the
//! receiver's receipt, or [`crate::ServerStore::fail_notification`] puts it back with a later due
//! time, or `dead` after the last attempt. A worker that dies between sending and marking leaves
//! the row pending: once the lease expires it is sent again (at least once; the dedupe key goes to
//! the receiver so a receiver that dedupes shows it once).

use std::sync::Arc;

use changegate_audit::{AuditEvent, StateRef, StateTable, WORLD_ID};
use changegate_gate::{ChangeState, WorldState};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sqlx::Row;

use super::{append_with_state, to_doc};
use crate::{Db, Result, Store, StoreError, TxConn, on_conn, on_pool};

/// Where a notification is in its life (column `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationStatus {
    /// To send (also while a worker holds its lease).
    Pending,
    /// Sent: the receiver accepted it.
    Sent,
    /// Given up on after too many attempts (dead letter).
    Dead,
    /// A reminder whose condition no longer held when it came due.
    Cancelled,
}

impl NotificationStatus {
    /// Every status.
    pub const ALL: [NotificationStatus; 4] = [
        NotificationStatus::Pending,
        NotificationStatus::Sent,
        NotificationStatus::Dead,
        NotificationStatus::Cancelled,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Dead => "dead",
            NotificationStatus::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<NotificationStatus> {
        NotificationStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification to queue, as the router returns it for an audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Unique: `subject/event[/occurrence]/channel`. A second row with the same key is not
    /// stored.
    pub dedupe_key: String,
    /// The policy's channel name (`[notifications.channels.NAME]`).
    pub channel: String,
    /// The notification event (`change-deployed`, `incident-opened`, `standby-reminder`, …).
    pub event: String,
    /// The change or incident it is about.
    pub subject: String,
    /// The facts the message is rendered from (the store adds `event_seq` and `event_id`).
    pub payload: serde_json::Value,
    /// When it is due; `None`: at once (the event's time). A scheduled reminder is due later.
    pub due: Option<Timestamp>,
}

/// The routing function the server installs: the notifications an audit event causes, given the
/// event, its log position and its time. Called inside the event's transaction; it must be pure
/// (no IO).
pub type NotificationRouter =
    Arc<dyn Fn(&AuditEvent, u64, Timestamp) -> Vec<NewNotification> + Send + Sync>;

/// The document write a sent notification causes, committed with its `sent` (a notice the gate
/// checks: the stakeholder notice on the change, the maintenance announcement in the world).
#[derive(Debug)]
pub enum NoticeWrite<'a> {
    /// A change's compare-and-swap.
    Change {
        /// Change id.
        id: &'a str,
        /// The version it was computed from.
        expected: i64,
        /// The new state.
        state: &'a ChangeState,
        /// Its audit event.
        event: AuditEvent,
    },
    /// The world's compare-and-swap.
    World {
        /// The version it was computed from.
        expected: i64,
        /// The new world.
        world: &'a WorldState,
        /// Its audit event.
        event: AuditEvent,
    },
}

/// What [`crate::ServerStore::finish_notification`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Marked (with its notice write, when given).
    Done,
    /// The document changed since it was read: nothing written; compute again.
    Conflict,
    /// This worker no longer holds the notification: nothing written.
    LeaseLost,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// Dedupe key.
    pub dedupe_key: String,
    /// Channel name.
    pub channel: String,
    /// Notification event.
    pub event: String,
    /// Change or incident id.
    pub subject: String,
    /// Log position of the audit event that caused it.
    pub event_seq: i64,
    /// The facts it is rendered from.
    pub payload: serde_json::Value,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// Status.
    pub status: NotificationStatus,
    /// Attempts started so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is due (next attempt).
    pub next_attempt_at: Timestamp,
    /// When it was sent, cancelled or given up on (RFC 3339).
    pub finished_at: Option<String>,
    /// What the receiver answered (a message id, a status-page incident id), once sent.
    pub receipt: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, dedupe_key, channel, event, subject, event_seq, payload, created_at, status, attempts, last_error, next_attempt_us, finished_at, receipt";

type Raw = (
    i64,
    String,
    String,
    String,
    String,
    i64,
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
            $r.try_get(13)?,
        )
    };
}

fn notification(r: Raw) -> Result<Notification> {
    let status = NotificationStatus::parse(&r.8)
        .ok_or_else(|| StoreError::Corrupt(format!("notification status `{}` is unknown", r.8)))?;
    Ok(Notification {
        id: r.0,
        dedupe_key: r.1,
        channel: r.2,
        event: r.3,
        subject: r.4,
        event_seq: r.5,
        payload: serde_json::from_str(&r.6)
            .map_err(|e| StoreError::Corrupt(format!("notification payload: {e}")))?,
        created_at: r.7,
        status,
        attempts: r.9,
        last_error: r.10,
        next_attempt_at: Timestamp::from_microsecond(r.11)
            .map_err(|e| StoreError::Corrupt(format!("notification due time: {e}")))?,
        finished_at: r.12,
        receipt: r.13.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// Insert the rows `router` gives for an appended event, in the append's transaction.
pub(crate) async fn queue(
    conn: TxConn<'_>,
    rows: Vec<NewNotification>,
    seq: u64,
    event_id: &str,
    at: Timestamp,
) -> Result<()> {
    let created = at.to_string();
    on_conn!(conn, c => {
        for mut n in rows {
            if let Some(o) = n.payload.as_object_mut() {
                o.insert("event_seq".into(), serde_json::json!(seq));
                o.insert("event_id".into(), serde_json::json!(event_id));
                o.insert("event_at".into(), serde_json::json!(at));
            }
            let payload = to_doc("notification payload", &n.payload)?;
            let due = us(n.due.unwrap_or(at));
            sqlx::query("INSERT INTO server_notification (dedupe_key, channel, event, subject, event_seq, payload, created_at, next_attempt_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING")
                .bind(&n.dedupe_key).bind(&n.channel).bind(&n.event).bind(&n.subject)
                .bind(seq as i64).bind(&payload).bind(&created).bind(due)
                .execute(&mut *c).await?;
        }
    });
    Ok(())
}

impl Store {
    /// Install the routing function every later append calls (the server does, at start, from
    /// the policy's `[notifications]`). Without one, appends queue nothing.
    pub fn set_notification_router(&self, router: Option<NotificationRouter>) {
        *self.inner.outbox.write().unwrap_or_else(|p| p.into_inner()) = router;
    }

    pub(crate) fn notification_router(&self) -> Option<NotificationRouter> {
        self.inner
            .outbox
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) async fn claim_notification_rows(
        &self,
        owner: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let now_us = us(now);
        let until = us(now.checked_add(lease).unwrap_or(now));
        let pick = "SELECT n.id FROM server_notification n WHERE n.status = 'pending' AND n.next_attempt_us <= $3 AND (n.lease_until_us IS NULL OR n.lease_until_us < $3) ORDER BY n.next_attempt_us, n.id LIMIT $4";
        let lock = match self.inner.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE server_notification SET lease_owner = $1, lease_until_us = $2, attempts = attempts + 1 WHERE id IN ({pick}{lock}) RETURNING {COLUMNS}"
        );
        let mut tx = self.begin().await?;
        let rows: Vec<Raw> = on_conn!(tx.conn(), c => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(until).bind(now_us).bind(limit)
                .fetch_all(&mut *c).await?;
            rows.iter().map(|r| Ok(raw!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        tx.commit().await?;
        let mut out = rows
            .into_iter()
            .map(notification)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|n| (n.next_attempt_at, n.id));
        Ok(out)
    }

    pub(crate) async fn finish_notification_row(
        &self,
        id: i64,
        owner: &str,
        status: NotificationStatus,
        receipt: &serde_json::Value,
        at: Timestamp,
        write: Option<NoticeWrite<'_>>,
    ) -> Result<Finished> {
        let receipt = to_doc("notification receipt", receipt)?;
        let now = at.to_string();
        let mut tx = self.begin().await?;
        let mut stored = None;
        match &write {
            None => {}
            Some(NoticeWrite::Change {
                id: cid,
                expected,
                state,
                ..
            }) => {
                let doc = to_doc("change", *state)?;
                let n = on_conn!(tx.conn(), c => {
                    sqlx::query("UPDATE server_change SET version = $1, status = $2, category = $3, title = $4, state = $5, updated_at = $6 WHERE id = $7 AND version = $8")
                        .bind(expected + 1).bind(state.status.as_str()).bind(i64::from(state.change.classification.category))
                        .bind(&state.change.title).bind(&doc).bind(&now).bind(*cid).bind(*expected)
                        .execute(&mut *c).await?.rows_affected()
                });
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(Finished::Conflict);
                }
                stored = Some(StateRef::of(
                    StateTable::Change,
                    *cid,
                    expected + 1,
                    doc.as_bytes(),
                ));
            }
            Some(NoticeWrite::World {
                expected, world, ..
            }) => {
                let doc = to_doc("world", *world)?;
                let n = on_conn!(tx.conn(), c => {
                    sqlx::query("UPDATE server_world SET version = $1, state = $2 WHERE id = 1 AND version = $3")
                        .bind(expected + 1).bind(&doc).bind(*expected)
                        .execute(&mut *c).await?.rows_affected()
                });
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(Finished::Conflict);
                }
                stored = Some(StateRef::of(
                    StateTable::World,
                    WORLD_ID,
                    expected + 1,
                    doc.as_bytes(),
                ));
            }
        }
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_notification SET status = $1, finished_at = $2, receipt = $3, last_error = NULL, lease_owner = NULL, lease_until_us = NULL WHERE id = $4 AND lease_owner = $5 AND status = 'pending'")
                .bind(status.as_str()).bind(&now).bind(&receipt).bind(id).bind(owner)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(Finished::LeaseLost);
        }
        if let (Some(w), Some(state)) = (write, stored) {
            let event = match w {
                NoticeWrite::Change { event, .. } | NoticeWrite::World { event, .. } => event,
            };
            append_with_state(&mut tx, event, state).await?;
        }
        tx.commit().await?;
        Ok(Finished::Done)
    }

    pub(crate) async fn fail_notification_row(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let n = on_pool!(&self.inner.db, p => match retry_at {
            Some(next) => sqlx::query("UPDATE server_notification SET last_error = $1, next_attempt_us = $2, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                .bind(error).bind(us(next)).bind(id).bind(owner)
                .execute(p).await?.rows_affected(),
            None => sqlx::query("UPDATE server_notification SET status = 'dead', last_error = $1, finished_at = $2, lease_owner = NULL, lease_until_us = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'pending'")
                .bind(error).bind(at.to_string()).bind(id).bind(owner)
                .execute(p).await?.rows_affected(),
        });
        Ok(n == 1)
    }

    pub(crate) async fn select_notifications(
        &self,
        status: Option<NotificationStatus>,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM server_notification WHERE ($1 = '' OR status = $1) AND ($2 = '' OR subject = $2) ORDER BY id DESC LIMIT $3"
        );
        let status = status.map_or("", NotificationStatus::as_str);
        let subject = subject.unwrap_or("");
        let rows: Vec<Raw> = on_pool!(&self.inner.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(status).bind(subject).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(raw!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter().map(notification).collect()
    }

    pub(crate) async fn retry_notification_row(
        &self,
        id: i64,
        by: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_notification SET status = 'pending', attempts = 0, next_attempt_us = $1, finished_at = NULL, lease_owner = NULL, lease_until_us = NULL WHERE id = $2 AND status = 'dead'")
                .bind(us(at)).bind(id)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.append_audit(
            AuditEvent::new("notification.retried", by)
                .details(serde_json::json!({ "notification": id })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

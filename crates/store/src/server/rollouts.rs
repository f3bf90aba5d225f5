//! Rollouts the server runs (`server_rollout`): one row per rollout with the guard's state, the
//! time it is next due and the replica holding its lease.
//!
//! Exactly-once across replicas rests on two conditions: a replica acts on a rollout only after
//! [`Store::lease_rollout_row`] gave it the lease (`UPDATE … WHERE id = ? AND (lease_until < now OR
//! lease_owner = me)`), and every write of the row ([`Store::save_rollout_row`]) is conditioned on
//! the version it read and on still holding the lease. A replica that lost either writes nothing.
//! Each write carries the audit event on the change that records it (promotion, hold, rollback,
//! completion, verification) and, for the transitions (`start`, `complete`, `roll-back`), the
//! change document's compare-and-swap — all in one transaction.

use changegate_audit::{AuditEvent, StateRef, StateTable};
use changegate_gate::ChangeState;
use sqlx::Row;

use super::{append_with_state, to_doc};
use crate::error::is_unique_violation;
use crate::{Result, Store, on_conn, on_pool};

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutRow {
    /// Rollout id.
    pub id: String,
    /// The change it deploys.
    pub change_id: String,
    /// Plan name.
    pub plan: String,
    /// Category level it runs under.
    pub category: i64,
    /// `running`, `held`, `verifying`, `completed`, `rolled-back`, `aborted`, `failed`.
    pub phase: String,
    /// Current step index, once started.
    pub step: Option<i64>,
    /// The worker still has work.
    pub active: bool,
    /// Version (incremented by each write).
    pub version: i64,
    /// The rollout's JSON document (the server's to read).
    pub state: String,
    /// Next due, unix microseconds.
    pub due_at: i64,
    /// The replica holding the lease.
    pub lease_owner: Option<String>,
    /// Lease expiry, unix microseconds.
    pub lease_until: i64,
    /// Who started it.
    pub started_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last write (RFC 3339).
    pub updated_at: String,
}

/// A rollout to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewRollout<'a> {
    /// Rollout id.
    pub id: &'a str,
    /// Change id.
    pub change_id: &'a str,
    /// Plan name.
    pub plan: &'a str,
    /// Category level.
    pub category: i64,
    /// Initial phase.
    pub phase: &'a str,
    /// JSON document.
    pub state: &'a str,
    /// First due, unix microseconds.
    pub due_at: i64,
    /// Who started it.
    pub started_by: &'a str,
}

/// What starting a rollout did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStart {
    /// Inserted with the change's `start` transition and its audit event.
    Started(Box<RolloutRow>),
    /// The change moved since it was read (compare-and-swap lost); nothing written.
    ChangeMoved,
    /// The change already has an active rollout; nothing written.
    AlreadyActive,
}

/// A write of a rollout row by the replica holding its lease.
#[derive(Debug, Clone, Copy)]
pub struct RolloutWrite<'a> {
    /// Rollout id.
    pub id: &'a str,
    /// Version read.
    pub expected_version: i64,
    /// The lease holder writing.
    pub owner: &'a str,
    /// New phase.
    pub phase: &'a str,
    /// New step.
    pub step: Option<i64>,
    /// Still active.
    pub active: bool,
    /// New JSON document.
    pub state: &'a str,
    /// Next due, unix microseconds.
    pub due_at: i64,
}

/// What a rollout write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutSaved {
    /// Written (with its event and change update); the new version.
    Saved(i64),
    /// The row moved or the lease is another replica's; nothing written.
    LeaseLost,
    /// The change moved since it was read; nothing written.
    ChangeMoved,
}

/// The columns every read selects, in `row_of!`'s order (a macro: SQL stays literal).
macro_rules! columns {
    () => {
        "id, change_id, plan, category, phase, step, active, version, state, due_at, lease_owner, lease_until, started_by, created_at, updated_at"
    };
}

macro_rules! row_of {
    ($r:expr) => {{
        let r = $r;
        RolloutRow {
            id: r.try_get(0)?,
            change_id: r.try_get(1)?,
            plan: r.try_get(2)?,
            category: r.try_get(3)?,
            phase: r.try_get(4)?,
            step: r.try_get(5)?,
            active: r.try_get::<i64, _>(6)? != 0,
            version: r.try_get(7)?,
            state: r.try_get(8)?,
            due_at: r.try_get(9)?,
            lease_owner: r.try_get(10)?,
            lease_until: r.try_get(11)?,
            started_by: r.try_get(12)?,
            created_at: r.try_get(13)?,
            updated_at: r.try_get(14)?,
        }
    }};
}

/// The change document's compare-and-swap inside a rollout transaction (the statement of
/// `cas_change`); returns the rows matched.
async fn cas_change_in(
    tx: &mut crate::Tx,
    id: &str,
    expected: i64,
    state: &ChangeState,
    doc: &str,
    now: &str,
) -> Result<u64> {
    Ok(on_conn!(tx.conn(), c => {
        sqlx::query("UPDATE server_change SET version = $1, status = $2, category = $3, title = $4, state = $5, updated_at = $6 WHERE id = $7 AND version = $8")
            .bind(expected + 1).bind(state.status.as_str()).bind(i64::from(state.change.classification.category))
            .bind(&state.change.title).bind(doc).bind(now).bind(id).bind(expected)
            .execute(&mut *c).await?.rows_affected()
    }))
}

impl Store {
    pub(crate) async fn insert_rollout_row(
        &self,
        new: NewRollout<'_>,
        change: (i64, &ChangeState),
        event: AuditEvent,
    ) -> Result<RolloutStart> {
        let (expected, state) = change;
        let doc = to_doc("change", state)?;
        let now = self.now().to_string();
        let mut tx = self.begin().await?;
        let n = cas_change_in(&mut tx, new.change_id, expected, state, &doc, &now).await?;
        if n != 1 {
            tx.rollback().await?;
            return Ok(RolloutStart::ChangeMoved);
        }
        let inserted = on_conn!(tx.conn(), c => {
            match sqlx::query("INSERT INTO server_rollout (id, change_id, plan, category, phase, step, active, version, state, due_at, lease_owner, lease_until, started_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, 1, 1, $6, $7, NULL, 0, $8, $9, $10)")
                .bind(new.id).bind(new.change_id).bind(new.plan).bind(new.category).bind(new.phase)
                .bind(new.state).bind(new.due_at).bind(new.started_by).bind(&now).bind(&now)
                .execute(&mut *c).await {
                Ok(_) => true,
                Err(e) if is_unique_violation(&e) => false,
                Err(e) => return Err(e.into()),
            }
        });
        if !inserted {
            tx.rollback().await?;
            return Ok(RolloutStart::AlreadyActive);
        }
        let stored = StateRef::of(
            StateTable::Change,
            new.change_id,
            expected + 1,
            doc.as_bytes(),
        );
        append_with_state(&mut tx, event, stored).await?;
        tx.commit().await?;
        Ok(self
            .select_rollout_row(new.id)
            .await?
            .map_or(RolloutStart::ChangeMoved, |r| {
                RolloutStart::Started(Box::new(r))
            }))
    }

    pub(crate) async fn select_rollout_row(&self, id: &str) -> Result<Option<RolloutRow>> {
        Ok(on_pool!(&self.inner.db, p => {
            match sqlx::query(concat!("SELECT ", columns!(), " FROM server_rollout WHERE id = $1")).bind(id).fetch_optional(p).await? {
                Some(r) => Some(row_of!(&r)),
                None => None,
            }
        }))
    }

    pub(crate) async fn select_change_rollouts(&self, change_id: &str) -> Result<Vec<RolloutRow>> {
        Ok(on_pool!(&self.inner.db, p => {
            let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM server_rollout WHERE change_id = $1 ORDER BY created_at, id")).bind(change_id).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(row_of!(r));
            }
            out
        }))
    }

    pub(crate) async fn select_due_rollouts(
        &self,
        now_us: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(on_pool!(&self.inner.db, p => {
            let rows = sqlx::query("SELECT id FROM server_rollout WHERE active = 1 AND due_at <= $1 AND (lease_until < $2 OR lease_owner = $3) ORDER BY due_at, id LIMIT $4")
                .bind(now_us).bind(now_us).bind(owner).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    pub(crate) async fn update_rollout_lease(
        &self,
        id: &str,
        owner: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let n = on_pool!(&self.inner.db, p => {
            sqlx::query("UPDATE server_rollout SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND active = 1 AND (lease_until < $4 OR lease_owner = $5)")
                .bind(owner).bind(until_us).bind(id).bind(now_us).bind(owner)
                .execute(p).await?.rows_affected()
        });
        Ok(n == 1)
    }

    pub(crate) async fn clear_rollout_lease(&self, id: &str, owner: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        on_pool!(&self.inner.db, p => {
            sqlx::query("UPDATE server_rollout SET lease_until = 0 WHERE id = $1 AND lease_owner = $2")
                .bind(id).bind(owner).execute(p).await?;
        });
        Ok(())
    }

    pub(crate) async fn save_rollout_row(
        &self,
        w: RolloutWrite<'_>,
        event: Option<AuditEvent>,
        change: Option<(&str, i64, &ChangeState)>,
    ) -> Result<RolloutSaved> {
        let now = self.now().to_string();
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_rollout SET phase = $1, step = $2, active = $3, version = version + 1, state = $4, due_at = $5, updated_at = $6 WHERE id = $7 AND version = $8 AND lease_owner = $9")
                .bind(w.phase).bind(w.step).bind(i64::from(w.active)).bind(w.state).bind(w.due_at)
                .bind(&now).bind(w.id).bind(w.expected_version).bind(w.owner)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(RolloutSaved::LeaseLost);
        }
        let mut stored = None;
        if let Some((change_id, expected, state)) = change {
            let doc = to_doc("change", state)?;
            if cas_change_in(&mut tx, change_id, expected, state, &doc, &now).await? != 1 {
                tx.rollback().await?;
                return Ok(RolloutSaved::ChangeMoved);
            }
            stored = Some(StateRef::of(
                StateTable::Change,
                change_id,
                expected + 1,
                doc.as_bytes(),
            ));
        }
        if let Some(event) = event {
            match stored {
                Some(s) => {
                    append_with_state(&mut tx, event, s).await?;
                }
                None => {
                    tx.append_audit(event).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(RolloutSaved::Saved(w.expected_version + 1))
    }
}

//! What the server sends back to GitHub (issue 15): per change, the ids of its `changegate` check
//! run and PR comment and the digest of what was last published (`server_github_publication`);
//! deployment protection rule requests and their scheduler (`server_github_gate`).
//!
//! A gate row is inserted once per delivery GUID, then leased by whichever replica's scheduler
//! claims it when it is due (on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite under `BEGIN
//! IMMEDIATE`, as deliveries are), and written back only by the lease holder: answered
//! (`approved`/`rejected`), `failed`, or `pending` again with a later due time. Nothing here is
//! audited by itself: the server records each answer as a gate decision in the audit log.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sqlx::Row;

use crate::{Db, Result, Store, StoreError, on_conn, on_pool};

/// The check run and comment kept for a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubPublication {
    /// The change.
    pub change_id: String,
    /// `owner/name`.
    pub repository: String,
    /// Pull request number.
    pub pr_number: i64,
    /// The head commit the check run is for.
    pub head_sha: String,
    /// The check run's id.
    pub check_run_id: Option<i64>,
    /// The PR comment's id.
    pub comment_id: Option<i64>,
    /// SHA-256 of the content last published.
    pub digest: String,
    /// When (RFC 3339).
    pub updated_at: String,
}

/// A deployment protection rule request to store.
#[derive(Debug, Clone, Copy)]
pub struct NewGithubGate<'a> {
    /// `X-GitHub-Delivery`.
    pub delivery_id: &'a str,
    /// `owner/name`.
    pub repository: &'a str,
    /// The environment deployed to.
    pub environment: &'a str,
    /// The deployment's commit.
    pub sha: &'a str,
    /// The workflow run waiting for the answer.
    pub run_id: i64,
    /// The App installation that received it.
    pub installation_id: Option<i64>,
    /// Received at (due at once).
    pub at: Timestamp,
}

/// A stored deployment protection rule request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubGate {
    /// Row id.
    pub row: i64,
    /// `X-GitHub-Delivery`.
    pub delivery_id: String,
    /// `owner/name`.
    pub repository: String,
    /// Environment.
    pub environment: String,
    /// Commit.
    pub sha: String,
    /// Workflow run id.
    pub run_id: i64,
    /// App installation.
    pub installation_id: Option<i64>,
    /// The change it was decided for, once found.
    pub change_id: Option<String>,
    /// `pending`, `approved`, `rejected`, `failed`.
    pub status: String,
    /// Digest of the last status report posted.
    pub report_digest: String,
    /// Failed callback attempts in a row.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Received at.
    pub created_at: Timestamp,
    /// When the scheduler looks again.
    pub due_at: Timestamp,
    /// When it was answered (RFC 3339).
    pub answered_at: Option<String>,
    /// What was answered (JSON).
    pub outcome: Option<serde_json::Value>,
}

/// A lease holder's write of a gate row.
#[derive(Debug, Clone)]
pub struct GithubGateUpdate<'a> {
    /// `pending` (due again at `due_at`), `approved`, `rejected` or `failed`.
    pub status: &'a str,
    /// When to look again (pending rows).
    pub due_at: Timestamp,
    /// The change found for it.
    pub change_id: Option<&'a str>,
    /// Digest of the last status report posted.
    pub report_digest: &'a str,
    /// Failed callback attempts in a row.
    pub attempts: i64,
    /// The failure, if this attempt failed.
    pub last_error: Option<&'a str>,
    /// Answered at (final states).
    pub answered_at: Option<Timestamp>,
    /// What was answered.
    pub outcome: Option<&'a serde_json::Value>,
}

const COLUMNS: &str = "id, delivery_id, repository, environment, sha, run_id, installation_id, change_id, status, report_digest, attempts, last_error, created_at_us, due_at_us, answered_at, outcome";

fn gate(r: &sqlx_row::GateRaw) -> Result<GithubGate> {
    let ts = |us: i64| {
        Timestamp::from_microsecond(us)
            .map_err(|e| StoreError::Corrupt(format!("github gate time: {e}")))
    };
    Ok(GithubGate {
        row: r.0,
        delivery_id: r.1.clone(),
        repository: r.2.clone(),
        environment: r.3.clone(),
        sha: r.4.clone(),
        run_id: r.5,
        installation_id: r.6,
        change_id: r.7.clone(),
        status: r.8.clone(),
        report_digest: r.9.clone(),
        attempts: r.10,
        last_error: r.11.clone(),
        created_at: ts(r.12)?,
        due_at: ts(r.13)?,
        answered_at: r.14.clone(),
        outcome: r.15.as_deref().and_then(|o| serde_json::from_str(o).ok()),
    })
}

/// The columns of a gate row, read once for both backends.
mod sqlx_row {
    pub(super) type GateRaw = (
        i64,
        String,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        String,
        String,
        i64,
        Option<String>,
        i64,
        i64,
        Option<String>,
        Option<String>,
    );
}

macro_rules! gate_row {
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
            $r.try_get(14)?,
            $r.try_get(15)?,
        )
    };
}

impl Store {
    pub(crate) async fn select_github_publication(
        &self,
        change_id: &str,
    ) -> Result<Option<GithubPublication>> {
        on_pool!(&self.inner.db, p => {
            let r = sqlx::query("SELECT change_id, repository, pr_number, head_sha, check_run_id, comment_id, digest, updated_at FROM server_github_publication WHERE change_id = $1")
                .bind(change_id).fetch_optional(p).await?;
            r.map(|r| Ok::<_, sqlx::Error>(GithubPublication {
                change_id: r.try_get(0)?,
                repository: r.try_get(1)?,
                pr_number: r.try_get(2)?,
                head_sha: r.try_get(3)?,
                check_run_id: r.try_get(4)?,
                comment_id: r.try_get(5)?,
                digest: r.try_get(6)?,
                updated_at: r.try_get(7)?,
            })).transpose().map_err(StoreError::from)
        })
    }

    pub(crate) async fn upsert_github_publication(&self, p: &GithubPublication) -> Result<()> {
        let _turn = self.write_turn().await;
        on_pool!(&self.inner.db, pool => {
            sqlx::query("INSERT INTO server_github_publication (change_id, repository, pr_number, head_sha, check_run_id, comment_id, digest, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (change_id) DO UPDATE SET repository = excluded.repository, pr_number = excluded.pr_number, head_sha = excluded.head_sha, check_run_id = excluded.check_run_id, comment_id = excluded.comment_id, digest = excluded.digest, updated_at = excluded.updated_at")
                .bind(&p.change_id).bind(&p.repository).bind(p.pr_number).bind(&p.head_sha)
                .bind(p.check_run_id).bind(p.comment_id).bind(&p.digest).bind(&p.updated_at)
                .execute(pool).await?;
        });
        Ok(())
    }

    pub(crate) async fn insert_github_gate_row(&self, g: NewGithubGate<'_>) -> Result<Option<i64>> {
        let at = g.at.as_microsecond();
        let _turn = self.write_turn().await;
        let inserted: Option<i64> = on_pool!(&self.inner.db, p => {
            sqlx::query("INSERT INTO server_github_gate (delivery_id, repository, environment, sha, run_id, installation_id, created_at, created_at_us, due_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (delivery_id) DO NOTHING RETURNING id")
                .bind(g.delivery_id).bind(g.repository).bind(g.environment).bind(g.sha)
                .bind(g.run_id).bind(g.installation_id).bind(g.at.to_string()).bind(at).bind(at)
                .fetch_optional(p).await?
                .map(|r| r.try_get::<i64, _>(0)).transpose()?
        });
        Ok(inserted)
    }

    pub(crate) async fn claim_github_gate_rows(
        &self,
        owner: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: i64,
    ) -> Result<Vec<GithubGate>> {
        let now_us = now.as_microsecond();
        let until = now.checked_add(lease).unwrap_or(now).as_microsecond();
        let pick = "SELECT g.id FROM server_github_gate g WHERE g.status = 'pending' AND g.due_at_us <= $3 AND (g.lease_until_us IS NULL OR g.lease_until_us < $3) ORDER BY g.due_at_us, g.id LIMIT $4";
        let lock = match self.inner.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE server_github_gate SET lease_owner = $1, lease_until_us = $2 WHERE id IN ({pick}{lock}) RETURNING {COLUMNS}"
        );
        let mut tx = self.begin().await?;
        let rows: Vec<sqlx_row::GateRaw> = on_conn!(tx.conn(), c => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(until).bind(now_us).bind(limit)
                .fetch_all(&mut *c).await?;
            rows.iter().map(|r| Ok(gate_row!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        tx.commit().await?;
        let mut out = rows.iter().map(gate).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|g| (g.due_at, g.row));
        Ok(out)
    }

    pub(crate) async fn update_github_gate_row(
        &self,
        row: i64,
        owner: &str,
        u: &GithubGateUpdate<'_>,
    ) -> Result<bool> {
        let outcome = u.outcome.map(|o| o.to_string());
        let _turn = self.write_turn().await;
        let n = on_pool!(&self.inner.db, p => {
            sqlx::query("UPDATE server_github_gate SET status = $1, due_at_us = $2, change_id = COALESCE($3, change_id), report_digest = $4, attempts = $5, last_error = $6, answered_at = COALESCE($7, answered_at), outcome = COALESCE($8, outcome), lease_owner = NULL, lease_until_us = NULL WHERE id = $9 AND lease_owner = $10 AND status = 'pending'")
                .bind(u.status).bind(u.due_at.as_microsecond()).bind(u.change_id).bind(u.report_digest)
                .bind(u.attempts).bind(u.last_error).bind(u.answered_at.map(|t| t.to_string()))
                .bind(outcome).bind(row).bind(owner)
                .execute(p).await?.rows_affected()
        });
        Ok(n == 1)
    }

    pub(crate) async fn wake_github_gate_rows(&self, sha: &str, now: Timestamp) -> Result<u64> {
        let now_us = now.as_microsecond();
        let _turn = self.write_turn().await;
        let n = on_pool!(&self.inner.db, p => {
            sqlx::query("UPDATE server_github_gate SET due_at_us = $1 WHERE sha = $2 AND status = 'pending' AND due_at_us > $1")
                .bind(now_us).bind(sha).execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    pub(crate) async fn select_github_gate_rows(&self, limit: i64) -> Result<Vec<GithubGate>> {
        let sql = format!("SELECT {COLUMNS} FROM server_github_gate ORDER BY id DESC LIMIT $1");
        let rows: Vec<sqlx_row::GateRaw> = on_pool!(&self.inner.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(gate_row!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.iter().map(gate).collect()
    }
}

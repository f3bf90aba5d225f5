//! Numbered, commented SQL migrations, embedded in the binary and run at open.
//!
//! Why not `sqlx::migrate!`: it needs sqlx's `macros` feature (compile-time database access
//! machinery) and one directory per backend anyway. This runner is small: each migration has a
//! SQLite and a PostgreSQL text; both run inside one transaction with the bookkeeping row, under
//! a lock (PostgreSQL advisory lock / SQLite `BEGIN IMMEDIATE`) so several processes starting at
//! once migrate exactly once. An applied migration whose text changed is refused (edit by
//! adding a new migration, never by changing an old one).

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Db, Result, StoreError};

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, ascending, never reused.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQLite text.
    pub sqlite: &'static str,
    /// PostgreSQL text.
    pub postgres: &'static str,
}

/// Every migration, in order. Add new ones at the end (files `NNNN_name.sql` in both
/// `migrations/sqlite` and `migrations/postgres`).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "audit_log",
        sqlite: include_str!("../migrations/sqlite/0001_audit_log.sql"),
        postgres: include_str!("../migrations/postgres/0001_audit_log.sql"),
    },
    // Server domain tables (changes, world, tokens, idempotency); numbered 100+ so the log's own
    // migrations keep the low numbers.
    Migration {
        version: 100,
        name: "server_domain",
        sqlite: include_str!("../migrations/sqlite/0100_server_domain.sql"),
        postgres: include_str!("../migrations/postgres/0100_server_domain.sql"),
    },
    // Token kinds (person, integration, admin), scopes, expiry, revocation time and revoker.
    Migration {
        version: 110,
        name: "token_scopes",
        sqlite: include_str!("../migrations/sqlite/0110_token_scopes.sql"),
        postgres: include_str!("../migrations/postgres/0110_token_scopes.sql"),
    },
    // Token rows carry a version; their writes log the row's state (audit verify proves them).
    Migration {
        version: 120,
        name: "token_state",
        sqlite: include_str!("../migrations/sqlite/0120_token_state.sql"),
        postgres: include_str!("../migrations/postgres/0120_token_state.sql"),
    },
    // Server-run rollouts: guard state, due time and lease per rollout (issue 14).
    Migration {
        version: 130,
        name: "server_rollouts",
        sqlite: include_str!("../migrations/sqlite/0130_server_rollouts.sql"),
        postgres: include_str!("../migrations/postgres/0130_server_rollouts.sql"),
    },
    // Incoming webhook deliveries (PagerDuty, Alertmanager), processed by a background worker.
    Migration {
        version: 170,
        name: "deliveries",
        sqlite: include_str!("../migrations/sqlite/0170_deliveries.sql"),
        postgres: include_str!("../migrations/postgres/0170_deliveries.sql"),
    },
    // What changegate sends back to GitHub: check run and PR comment ids per change, deployment
    // protection rule requests and their scheduler (issue 15).
    Migration {
        version: 180,
        name: "github_out",
        sqlite: include_str!("../migrations/sqlite/0180_github_out.sql"),
        postgres: include_str!("../migrations/postgres/0180_github_out.sql"),
    },
    // The notification outbox and scheduler: rows written with the audit event that causes
    // them, sent by a background worker (issue 16, "Out").
    Migration {
        version: 200,
        name: "notifications",
        sqlite: include_str!("../migrations/sqlite/0200_notifications.sql"),
        postgres: include_str!("../migrations/postgres/0200_notifications.sql"),
    },
    // Dashboard sign-in sessions (issue 18): digest of the cookie secret, token, CSRF, expiry.
    Migration {
        version: 350,
        name: "dashboard_sessions",
        sqlite: include_str!("../migrations/sqlite/0350_dashboard_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0350_dashboard_sessions.sql"),
    },
    // Changes by commit: indexes over the head and merge commit of the change document, for
    // the deployment and CI webhooks' SHA lookups (issue 15).
    Migration {
        version: 400,
        name: "change_commits",
        sqlite: include_str!("../migrations/sqlite/0400_change_commits.sql"),
        postgres: include_str!("../migrations/postgres/0400_change_commits.sql"),
    },
    // Reports the server generated on its schedule (issue 17), once per report (ADR 0029).
    Migration {
        version: 410,
        name: "server_report",
        sqlite: include_str!("../migrations/sqlite/0410_server_report.sql"),
        postgres: include_str!("../migrations/postgres/0410_server_report.sql"),
    },
    // Dashboard sessions opened with a GitHub identity (issue 18): the login and user id.
    Migration {
        version: 420,
        name: "dashboard_github_sessions",
        sqlite: include_str!("../migrations/sqlite/0420_dashboard_github_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0420_dashboard_github_sessions.sql"),
    },
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS changegate_migrations (
    version     BIGINT PRIMARY KEY,
    name        TEXT   NOT NULL,
    checksum    TEXT   NOT NULL,
    applied_at  TEXT   NOT NULL DEFAULT CURRENT_TIMESTAMP
)";

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

macro_rules! apply {
    ($conn:expr, $field:ident) => {{
        sqlx::raw_sql(BOOKKEEPING).execute(&mut *$conn).await?;
        let rows = sqlx::query("SELECT version, checksum FROM changegate_migrations").fetch_all(&mut *$conn).await?;
        let applied: std::collections::HashMap<i64, String> =
            rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?))).collect::<Result<_, sqlx::Error>>()?;
        for m in MIGRATIONS {
            let sum = checksum(m.$field);
            match applied.get(&m.version) {
                Some(old) if *old == sum => continue,
                Some(_) => {
                    return Err(StoreError::Migration(format!(
                        "migration {:04}_{} was changed after it was applied; add a new migration instead",
                        m.version, m.name
                    )))
                }
                None => {}
            }
            sqlx::raw_sql(m.$field).execute(&mut *$conn).await?;
            sqlx::query("INSERT INTO changegate_migrations (version, name, checksum) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(&sum)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}

pub(crate) async fn run(db: &Db) -> Result<()> {
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            apply!(tx, sqlite);
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.changegate_migrations'))").execute(&mut *tx).await?;
            apply!(tx, postgres);
            tx.commit().await?;
        }
    }
    Ok(())
}

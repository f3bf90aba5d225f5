//! Test fixtures: a fresh database per test — a SQLite file in a temp dir, or a unique schema
//! in the local PostgreSQL (postgres://postgres@127.0.0.1:5432/test, or $CHANGEGATE_TEST_PG) —
//! a deterministic clock, and raw SQL access for tampering like an insider would.
#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use changegate_store::{Store, StoreConfig};
use jiff::Timestamp;

pub const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn pg_url() -> String {
    std::env::var("CHANGEGATE_TEST_PG").unwrap_or_else(|_| PG_DEFAULT.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub kind: Kind,
    pub schema: String,
    pub clock: Arc<AtomicI64>,
}

/// 2026-01-05T09:00:00Z; each clock read advances one second.
pub const T0_US: i64 = 1_767_603_600_000_000;

impl TestDb {
    pub fn new(kind: Kind) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
        TestDb {
            dir,
            kind,
            schema,
            clock: Arc::new(AtomicI64::new(T0_US)),
        }
    }

    pub fn config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.dir.path());
        if self.kind == Kind::Postgres {
            c = c.postgres(pg_url());
            c.pg_schema = Some(self.schema.clone());
        }
        let clock = self.clock.clone();
        c.clock = Some(Arc::new(move || {
            Timestamp::from_microsecond(clock.fetch_add(1_000_000, Ordering::SeqCst)).unwrap()
        }));
        c.checkpoint_every = 8;
        c
    }

    pub async fn open(&self) -> Store {
        Store::open(self.config()).await.unwrap()
    }

    pub fn set_time(&self, t: Timestamp) {
        self.clock.store(t.as_microsecond(), Ordering::SeqCst);
    }

    /// Run raw SQL (several statements) on the database, outside the store.
    pub async fn exec(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("changegate.db"));
                let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Kind::Postgres => {
                let opts = sqlx::postgres::PgConnectOptions::from_str(&pg_url())
                    .unwrap()
                    .options([("search_path", self.schema.as_str())]);
                let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }

    /// Like [`TestDb::exec`] but returns the error text instead of panicking.
    pub async fn try_exec(&self, sql: &str) -> Result<(), String> {
        let r = match self.kind {
            Kind::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("changegate.db"));
                let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
                let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .map(|_| ());
                pool.close().await;
                r
            }
            Kind::Postgres => {
                let opts = sqlx::postgres::PgConnectOptions::from_str(&pg_url())
                    .unwrap()
                    .options([("search_path", self.schema.as_str())]);
                let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
                let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .map(|_| ());
                pool.close().await;
                r
            }
        };
        r.map_err(|e| e.to_string())
    }

    /// Drop the triggers that guard the audit tables (what an insider with DB access can do).
    pub async fn drop_guards(&self) {
        let sql = match self.kind {
            Kind::Sqlite => {
                "DROP TRIGGER audit_leaf_no_update; DROP TRIGGER audit_leaf_no_delete; DROP TRIGGER audit_record_no_update; DROP TRIGGER audit_node_no_update; DROP TRIGGER audit_node_no_delete; DROP TRIGGER audit_checkpoint_no_update;"
            }
            Kind::Postgres => {
                "DROP TRIGGER audit_leaf_no_change ON audit_leaf; DROP TRIGGER audit_record_no_update ON audit_record; DROP TRIGGER audit_node_no_change ON audit_node; DROP TRIGGER audit_checkpoint_no_update ON audit_checkpoint;"
            }
        };
        self.exec(sql).await;
    }

    /// Remove the PostgreSQL schema (SQLite: the temp dir goes with `self`).
    pub async fn cleanup(self) {
        if self.kind == Kind::Postgres {
            let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.schema
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

/// Generate one test per backend from an `async fn(Kind)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Kind::Postgres).await
                }
            )*
        }
    };
}

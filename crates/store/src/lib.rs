//! changegate's persistence: one [`Store`] over SQLite (the default, a file in the data
//! directory) or PostgreSQL (for several server replicas), with numbered migrations run at
//! open, and transactions in which every state change and its audit event commit together.
//!
//! Why an enum of pools and runtime-checked queries rather than `sqlx::Any` or two crates:
//! `Any` loses BLOB/BYTEA and 64-bit typing details we rely on, and two crates behind a trait
//! would double every query. Here each query is written once with `$n` placeholders (which
//! both SQLite and PostgreSQL accept) and run through [`on_conn!`], which expands the same
//! code for each backend so both are type-checked; one test suite runs against both.
//!
//! Writing state: `store.transaction(async |tx| { ...domain writes via tx...;
//! tx.append_audit(event).await })`. `append_audit` locks the log head (`SELECT ... FOR UPDATE`
//! on PostgreSQL; SQLite transactions start `BEGIN IMMEDIATE`, so writers queue on the file
//! lock), so concurrent writers in several processes produce one consistent log.
//!
//! No SQL outside this crate: other crates reach the database through typed methods. The server's
//! persistence is [`ServerStore`] (module [`server`]), which it holds as `Arc<dyn ServerStore>`.
//! A new feature adds its tables as the next numbered migration in `migrations/{sqlite,postgres}/`
//! and a line in [`migrate::MIGRATIONS`], its queries in a module here written through [`Tx`]
//! with [`on_conn!`] (ending each state change with `tx.append_audit(...)`), and a test that runs
//! on both databases.
#![deny(missing_docs)]

pub mod audit;
mod error;
mod keys;
pub mod migrate;
pub mod report;
pub mod rollout;
pub mod server;
mod tx;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use changegate_audit::{FieldPolicy, LogSigner, VerifierKey};
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use audit::{EventFilter, Head, PruneOutcome, StoredEvent};
pub use error::{StoreCode, StoreError};
pub use rollout::{RolloutEvent, RolloutPhase};
pub use server::{
    BoxFuture, ChangeAndWorld, ChangeSummary, NewRollout, NewTokenRow, Revocation, RolloutRow,
    RolloutSaved, RolloutStart, RolloutWrite, ServerStore, SessionRow, TokenInfo, TokenKind,
    TokenRow, Versioned,
};
pub use server::{ChangeWrite, changes_at_commit_sql};
pub use server::{
    Completion, Delivery, DeliverySource, DeliveryStatus, NewDelivery, Received, WorldWrite,
};
pub use server::{
    Finished, NewNotification, NoticeWrite, Notification, NotificationRouter, NotificationStatus,
};
pub use server::{GithubGate, GithubGateUpdate, GithubPublication, NewGithubGate};
pub use tx::{Appended, Tx, TxConn};
pub use verify::Adopted;
pub use writer::{WriteTurn, background, spawn_background};

/// Name of the SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "changegate.db";
/// Name of the log's private key file inside the data directory (mode 0600).
pub const KEY_FILE: &str = "audit-log.key";
/// Name of the log's public verifier key file inside the data directory.
pub const PUBLIC_KEY_FILE: &str = "audit-log.pub";

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The clock the store stamps events with (injected, so tests never depend on "now").
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to open the store.
#[derive(Clone)]
pub struct StoreConfig {
    /// Data directory: SQLite file and log key.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of the SQLite file.
    pub database_url: Option<String>,
    /// PostgreSQL schema to use (created if missing); tests use one per test.
    pub pg_schema: Option<String>,
    /// The policy's audit fields; events with other fields are refused.
    pub fields: Option<FieldPolicy>,
    /// Clock; `None` is the system clock.
    pub clock: Option<Clock>,
    /// Keep a signed checkpoint every this many appends (and whenever one is published).
    pub checkpoint_every: u64,
    /// Create the key if missing (true for servers and appends; false to only read a log).
    pub create_key: bool,
}

impl StoreConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            database_url: None,
            pg_schema: None,
            fields: None,
            clock: None,
            checkpoint_every: 1024,
            create_key: true,
        }
    }

    /// Use PostgreSQL.
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("pg_schema", &self.pg_schema)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same code against whichever pool or connection is behind `$db`, binding it to
/// `$c` (a `&SqlitePool`/`&PgPool` for a [`Store`]'s pool, `&mut SqliteConnection` /
/// `&mut PgConnection` for a [`TxConn`]). The body is expanded once per backend, so it is
/// type-checked for both.
#[macro_export]
macro_rules! on_conn {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::TxConn::Sqlite($c) => $body,
            $crate::TxConn::Postgres($c) => $body,
        }
    };
}

macro_rules! on_pool {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($c) => $body,
            $crate::Db::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_pool;

pub(crate) struct Inner {
    pub(crate) db: Db,
    /// The SQLite database file, when there is one on disk (not an in-memory database):
    /// `audit verify` reads it on its own connections (see `verify::scan`).
    pub(crate) sqlite_file: Option<PathBuf>,
    pub(crate) signer: Option<LogSigner>,
    pub(crate) verifier: VerifierKey,
    pub(crate) origin: String,
    pub(crate) clock: Clock,
    pub(crate) fields: Option<FieldPolicy>,
    pub(crate) checkpoint_every: u64,
    /// The server's notification routing function, called inside every append.
    pub(crate) outbox: std::sync::RwLock<Option<NotificationRouter>>,
    /// SQLite: this process's writers, one at a time (see `writer`); PostgreSQL: none.
    pub(crate) writer: Option<writer::WriterGate>,
    /// SQLite: the group-commit queue of webhook delivery inserts (ADR 0032).
    pub(crate) inserts: std::sync::Mutex<server::InsertQueue>,
}

/// The store. Cheap to clone (shared pools).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?}, {})", self.backend(), self.inner.origin)
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl Store {
    /// Open (and create, migrate, initialise) the store.
    pub async fn open(cfg: StoreConfig) -> Result<Store> {
        let (signer, verifier) = keys::load_or_create(&cfg.data_dir, cfg.create_key)?;
        let mut sqlite_file = None;
        let db = match &cfg.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let mut opts = PgConnectOptions::from_str(url)?;
                if let Some(schema) = &cfg.pg_schema {
                    if !valid_schema(schema) {
                        return Err(StoreError::Invalid(format!(
                            "schema name `{schema}` must be [a-z_][a-z0-9_]*"
                        )));
                    }
                    let admin = PgPoolOptions::new()
                        .max_connections(1)
                        .connect_with(opts.clone())
                        .await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "CREATE SCHEMA IF NOT EXISTS {schema}"
                    )))
                    .execute(&admin)
                    .await
                    .or_else(|e| {
                        // Two processes creating the same schema at once: one wins, both go on.
                        if e.as_database_error()
                            .and_then(|d| d.code())
                            .is_some_and(|c| c == "23505" || c == "42P06")
                        {
                            Ok(Default::default())
                        } else {
                            Err(e)
                        }
                    })?;
                    admin.close().await;
                    opts = opts.options([("search_path", schema.as_str())]);
                }
                Db::Postgres(
                    PgPoolOptions::new()
                        .max_connections(8)
                        .connect_with(opts)
                        .await?,
                )
            }
            Some(url) if url.starts_with("sqlite:") => {
                let opts = SqliteConnectOptions::from_str(url)?;
                sqlite_file = Some(opts.get_filename().to_path_buf());
                Db::Sqlite(open_sqlite(opts).await?)
            }
            Some(url) => {
                return Err(StoreError::Invalid(format!(
                    "unsupported database URL `{url}`: use postgres://... or sqlite:PATH"
                )));
            }
            None => {
                std::fs::create_dir_all(&cfg.data_dir).map_err(|e| StoreError::Io {
                    context: format!("create {}", cfg.data_dir.display()),
                    source: e,
                })?;
                let file = cfg.data_dir.join(SQLITE_FILE);
                let pool = open_sqlite(SqliteConnectOptions::new().filename(&file)).await?;
                sqlite_file = Some(file);
                Db::Sqlite(pool)
            }
        };
        // Only a real file can be opened a second time (an in-memory database's name is not
        // one); absolute, so a later change of directory does not matter.
        let sqlite_file = sqlite_file
            .filter(|f| f.is_file())
            .and_then(|f| std::path::absolute(f).ok());
        migrate::run(&db).await?;
        let origin = verifier.name().to_string();
        let clock = cfg
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(Timestamp::now));
        let writer = matches!(db, Db::Sqlite(_)).then(writer::WriterGate::default);
        let store = Store {
            inner: Arc::new(Inner {
                writer,
                inserts: Default::default(),
                db,
                sqlite_file,
                signer,
                verifier,
                origin,
                clock,
                fields: cfg.fields.clone(),
                checkpoint_every: cfg.checkpoint_every.max(1),
                outbox: std::sync::RwLock::new(None),
            }),
        };
        store.init_log().await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The log's origin (checkpoint first line, also the key name).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The public key that verifies this log's checkpoints.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.inner.verifier
    }

    /// Wait for this task's turn to write (SQLite; at once on PostgreSQL). Hold it over a
    /// single-statement write on the pool; [`Store::begin`] takes it for a transaction.
    pub async fn write_turn(&self) -> Option<WriteTurn> {
        match &self.inner.writer {
            Some(g) => Some(g.turn().await),
            None => None,
        }
    }

    /// The store's current time.
    pub fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// Close the pools (waits for connections to be returned).
    pub async fn close(&self) {
        on_pool!(&self.inner.db, p => p.close().await)
    }
}

async fn open_sqlite(opts: SqliteConnectOptions) -> Result<SqlitePool> {
    let opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        // Large scans (verify, export) cross from the SQLite worker thread in batches.
        .row_buffer_size(4096)
        // Verification reads the whole log: map it and keep a large cache instead of copying
        // every page through read(2) into a 2 MB cache.
        .pragma("mmap_size", "4294967296")
        .pragma("cache_size", "-131072")
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await?)
}

/// The default data directory: `$CHANGEGATE_DATA` or `./changegate-data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("CHANGEGATE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("changegate-data"))
}

/// Read the public verifier key a data directory holds (for offline proof checks).
pub fn read_verifier_key(data_dir: &Path) -> Result<VerifierKey> {
    keys::read_public(data_dir)
}

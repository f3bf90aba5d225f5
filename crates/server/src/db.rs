//! The server's persistence, over `changegate_store`: change documents with compare-and-swap
//! versions, the shared world document, tokens and idempotency keys. Every write commits with its
//! audit event in one transaction (`Tx::append_audit`).

use std::path::Path;

use changegate_audit::AuditEvent;
use changegate_gate::{ChangeState, WorldState};
use changegate_store::{Backend, Store, StoreConfig, StoreError, Tx, on_conn};
use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row;

use crate::error::ApiError;
use crate::token::NewToken;

/// A value with the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version (incremented by each write).
    pub version: i64,
}

/// A row of `GET /api/v1/changes`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSummary {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
    /// Category level.
    pub category: i64,
    /// Version.
    pub version: i64,
    /// Last write.
    pub updated_at: String,
}

/// A stored token.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Digest of the secret.
    pub digest: String,
    /// Person.
    pub person: String,
    /// Admin.
    pub admin: bool,
    /// Revoked.
    pub revoked: bool,
}

/// Database handle (cheap to clone).
#[derive(Clone, Debug)]
pub struct Db {
    store: Store,
    tokens: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (TokenRow, std::time::Instant)>>,
    >,
}

/// How long a looked-up token is trusted without asking the database again (a revoked token
/// stops working within this time).
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Run the same read against whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        if let Some($p) = $store.sqlite_pool() {
            $body
        } else if let Some($p) = $store.pg_pool() {
            $body
        } else {
            unreachable!("a store has one pool")
        }
    };
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => ApiError::Unavailable,
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(StoreError::Db(e))
    }
}

fn json_err(e: serde_json::Error) -> ApiError {
    ApiError::internal(format!("stored document does not parse: {e}"))
}

impl Db {
    /// Open the store (SQLite in `data_dir`, or PostgreSQL at `database_url`) and migrate it.
    pub async fn open(
        data_dir: &Path,
        database_url: Option<&str>,
        policy: &changegate_policy::Policy,
    ) -> Result<Db, StoreError> {
        let mut cfg = StoreConfig::new(data_dir);
        cfg.database_url = database_url.map(str::to_string);
        cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
            &policy.audit.fields,
        ));
        Self::open_with(cfg).await
    }

    /// Open with a full store configuration (tests: a PostgreSQL schema per test).
    pub async fn open_with(cfg: StoreConfig) -> Result<Db, StoreError> {
        Ok(Db {
            store: Store::open(cfg).await?,
            tokens: Default::default(),
        })
    }

    /// The underlying store (audit log access).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// A trivial query.
    pub async fn ping(&self) -> Result<(), ApiError> {
        on_pool!(self.store, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    /// How many tokens exist.
    pub async fn token_count(&self) -> Result<i64, ApiError> {
        Ok(
            on_pool!(self.store, p => sqlx::query("SELECT COUNT(*) FROM server_token").fetch_one(p).await?.try_get::<i64, _>(0)?),
        )
    }

    /// Store a new token (and audit its creation, without the secret).
    pub async fn insert_token(
        &self,
        t: &NewToken,
        person: &str,
        admin: bool,
    ) -> Result<(), ApiError> {
        let mut tx = self.store.begin().await?;
        let now = self.store.now().to_string();
        on_conn!(tx.conn(), c => {
            sqlx::query("INSERT INTO server_token (id, digest, person, admin, revoked, created_at) VALUES ($1, $2, $3, $4, FALSE, $5)")
                .bind(&t.id).bind(&t.digest).bind(person).bind(admin).bind(&now)
                .execute(&mut *c).await?;
        });
        let event = AuditEvent::new("token.created", "changegate")
            .details(serde_json::json!({ "token_id": t.id, "person": person, "admin": admin }));
        tx.append_audit(event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Look a token up by id (cached for [`TOKEN_CACHE_TTL`]).
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, ApiError> {
        if let Some((row, at)) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(row.clone()));
        }
        let row = self.token_uncached(id).await?;
        if let Some(r) = &row {
            let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(id.to_string(), (r.clone(), std::time::Instant::now()));
        }
        Ok(row)
    }

    async fn token_uncached(&self, id: &str) -> Result<Option<TokenRow>, ApiError> {
        let row = on_pool!(self.store, p => {
            match sqlx::query("SELECT digest, person, admin, revoked FROM server_token WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some(TokenRow { digest: r.try_get(0)?, person: r.try_get(1)?, admin: r.try_get(2)?, revoked: r.try_get(3)? }),
                None => None,
            }
        });
        Ok(row)
    }

    /// A change and its version.
    pub async fn change(&self, id: &str) -> Result<Option<Versioned<ChangeState>>, ApiError> {
        let row: Option<(String, i64)> = on_pool!(self.store, p => {
            match sqlx::query("SELECT state, version FROM server_change WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                None => None,
            }
        });
        row.map(|(state, version)| {
            Ok(Versioned {
                value: serde_json::from_str(&state).map_err(json_err)?,
                version,
            })
        })
        .transpose()
    }

    /// A change and the world, read together in one query (the decision endpoint's hot path).
    pub async fn change_and_world(
        &self,
        id: &str,
    ) -> Result<Option<(Versioned<ChangeState>, WorldState)>, ApiError> {
        let row: Option<(String, i64, String)> = on_pool!(self.store, p => {
            match sqlx::query("SELECT c.state, c.version, w.state FROM server_change c, server_world w WHERE c.id = $1 AND w.id = 1")
                .bind(id).fetch_optional(p).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
                None => None,
            }
        });
        row.map(|(state, version, world)| {
            Ok((
                Versioned {
                    value: serde_json::from_str(&state).map_err(json_err)?,
                    version,
                },
                serde_json::from_str(&world).map_err(json_err)?,
            ))
        })
        .transpose()
    }

    /// The change created with this idempotency key by this person, if any.
    pub async fn idempotent(&self, person: &str, key: &str) -> Result<Option<String>, ApiError> {
        Ok(on_pool!(self.store, p => {
            match sqlx::query("SELECT change_id FROM server_idempotency WHERE person = $1 AND key = $2").bind(person).bind(key).fetch_optional(p).await? {
                Some(r) => Some(r.try_get::<String, _>(0)?),
                None => None,
            }
        }))
    }

    /// Insert a new change with its audit event (and idempotency key).
    pub async fn create_change(
        &self,
        state: &ChangeState,
        event: AuditEvent,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Versioned<ChangeState>, ApiError> {
        let doc = serde_json::to_string(state).map_err(ApiError::internal)?;
        let now = self.store.now().to_string();
        let c = &state.change;
        let mut tx = self.store.begin().await?;
        if let Some((person, key)) = idempotency {
            let inserted = on_conn!(tx.conn(), conn => {
                sqlx::query("INSERT INTO server_idempotency (person, key, change_id) VALUES ($1, $2, $3) ON CONFLICT (person, key) DO NOTHING")
                    .bind(person).bind(key).bind(&c.id).execute(&mut *conn).await?.rows_affected()
            });
            if inserted == 0 {
                // A concurrent duplicate won: return what it created.
                tx.rollback().await?;
                let id = self
                    .idempotent(person, key)
                    .await?
                    .ok_or_else(|| ApiError::internal("idempotency row vanished"))?;
                return self
                    .change(&id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("change {id}")));
            }
        }
        on_conn!(tx.conn(), conn => {
            sqlx::query("INSERT INTO server_change (id, version, status, category, title, state, created_at, updated_at) VALUES ($1, 1, $2, $3, $4, $5, $6, $7)")
                .bind(&c.id).bind(state.status.as_str()).bind(i64::from(c.classification.category)).bind(&c.title).bind(&doc).bind(&now).bind(&now)
                .execute(&mut *conn).await?;
        });
        tx.append_audit(event).await?;
        tx.commit().await?;
        Ok(Versioned {
            value: state.clone(),
            version: 1,
        })
    }

    /// Write a change if it is still at `expected` (compare-and-swap), with its audit event.
    /// `None` when another writer got there first.
    pub async fn update_change(
        &self,
        id: &str,
        expected: i64,
        state: &ChangeState,
        event: AuditEvent,
    ) -> Result<Option<Versioned<ChangeState>>, ApiError> {
        let doc = serde_json::to_string(state).map_err(ApiError::internal)?;
        let now = self.store.now().to_string();
        let mut tx = self.store.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_change SET version = $1, status = $2, category = $3, title = $4, state = $5, updated_at = $6 WHERE id = $7 AND version = $8")
                .bind(expected + 1).bind(state.status.as_str()).bind(i64::from(state.change.classification.category))
                .bind(&state.change.title).bind(&doc).bind(&now).bind(id).bind(expected)
                .execute(&mut *c).await?.rows_affected()
        });
        finish_cas(tx, n, event, state, expected + 1).await
    }

    /// The shared world document.
    pub async fn world(&self) -> Result<Versioned<WorldState>, ApiError> {
        let (state, version): (String, i64) = on_pool!(self.store, p => {
            let r = sqlx::query("SELECT state, version FROM server_world WHERE id = 1").fetch_one(p).await?;
            (r.try_get(0)?, r.try_get(1)?)
        });
        Ok(Versioned {
            value: serde_json::from_str(&state).map_err(json_err)?,
            version,
        })
    }

    /// Write the world if it is still at `expected`, with its audit event.
    pub async fn update_world(
        &self,
        expected: i64,
        world: &WorldState,
        event: AuditEvent,
    ) -> Result<Option<Versioned<WorldState>>, ApiError> {
        let doc = serde_json::to_string(world).map_err(ApiError::internal)?;
        let mut tx = self.store.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_world SET version = $1, state = $2 WHERE id = 1 AND version = $3")
                .bind(expected + 1).bind(&doc).bind(expected)
                .execute(&mut *c).await?.rows_affected()
        });
        finish_cas(tx, n, event, world, expected + 1).await
    }

    /// Every change, newest first.
    pub async fn list_changes(&self) -> Result<Vec<ChangeSummary>, ApiError> {
        let rows = on_pool!(self.store, p => {
            let rows = sqlx::query("SELECT id, title, status, category, version, updated_at FROM server_change ORDER BY created_at DESC, id").fetch_all(p).await?;
            rows.iter().map(|r| Ok(ChangeSummary {
                id: r.try_get(0)?, title: r.try_get(1)?, status: r.try_get(2)?, category: r.try_get(3)?, version: r.try_get(4)?, updated_at: r.try_get(5)?,
            })).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Append an event on its own (a recorded gate decision).
    pub async fn record(&self, event: AuditEvent) -> Result<(), ApiError> {
        self.store.append(event).await?;
        Ok(())
    }

    /// Run a closure in a store transaction (for callers that add their own writes).
    pub async fn begin(&self) -> Result<Tx, ApiError> {
        Ok(self.store.begin().await?)
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> Timestamp {
        self.store.now()
    }
}

/// End a compare-and-swap write: when exactly one row matched the expected version, append the
/// audit event and commit both; otherwise roll back (`None`: another writer got there first).
async fn finish_cas<T: Clone>(
    mut tx: Tx,
    rows: u64,
    event: AuditEvent,
    value: &T,
    version: i64,
) -> Result<Option<Versioned<T>>, ApiError> {
    if rows != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.append_audit(event).await?;
    tx.commit().await?;
    Ok(Some(Versioned {
        value: value.clone(),
        version,
    }))
}

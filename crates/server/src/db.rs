//! The server's handle on persistence: the store behind [`ServerStore`] (held as
//! `Arc<dyn ServerStore>`) and a short-lived cache of looked-up tokens. No SQL here: every query
//! is a [`ServerStore`] method in `changegate-store`, tested there on SQLite and PostgreSQL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use changegate_store::{NewTokenRow, ServerStore, Store, StoreConfig, StoreError, TokenRow};

use crate::token::NewToken;

pub use changegate_store::{ChangeSummary, Versioned};

/// How long a looked-up token is trusted without asking the database again (a revoked token
/// stops working within this time).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Database handle (cheap to clone). Dereferences to the [`ServerStore`] it holds.
#[derive(Clone, Debug)]
pub struct Db {
    store: Arc<dyn ServerStore>,
    tokens: Arc<Mutex<HashMap<String, (TokenRow, Instant)>>>,
}

impl std::ops::Deref for Db {
    type Target = dyn ServerStore;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Db {
    /// Over any implementation of the server's persistence.
    pub fn new(store: Arc<dyn ServerStore>) -> Db {
        Db {
            store,
            tokens: Default::default(),
        }
    }

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
        Ok(Db::new(Arc::new(Store::open(cfg).await?)))
    }

    /// The audit log (head, verification, proofs).
    pub fn store(&self) -> &Store {
        self.store.audit_log()
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend().as_str()
    }

    /// Store a new token (and audit its creation, without the secret).
    pub async fn insert_token(
        &self,
        t: &NewToken,
        person: &str,
        admin: bool,
    ) -> Result<(), StoreError> {
        self.store
            .create_token(NewTokenRow {
                id: &t.id,
                digest: &t.digest,
                person,
                admin,
            })
            .await
    }

    /// Look a token up by id (cached for [`TOKEN_CACHE_TTL`]).
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        if let Some((row, at)) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(row.clone()));
        }
        let row = self.store.find_token(id).await?;
        if let Some(r) = &row {
            let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(id.to_string(), (r.clone(), Instant::now()));
        }
        Ok(row)
    }
}

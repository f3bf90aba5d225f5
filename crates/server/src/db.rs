//! The server's handle on persistence: the store behind [`ServerStore`] (held as
//! `Arc<dyn ServerStore>`). No SQL here: every query is a [`ServerStore`] method in
//! `changegate-store`, tested there on SQLite and PostgreSQL.
//!
//! Tokens are looked up on every request, not cached: a token revoked by `changegate token
//! revoke` (another process), by another replica or by `DELETE /api/v1/tokens/{id}` stops
//! working on the very next request. (An earlier 5 s cache could serve a revoked token, and no
//! invalidation inside one process reaches the others.) The lookup is one primary-key read.

use std::path::Path;
use std::sync::Arc;

use changegate_store::{NewTokenRow, ServerStore, Store, StoreConfig, StoreError, TokenRow};
use jiff::Timestamp;

use crate::token::{NewToken, Subject, TokenError, TokenSpec};

pub use changegate_store::{ChangeSummary, Versioned};

/// Database handle (cheap to clone). Dereferences to the [`ServerStore`] it holds.
#[derive(Clone, Debug)]
pub struct Db {
    store: Arc<dyn ServerStore>,
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
        Db { store }
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

    /// Store a new person token (`admin`: an admin token) and audit its creation, without the
    /// secret. The person must be a [`crate::token::valid_name`].
    pub async fn insert_token(
        &self,
        t: &NewToken,
        person: &str,
        admin: bool,
    ) -> Result<(), TokenError> {
        let subject = if admin {
            Subject::Admin(person.to_string())
        } else {
            Subject::Person(person.to_string())
        };
        let spec = TokenSpec {
            subject,
            expires_at: None,
        };
        self.store_token(t, &spec, self.store.now(), "changegate")
            .await
    }

    /// Mint and store a token for `spec` (validated against `now`), audited as issued by `by`;
    /// its plaintext is shown once.
    pub async fn issue_token(
        &self,
        spec: &TokenSpec,
        now: Timestamp,
        by: &str,
    ) -> Result<NewToken, TokenError> {
        let t = crate::token::mint();
        self.store_token(&t, spec, now, by).await?;
        Ok(t)
    }

    async fn store_token(
        &self,
        t: &NewToken,
        spec: &TokenSpec,
        now: Timestamp,
        by: &str,
    ) -> Result<(), TokenError> {
        let (kind, person, scopes) = spec.validate(now)?;
        self.store
            .create_token(NewTokenRow {
                id: &t.id,
                digest: &t.digest,
                kind,
                person,
                scopes: &scopes,
                expires_at: spec.expires_at,
                issued_by: by,
            })
            .await?;
        Ok(())
    }

    /// Look a token up by id (on every request: see the module documentation).
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.store.find_token(id).await
    }
}

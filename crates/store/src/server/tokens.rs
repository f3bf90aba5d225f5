//! API tokens (only digests) and the database's liveness.
//!
//! A token row carries its kind (`person`, `integration`, `admin`), the scope names of an
//! integration (stored comma-separated), an optional expiry and its revocation (time and who).
//! The store keeps what it is given; the server decides what is valid (names, scopes, expiry)
//! and what a token may do.

use changegate_audit::{AuditEvent, StateRef, StateTable};
use jiff::Timestamp;
use sqlx::Row;

use super::{NewTokenRow, Revocation, TokenInfo, TokenKind, TokenRow, append_with_state};
use crate::verify::{STATE_TOKENS, token_doc_from_sqlx};
use crate::{Result, Store, StoreError, on_conn, on_pool};

/// The token row `id` as this transaction wrote it, as the state its audit event records (the
/// row read back, so the hash is of exactly what `audit verify` will read).
pub(crate) async fn token_state(tx: &mut crate::Tx, id: &str) -> Result<StateRef> {
    let sql = format!("{STATE_TOKENS} WHERE id = $1");
    let t = on_conn!(tx.conn(), c => {
        let r = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_one(&mut *c).await?;
        token_doc_from_sqlx!(&r)
    });
    Ok(StateRef::of(
        StateTable::Token,
        id,
        t.version,
        t.doc().as_bytes(),
    ))
}

fn kind(s: &str) -> Result<TokenKind> {
    TokenKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("token kind `{s}` is unknown")))
}

fn scopes(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn time(s: Option<String>) -> Result<Option<Timestamp>> {
    s.map(|t| {
        t.parse::<Timestamp>()
            .map_err(|e| StoreError::Corrupt(format!("token time `{t}` does not parse: {e}")))
    })
    .transpose()
}

impl Store {
    pub(crate) async fn ping_db(&self) -> Result<()> {
        on_pool!(&self.inner.db, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    pub(crate) async fn count_tokens(&self) -> Result<i64> {
        Ok(
            on_pool!(&self.inner.db, p => sqlx::query("SELECT COUNT(*) FROM server_token")
            .fetch_one(p)
            .await?
            .try_get::<i64, _>(0)?),
        )
    }

    pub(crate) async fn insert_token(&self, t: NewTokenRow<'_>) -> Result<()> {
        if t.scopes.iter().any(|s| s.is_empty() || s.contains(',')) {
            return Err(StoreError::Invalid(format!(
                "token scopes {:?} must be non-empty names without commas",
                t.scopes
            )));
        }
        let mut tx = self.begin().await?;
        let now = self.now().to_string();
        let admin = t.kind == TokenKind::Admin;
        let scopes = t.scopes.join(",");
        let expires = t.expires_at.map(|e| e.to_string());
        on_conn!(tx.conn(), c => {
            sqlx::query("INSERT INTO server_token (id, digest, person, admin, revoked, created_at, kind, scopes, expires_at) VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7, $8)")
                .bind(t.id).bind(t.digest).bind(t.person).bind(admin).bind(&now)
                .bind(t.kind.as_str()).bind(&scopes).bind(&expires)
                .execute(&mut *c).await?;
        });
        let event = AuditEvent::new("token.created", t.issued_by).details(serde_json::json!({
            "token_id": t.id,
            "person": t.person,
            "admin": admin,
            "kind": t.kind,
            "scopes": t.scopes,
            "expires_at": expires,
        }));
        let stored = token_state(&mut tx, t.id).await?;
        append_with_state(&mut tx, event, stored).await?;
        tx.commit().await
    }

    pub(crate) async fn select_token(&self, id: &str) -> Result<Option<TokenRow>> {
        type Raw = (String, String, bool, bool, String, String, Option<String>);
        let row: Option<Raw> = on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT digest, person, admin, revoked, kind, scopes, expires_at FROM server_token WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?)),
                None => None,
            }
        });
        row.map(|(digest, person, admin, revoked, k, s, expires)| {
            Ok(TokenRow {
                digest,
                person,
                admin,
                revoked,
                kind: kind(&k)?,
                scopes: scopes(&s),
                expires_at: time(expires)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn select_tokens(&self) -> Result<Vec<TokenInfo>> {
        type Raw = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Raw> = on_pool!(&self.inner.db, p => {
            let rows = sqlx::query("SELECT id, kind, person, scopes, created_at, expires_at, revoked_at, revoked_by FROM server_token ORDER BY created_at, id").fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter()
            .map(
                |(id, k, name, s, created_at, expires, revoked_at, revoked_by)| {
                    Ok(TokenInfo {
                        id,
                        kind: kind(&k)?,
                        name,
                        scopes: scopes(&s),
                        created_at,
                        expires_at: time(expires)?,
                        revoked_at,
                        revoked_by,
                    })
                },
            )
            .collect()
    }

    pub(crate) async fn update_token_revoked(&self, id: &str, by: &str) -> Result<Revocation> {
        let now = self.now().to_string();
        let mut tx = self.begin().await?;
        let n = on_conn!(tx.conn(), c => {
            sqlx::query("UPDATE server_token SET version = version + 1, revoked = TRUE, revoked_at = $1, revoked_by = $2 WHERE id = $3 AND NOT revoked")
                .bind(&now).bind(by).bind(id)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Ok(match self.select_token(id).await? {
                Some(_) => Revocation::AlreadyRevoked,
                None => Revocation::NotFound,
            });
        }
        let event = AuditEvent::new("token.revoked", by)
            .details(serde_json::json!({ "token_id": id, "revoked_at": now }));
        let stored = token_state(&mut tx, id).await?;
        append_with_state(&mut tx, event, stored).await?;
        tx.commit().await?;
        Ok(Revocation::Revoked)
    }
}

//! API tokens (only digests) and the database's liveness.

use changegate_audit::AuditEvent;
use sqlx::Row;

use super::{NewTokenRow, TokenRow};
use crate::{Result, Store, on_conn, on_pool};

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
        let mut tx = self.begin().await?;
        let now = self.now().to_string();
        on_conn!(tx.conn(), c => {
            sqlx::query("INSERT INTO server_token (id, digest, person, admin, revoked, created_at) VALUES ($1, $2, $3, $4, FALSE, $5)")
                .bind(t.id).bind(t.digest).bind(t.person).bind(t.admin).bind(&now)
                .execute(&mut *c).await?;
        });
        let event = AuditEvent::new("token.created", "changegate")
            .details(serde_json::json!({ "token_id": t.id, "person": t.person, "admin": t.admin }));
        tx.append_audit(event).await?;
        tx.commit().await
    }

    pub(crate) async fn select_token(&self, id: &str) -> Result<Option<TokenRow>> {
        Ok(on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT digest, person, admin, revoked FROM server_token WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some(TokenRow { digest: r.try_get(0)?, person: r.try_get(1)?, admin: r.try_get(2)?, revoked: r.try_get(3)? }),
                None => None,
            }
        }))
    }
}

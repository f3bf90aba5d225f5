//! Dashboard sessions (issue 18) and the dashboard's bulk reads.
//!
//! A session row holds the SHA-256 digest of the cookie's secret (never the secret), the API token
//! it was opened with (or the GitHub login and id of a GitHub sign-in), the person, the per-session CSRF token and the expiry (unix microseconds).
//! The server decides what is valid; the store keeps and returns rows.

use changegate_gate::ChangeState;
use sqlx::Row;

use super::{ChangeSummary, SessionRow, Versioned, parse_doc};
use crate::{Result, Store, on_pool};

impl Store {
    pub(crate) async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        let _turn = self.write_turn().await;
        on_pool!(&self.inner.db, p => {
            sqlx::query("INSERT INTO dashboard_session (id, token_id, person, csrf, created_us, expires_us, github_login, github_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&s.id).bind(&s.token_id).bind(&s.person).bind(&s.csrf).bind(s.created_us).bind(s.expires_us)
                .bind(s.github.as_ref().map(|g| g.0.clone())).bind(s.github.as_ref().map(|g| g.1))
                .execute(p).await?;
        });
        Ok(())
    }

    pub(crate) async fn select_session(&self, id: &str) -> Result<Option<SessionRow>> {
        Ok(on_pool!(&self.inner.db, p => {
            match sqlx::query("SELECT id, token_id, person, csrf, created_us, expires_us, github_login, github_id FROM dashboard_session WHERE id = $1").bind(id).fetch_optional(p).await? {
                Some(r) => Some(SessionRow {
                    id: r.try_get(0)?, token_id: r.try_get(1)?, person: r.try_get(2)?, csrf: r.try_get(3)?,
                    created_us: r.try_get(4)?, expires_us: r.try_get(5)?,
                    github: match (r.try_get::<Option<String>, _>(6)?, r.try_get::<Option<i64>, _>(7)?) {
                        (Some(login), Some(uid)) => Some((login, uid)),
                        _ => None,
                    },
                }),
                None => None,
            }
        }))
    }

    pub(crate) async fn delete_session_row(&self, id: &str) -> Result<bool> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(&self.inner.db, p => {
            sqlx::query("DELETE FROM dashboard_session WHERE id = $1").bind(id).execute(p).await?.rows_affected() == 1
        }))
    }

    pub(crate) async fn delete_expired_session_rows(&self, now_us: i64) -> Result<u64> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(&self.inner.db, p => {
            sqlx::query("DELETE FROM dashboard_session WHERE expires_us <= $1").bind(now_us).execute(p).await?.rows_affected()
        }))
    }

    pub(crate) async fn select_change_docs(
        &self,
        ids: &[String],
    ) -> Result<Vec<Versioned<ChangeState>>> {
        let mut out = Vec::with_capacity(ids.len());
        // In chunks, so a cold cache of 10,000 changes is a few queries, not 10,000.
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT state, version FROM server_change WHERE id IN ({})",
                placeholders.join(", ")
            );
            let rows: Vec<(String, i64)> = on_pool!(&self.inner.db, p => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            for (state, version) in rows {
                out.push(Versioned {
                    value: parse_doc("change", &state)?,
                    version,
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn select_change_rows(&self, ids: &[String]) -> Result<Vec<super::ChangeRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, title, status, category, version, updated_at, state FROM server_change WHERE id IN ({})",
                placeholders.join(", ")
            );
            let rows: Vec<(ChangeSummary, String)> = on_pool!(&self.inner.db, p => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?.iter().map(|r| Ok((ChangeSummary {
                    id: r.try_get(0)?, title: r.try_get(1)?, status: r.try_get(2)?, category: r.try_get(3)?, version: r.try_get(4)?, updated_at: r.try_get(5)?,
                }, r.try_get(6)?))).collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            for (summary, state) in rows {
                let version = summary.version;
                out.push((
                    summary,
                    Versioned {
                        value: parse_doc("change", &state)?,
                        version,
                    },
                ));
            }
        }
        Ok(out)
    }

    pub(crate) async fn select_active_rollout_changes(&self) -> Result<Vec<String>> {
        Ok(on_pool!(&self.inner.db, p => {
            sqlx::query("SELECT DISTINCT change_id FROM server_rollout WHERE active = 1 ORDER BY change_id")
                .fetch_all(p).await?.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    pub(crate) async fn select_recent_rollout_changes(&self, limit: i64) -> Result<Vec<String>> {
        Ok(on_pool!(&self.inner.db, p => {
            let rows = sqlx::query("SELECT change_id, MAX(updated_at) AS u FROM server_rollout GROUP BY change_id ORDER BY u DESC LIMIT $1")
                .bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }
}

//! How the server authenticates what it sends to GitHub, and the one place it sends it.
//!
//! Two ways: a personal (or fine-grained) token for a single repository (`CHANGEGATE_GITHUB_TOKEN`,
//! as for reading pull requests), or a GitHub App (`serve --github-app-id ID
//! --github-app-key-file PEM`). As an App the server signs a JWT (RS256, issuer the App id, issued
//! 60 s in the past against clock drift, valid 9 minutes: GitHub accepts at most 10) with the
//! App's private key, finds the repository's installation (`GET /repos/{owner}/{repo}/installation`,
//! or the installation a webhook names) and exchanges the JWT for an installation token
//! (`POST /app/installations/{id}/access_tokens`). Tokens are cached per installation until
//! [`REFRESH_BEFORE`] before their `expires_at`, by the server's clock; a `401` drops the cached
//! token and the call is made once more with a new one. No token or key is logged or put in an error.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::github::GITHUB_TIMEOUT;

/// A cached installation token is renewed this long before it expires.
pub const REFRESH_BEFORE: SignedDuration = SignedDuration::from_mins(5);

/// What went wrong talking to GitHub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutError {
    /// No answer (connection refused, timeout).
    #[error("GitHub cannot be reached: {0}")]
    Unreachable(String),
    /// GitHub answered an error status.
    #[error("GitHub answered {status} to {what}: {message}")]
    Status {
        /// The status.
        status: u16,
        /// Which call.
        what: String,
        /// GitHub's `message`.
        message: String,
    },
    /// The App could not authenticate (key, installation).
    #[error("GitHub App authentication failed: {0}")]
    Auth(String),
    /// Bad input (a callback URL that is not the configured API's, …): not retried.
    #[error("{0}")]
    Invalid(String),
}

impl OutError {
    /// Worth trying again later: no answer, a 5xx, a rate limit (403/429), an expired token (401).
    pub fn retryable(&self) -> bool {
        match self {
            OutError::Unreachable(_) | OutError::Auth(_) => true,
            OutError::Status { status, .. } => {
                *status >= 500 || matches!(*status, 401 | 403 | 408 | 429)
            }
            OutError::Invalid(_) => false,
        }
    }
}

/// A GitHub App's credentials and its token cache.
pub struct AppAuth {
    /// The App id (the JWT's issuer).
    pub app_id: u64,
    key: jsonwebtoken::EncodingKey,
    installations: Mutex<HashMap<String, u64>>,
    tokens: Mutex<HashMap<u64, (String, Timestamp)>>,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .field("key", &"<set>")
            .finish_non_exhaustive()
    }
}

impl AppAuth {
    /// From the App id and its private key (PEM, PKCS#1 as GitHub hands it out, or PKCS#8).
    pub fn from_pem(app_id: u64, pem: &[u8]) -> Result<AppAuth, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem)
            .map_err(|e| format!("the GitHub App private key is not an RSA key in PEM: {e}"))?;
        Ok(AppAuth {
            app_id,
            key,
            installations: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    /// The App's JWT at `now`: RS256, `iat` 60 s before `now`, `exp` 9 minutes after, `iss` the
    /// App id.
    pub fn jwt(&self, now: Timestamp) -> Result<String, OutError> {
        let iat = now.as_second() - 60;
        let claims = serde_json::json!({
            "iat": iat,
            "exp": now.as_second() + 9 * 60,
            "iss": self.app_id.to_string(),
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|e| OutError::Auth(format!("cannot sign the App JWT: {e}")))
    }
}

/// The credential of outgoing calls.
#[derive(Debug)]
pub enum Auth {
    /// A personal or fine-grained token (one repository).
    Token(String),
    /// A GitHub App.
    App(AppAuth),
}

/// Where and how the server publishes to GitHub (`AppState::github_out`).
#[derive(Debug)]
pub struct Outgoing {
    /// API base URL (`https://api.github.com`, a GHES `/api/v3`, a test's stand-in).
    pub api: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Credential.
    pub auth: Auth,
    /// The dashboard's base URL: check runs and comments link to `{base_url}/changes/{id}`.
    pub base_url: Option<String>,
    /// The check run's name.
    pub check_name: String,
    /// A waiting protection rule with no known next slot is re-evaluated this often.
    pub recheck: SignedDuration,
    /// A protection rule left waiting longer than this is rejected by the sweeper (GitHub fails
    /// one left unanswered for 30 days).
    pub max_wait: SignedDuration,
    /// The scheduler's lease, batch, backoff and attempts.
    pub worker: crate::deliveries::WorkerConfig,
    /// Members of GitHub teams read for `[integrations.github] teams`.
    pub teams: super::teams::TeamCache,
}

impl Outgoing {
    /// Publishing to `api` with `auth`, defaults otherwise.
    pub fn new(api: impl Into<String>, auth: Auth) -> Outgoing {
        Outgoing {
            api: api.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            auth,
            base_url: None,
            check_name: "changegate".into(),
            recheck: SignedDuration::from_mins(15),
            max_wait: SignedDuration::from_hours(29 * 24),
            worker: crate::deliveries::WorkerConfig {
                max_attempts: 12,
                ..Default::default()
            },
            teams: Default::default(),
        }
    }

    /// The link to a change on the dashboard (`{base_url}/changes/{id}`).
    pub fn change_link(&self, id: &str) -> Option<String> {
        self.base_url
            .as_deref()
            .map(|b| format!("{}/changes/{id}", b.trim_end_matches('/')))
    }

    /// The token for calls about `repo` (`owner/name`) at `now`; `installation` when a webhook
    /// named it.
    pub async fn token(
        &self,
        now: Timestamp,
        repo: &str,
        installation: Option<u64>,
    ) -> Result<String, OutError> {
        let app = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App(app) => app,
        };
        let key = repo.to_ascii_lowercase();
        let installation = match installation {
            Some(i) => i,
            None => {
                let known = app
                    .installations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .copied();
                match known {
                    Some(i) => i,
                    None => {
                        let jwt = app.jwt(now)?;
                        let (_, v) = self
                            .call_with(
                                &jwt,
                                reqwest::Method::GET,
                                &format!("/repos/{repo}/installation"),
                                None,
                                "the installation lookup",
                            )
                            .await?;
                        let id = v["id"].as_u64().ok_or_else(|| {
                            OutError::Auth(format!("GitHub answered no installation id for {repo}"))
                        })?;
                        app.installations
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key.clone(), id);
                        id
                    }
                }
            }
        };
        if let Some((t, exp)) = app
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&installation)
            && exp
                .checked_sub(REFRESH_BEFORE)
                .is_ok_and(|fresh_until| now < fresh_until)
        {
            return Ok(t.clone());
        }
        let jwt = app.jwt(now)?;
        let (_, v) = self
            .call_with(
                &jwt,
                reqwest::Method::POST,
                &format!("/app/installations/{installation}/access_tokens"),
                Some(&serde_json::json!({})),
                "the installation token request",
            )
            .await?;
        let token = v["token"]
            .as_str()
            .ok_or_else(|| OutError::Auth("GitHub answered no installation token".into()))?
            .to_string();
        let exp: Timestamp = v["expires_at"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| OutError::Auth("GitHub answered no token expiry".into()))?;
        app.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(installation, (token.clone(), exp));
        Ok(token)
    }

    /// Forget the cached token of `repo`'s installation (GitHub refused it).
    pub fn invalidate(&self, repo: &str, installation: Option<u64>) {
        if let Auth::App(app) = &self.auth {
            let id = installation.or_else(|| {
                app.installations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&repo.to_ascii_lowercase())
                    .copied()
            });
            if let Some(id) = id {
                app.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
        }
    }

    /// A call about `repo` at `now`: `path` under the API, JSON in and out. A `401` drops the
    /// cached installation token; as an App the call is then made once more with a newly minted
    /// one (GitHub revokes installation tokens, e.g. when the App's permissions change, before
    /// their `expires_at`), and a second `401` is the answer.
    #[allow(clippy::too_many_arguments)] // one call site shape: who, where, what, for the log
    pub async fn call(
        &self,
        now: Timestamp,
        repo: &str,
        installation: Option<u64>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(u16, Value), OutError> {
        let token = self.token(now, repo, installation).await?;
        let r = self
            .call_with(&token, method.clone(), path, body, what)
            .await;
        if !matches!(&r, Err(OutError::Status { status: 401, .. })) {
            return r;
        }
        self.invalidate(repo, installation);
        if !matches!(self.auth, Auth::App(_)) {
            return r;
        }
        tracing::info!(
            repo,
            what,
            "GitHub refused the installation token; minting a new one"
        );
        let token = self.token(now, repo, installation).await?;
        let r = self.call_with(&token, method, path, body, what).await;
        if matches!(&r, Err(OutError::Status { status: 401, .. })) {
            self.invalidate(repo, installation);
        }
        r
    }

    async fn call_with(
        &self,
        bearer: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(u16, Value), OutError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "changegate")
            .bearer_auth(bearer)
            .timeout(GITHUB_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, api = %self.api, what, "GitHub API unreachable");
            OutError::Unreachable(format!("{what}: no answer from {}", self.api))
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let message = v["message"].as_str().unwrap_or("no message").to_string();
            tracing::warn!(status, api = %self.api, what, %message, "GitHub answered an error");
            return Err(OutError::Status {
                status,
                what: what.to_string(),
                message,
            });
        }
        Ok((status, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors() {
        let st = |status| OutError::Status {
            status,
            what: "x".into(),
            message: "m".into(),
        };
        assert!(st(502).retryable() && st(429).retryable() && st(401).retryable());
        assert!(!st(422).retryable() && !st(404).retryable());
        assert!(OutError::Unreachable("x".into()).retryable());
        assert!(!OutError::Invalid("x".into()).retryable());
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_refused_without_echoing_it() {
        let e = AppAuth::from_pem(1, b"not a key SECRET").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
    }
}

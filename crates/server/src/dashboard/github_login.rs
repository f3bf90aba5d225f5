//! Sign in with GitHub (where configured): GitHub's OAuth web application flow, the identity
//! mapped to a person by the policy's `[people.NAME] github` (and `github_id`).
//!
//! 1. `GET /login/github`: a random 256-bit `state` and a random 256-bit PKCE `code_verifier`
//!    (RFC 7636) go into the `cg_oauth` cookie as `STATE.VERIFIER` (HttpOnly, `SameSite=Lax` so
//!    it comes back on GitHub's top-level redirect, `Path=/login/github`, 10 minutes) and the
//!    browser is sent to `{web}/login/oauth/authorize` with the client id, the callback URL
//!    (`{dashboard_url}/login/github/callback`), that state and the verifier's S256
//!    `code_challenge`. No scope is asked for: `GET /user` needs none, and the server never
//!    acts on GitHub as the person.
//! 2. `GET /login/github/callback?code&state`: the state must equal the cookie's (constant time),
//!    else `403 github-oauth-state-invalid` and nobody is signed in. The code is exchanged at
//!    `{web}/login/oauth/access_token` (client id and secret, the same callback URL and the
//!    cookie's `code_verifier`: a code that leaked from the redirect — a log, a referrer, a
//!    malicious extension — cannot be exchanged by anyone without this browser's cookie), then
//!    `GET {api}/user` with the access token gives the login and numeric id. The policy maps them
//!    to a person ([`changegate_policy::Policy::person_of_github`]); an unmapped user is refused
//!    (`403 github-user-unmapped`). The access token is dropped at once: it is not stored.
//! 3. The session is a dashboard session like a token's, with no API token: it keeps the login
//!    and id, and every request checks that the policy still maps them to the same person
//!    ([`super::session`]). It acts as that person with the person's roles, never as an admin.
//!
//! What a GitHub session does is audited with `token: github:LOGIN`, so the record says which
//! identity vouched for it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;

use super::session::{self, cookie, random_hex, same_secret};
use super::{pages::error_page, pages::urlencode, see_other};
use crate::AppState;
use crate::error::ErrorCode;

/// The OAuth state cookie.
pub const STATE_COOKIE: &str = "cg_oauth";
/// How long a sign-in may take between leaving for GitHub and coming back.
pub const STATE_LIFETIME_SECS: i64 = 600;
const TIMEOUT: Duration = Duration::from_secs(10);

/// GitHub sign-in settings (`serve --github-oauth-client-id`, `--github-oauth-client-secret-file`,
/// `--dashboard-url`).
#[derive(Clone)]
pub struct GithubLogin {
    /// The OAuth app's client id.
    pub client_id: String,
    /// The OAuth app's client secret (never logged, never shown).
    pub client_secret: String,
    /// GitHub's web base URL (`https://github.com`; a GHES host; a test's stand-in).
    pub web: String,
    /// GitHub's API base URL (`https://api.github.com`).
    pub api: String,
    /// The dashboard's public base URL; the callback is `{dashboard_url}/login/github/callback`
    /// (the OAuth app's registered callback URL).
    pub dashboard_url: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl std::fmt::Debug for GithubLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubLogin")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<set>")
            .field("web", &self.web)
            .field("api", &self.api)
            .field("dashboard_url", &self.dashboard_url)
            .finish()
    }
}

impl GithubLogin {
    /// Settings for an OAuth app; `web` and `api` are GitHub's (trailing slashes dropped).
    pub fn new(
        client_id: &str,
        client_secret: &str,
        web: &str,
        api: &str,
        dashboard_url: &str,
    ) -> Arc<GithubLogin> {
        Arc::new(GithubLogin {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            web: web.trim_end_matches('/').to_string(),
            api: api.trim_end_matches('/').to_string(),
            dashboard_url: dashboard_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        })
    }

    /// The callback URL registered with the OAuth app.
    pub fn callback(&self) -> String {
        format!("{}/login/github/callback", self.dashboard_url)
    }

    /// The authorize URL for `state` and the PKCE `verifier` (sent as its S256 challenge).
    pub fn authorize_url(&self, state: &str, verifier: &str) -> String {
        format!(
            "{}/login/oauth/authorize?client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256&allow_signup=false",
            self.web,
            urlencode(&self.client_id),
            urlencode(&self.callback()),
            urlencode(state),
            pkce_challenge(verifier),
        )
    }
}

/// The S256 code challenge of a PKCE verifier: base64url (no padding) of its SHA-256.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Why the exchange or the user lookup failed (for the page; never a secret).
#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    /// GitHub did not answer.
    #[error("GitHub did not answer ({0})")]
    Unreachable(String),
    /// GitHub answered with an error.
    #[error("GitHub refused: {0}")]
    Refused(String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The fields of `GET /user` the server uses.
#[derive(Debug, Clone, Deserialize)]
pub struct GithubUser {
    /// Login.
    pub login: String,
    /// Numeric user id (stable across renames).
    pub id: u64,
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn unreachable(e: reqwest::Error) -> OauthError {
    OauthError::Unreachable(if e.is_timeout() {
        "timed out".into()
    } else {
        "connection failed".into()
    })
}

impl GithubLogin {
    /// Exchange `code` for an access token (`POST {web}/login/oauth/access_token`), proving the
    /// PKCE `verifier` the authorize request's challenge was made from.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, OauthError> {
        let resp = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web))
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "changegate")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", self.callback().as_str()),
                ("code_verifier", verifier),
            ]))
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let answer: TokenAnswer = resp.json().await.map_err(|_| {
            OauthError::Refused(format!("HTTP {status}, not the JSON GitHub sends"))
        })?;
        match (answer.access_token, answer.error) {
            (Some(t), None) if !t.is_empty() => Ok(t),
            (_, Some(e)) => Err(OauthError::Refused(match answer.error_description {
                Some(d) => format!("{e}: {d}"),
                None => e,
            })),
            _ => Err(OauthError::Refused(format!(
                "HTTP {status} without an access token"
            ))),
        }
    }

    /// The user the access token belongs to (`GET {api}/user`).
    pub async fn user(&self, access_token: &str) -> Result<GithubUser, OauthError> {
        let resp = self
            .http
            .get(format!("{}/user", self.api))
            .bearer_auth(access_token)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header(header::USER_AGENT, "changegate")
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(OauthError::Refused(format!(
                "GET /user answered HTTP {status}"
            )));
        }
        resp.json()
            .await
            .map_err(|_| OauthError::Refused("GET /user answered without a login and id".into()))
    }
}

fn state_cookie(value: &str, max_age: i64, secure: bool) -> axum::http::HeaderValue {
    let s = format!(
        "{STATE_COOKIE}={value}; Path=/login/github; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    axum::http::HeaderValue::from_str(&s)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static(""))
}

fn not_configured() -> Response {
    let code = ErrorCode::GithubOauthNotConfigured;
    error_page(
        code.status(),
        code.as_str(),
        "This server does not offer GitHub sign-in; sign in with an API token.",
    )
}

/// `GET /login/github`: leave for GitHub's authorize page with a fresh state.
pub async fn start(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(gh) = s.dashboard.github_login.clone() else {
        return not_configured();
    };
    let (state, verifier) = (random_hex(), random_hex());
    let mut r = see_other(&gh.authorize_url(&state, &verifier));
    r.headers_mut().append(
        header::SET_COOKIE,
        state_cookie(
            &format!("{state}.{verifier}"),
            STATE_LIFETIME_SECS,
            session::secure(&s, &headers),
        ),
    );
    r
}

/// Query of the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    /// The code to exchange.
    #[serde(default)]
    pub code: Option<String>,
    /// The state sent with the authorize redirect.
    #[serde(default)]
    pub state: Option<String>,
    /// GitHub's error (`access_denied` when the person cancelled).
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /login/github/callback`: check the state, exchange the code, read the user, map it to a
/// person, open the session.
pub async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(gh) = s.dashboard.github_login.clone() else {
        return not_configured();
    };
    let secure = session::secure(&s, &headers);
    let refuse = |code: ErrorCode, message: &str| {
        let mut r = error_page(code.status(), code.as_str(), message);
        // The state is single-use: whatever happened, it is gone.
        r.headers_mut()
            .append(header::SET_COOKIE, state_cookie("", 0, secure));
        r
    };
    let (expected, verifier) = cookie(&headers, STATE_COOKIE)
        .and_then(|c| c.split_once('.'))
        .unwrap_or(("", ""));
    let presented = q.state.as_deref().unwrap_or("");
    if expected.is_empty()
        || verifier.is_empty()
        || presented.is_empty()
        || !same_secret(expected, presented)
    {
        tracing::warn!("dashboard: GitHub sign-in with a state that is not this browser's");
        return refuse(
            ErrorCode::GithubOauthStateInvalid,
            "This GitHub sign-in did not come back with the state this browser was sent with \
             (it expired, was started in another browser, or was forged). Nobody was signed in. \
             Start again from the sign-in page.",
        );
    }
    if let Some(e) = q.error.as_deref() {
        return refuse(
            ErrorCode::GithubOauthFailed,
            &format!("GitHub did not sign you in ({e}). Nobody was signed in."),
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse(
            ErrorCode::GithubOauthFailed,
            "GitHub came back without a code. Nobody was signed in.",
        );
    };
    let user = match gh.exchange(code, verifier).await {
        Ok(token) => gh.user(&token).await,
        Err(e) => Err(e),
    };
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: GitHub sign-in failed");
            return refuse(
                ErrorCode::GithubOauthFailed,
                &format!("{e}. Nobody was signed in."),
            );
        }
    };
    let Some(person) = s
        .policy
        .person_of_github(&user.login, Some(user.id))
        .map(str::to_string)
    else {
        tracing::warn!(login = %user.login, id = user.id, "dashboard: GitHub user is no person of the policy");
        return refuse(
            ErrorCode::GithubUserUnmapped,
            &format!(
                "GitHub user {} (id {}) is no person of the policy ([people.NAME] github); \
                 nobody was signed in. Ask for the login to be added to your [people] entry, or \
                 sign in with an API token.",
                user.login, user.id
            ),
        );
    };
    let id = i64::try_from(user.id).unwrap_or(i64::MAX);
    let mut r = match session::open(
        &s,
        &headers,
        "",
        &person,
        Some((user.login.clone(), id)),
        None,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    tracing::info!(login = %user.login, %person, "dashboard sign-in with GitHub");
    r.headers_mut()
        .append(header::SET_COOKIE, state_cookie("", 0, secure));
    r
}

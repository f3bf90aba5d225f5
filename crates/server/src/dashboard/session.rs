//! Signing in and out, the session cookie, and the CSRF token.
//!
//! Sign-in takes an API token (form field `token`) and checks it exactly as the API's
//! [`Caller`] extractor does (shape, digest in constant time, revoked, expired). A session is a
//! random 256-bit secret in a cookie (`cg_session`: HttpOnly, `SameSite=Strict`, `Path=/`,
//! `Secure` behind TLS); the server stores only its SHA-256 digest, with the token id, the person,
//! a per-session CSRF token and the expiry ([`changegate_store::SessionRow`]). Every request
//! re-reads the session and its token, so a revoked or expired token ends its sessions at once,
//! and the session's expiry is judged by the server's clock.
//!
//! Every form carries the session's CSRF token (`csrf`), compared in constant time
//! ([`csrf_ok`]); the sign-in form carries a token that must equal the `cg_login` cookie
//! (double submit), so nobody can sign a browser in to someone else's account either.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use changegate_store::{SessionRow, TokenKind};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{html, see_other};
use crate::AppState;
use crate::extract::Caller;

/// The session cookie.
pub const SESSION_COOKIE: &str = "cg_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "cg_login";

/// A signed-in person: the caller the session's token stands for, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who, with the token's authority (exactly what the API would see for that token).
    pub caller: Caller,
    /// The CSRF token of the session (every form carries it).
    pub csrf: String,
    /// The digest of the session secret (the row's id).
    pub session_id: String,
    /// When the session ends.
    pub expires: Timestamp,
}

/// Why a request has no [`Viewer`]: the browser is sent to the sign-in page (`expired` says why).
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, or one the server does not know.
    Missing,
    /// The session (or its token) expired or the token was revoked.
    Ended,
    /// The database failed.
    Store(changegate_store::StoreError),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::Missing => see_other("/login"),
            NoSession::Ended => {
                let mut r = see_other("/login?expired=1");
                r.headers_mut()
                    .insert(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
                r
            }
            NoSession::Store(e) => {
                tracing::error!(error = %e, "dashboard: session lookup failed");
                super::pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The database did not answer. Try again in a moment.",
                )
            }
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// 256 random bits, hex.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether two secrets are equal, in constant time (lengths are not secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether a form carries the session's CSRF token (compared in constant time); when not, the
/// form is answered with [`csrf_refused`].
pub fn csrf_ok(viewer: &Viewer, presented: Option<&str>) -> bool {
    presented.is_some_and(|t| !t.is_empty() && same_secret(t, &viewer.csrf))
}

/// The page of a refused forged form.
pub fn csrf_refused() -> Response {
    let code = crate::error::ErrorCode::CsrfTokenInvalid;
    super::pages::error_page(
        code.status(),
        code.as_str(),
        "This form did not carry this session's CSRF token, so it was not sent by a dashboard \
         page you opened. Nothing was changed. Open the page again and resend the form.",
    )
}

/// Whether cookies get `Secure`: always with `serve --secure-cookies` (which an `https://`
/// `--dashboard-url` implies), else when the request came through an https proxy
/// (`X-Forwarded-Proto: https`).
pub fn secure(s: &AppState, headers: &HeaderMap) -> bool {
    s.dashboard.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, NoSession> {
        let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or(NoSession::Missing)?;
        let id = crate::token::digest(secret);
        let row =
            s.db.find_session(&id)
                .await
                .map_err(NoSession::Store)?
                .ok_or(NoSession::Missing)?;
        let now = s.now();
        if now.as_microsecond() >= row.expires_us {
            let _ = s.db.delete_session(&id).await;
            return Err(NoSession::Ended);
        }
        let caller = match &row.github {
            // A GitHub sign-in: GitHub sign-in is still offered, and the policy still maps the
            // login and id to the same person (a person removed from `[people]`, or a login
            // given to someone else, ends the session on the next request).
            Some((login, uid)) => {
                let mapped = s.dashboard.github_login.is_some()
                    && u64::try_from(*uid).ok().is_some_and(|uid| {
                        s.policy.person_of_github(login, Some(uid)) == Some(row.person.as_str())
                    });
                if !mapped {
                    let _ = s.db.delete_session(&id).await;
                    return Err(NoSession::Ended);
                }
                github_caller(login, &row.person)
            }
            None => {
                // The token is re-read on every request: revoked or expired, the session ends
                // with it.
                let token =
                    s.db.token(&row.token_id)
                        .await
                        .map_err(NoSession::Store)?
                        .ok_or(NoSession::Ended)?;
                if token.revoked || token.expires_at.is_some_and(|e| now >= e) {
                    let _ = s.db.delete_session(&id).await;
                    return Err(NoSession::Ended);
                }
                Caller::from_row(&row.token_id, token)
            }
        };
        Ok(Viewer {
            caller,
            csrf: row.csrf,
            session_id: id,
            expires: Timestamp::from_microsecond(row.expires_us).unwrap_or(now),
        })
    }
}

/// The caller a GitHub sign-in stands for: the person, with the person's roles, never an admin;
/// recorded as `github:LOGIN` where a token id would be.
pub fn github_caller(login: &str, person: &str) -> Caller {
    Caller {
        person: person.to_string(),
        admin: false,
        token_id: format!("github:{}", login.to_ascii_lowercase()),
        kind: crate::extract::CallerKind::Person,
        scopes: Default::default(),
    }
}

/// Open a session for `person` (with `token_id`, or the GitHub identity) and answer with the
/// redirect to the change list that sets its cookie. The session lasts the configured lifetime,
/// never past `not_after` (the token's expiry).
pub async fn open(
    s: &AppState,
    headers: &HeaderMap,
    token_id: &str,
    person: &str,
    github: Option<(String, i64)>,
    not_after: Option<Timestamp>,
) -> Result<Response, Response> {
    let now = s.now();
    let mut expires = now.checked_add(s.dashboard.session_lifetime).unwrap_or(now);
    if let Some(e) = not_after {
        expires = expires.min(e);
    }
    let secret = random_hex();
    let session = SessionRow {
        id: crate::token::digest(&secret),
        token_id: token_id.to_string(),
        person: person.to_string(),
        csrf: random_hex(),
        created_us: now.as_microsecond(),
        expires_us: expires.as_microsecond(),
        github,
    };
    // Expired rows are removed as new sessions open (no background job needed).
    let _ = s.db.delete_expired_sessions(now.as_microsecond()).await;
    if let Err(e) = s.db.create_session(&session).await {
        return Err(NoSession::Store(e).into_response());
    }
    let max_age = expires
        .duration_since(now)
        .max(SignedDuration::ZERO)
        .as_secs();
    let mut r = see_other("/changes");
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &secret, max_age, secure(s, headers)),
    );
    h.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE));
    Ok(r)
}

/// `GET /`: the change list when signed in, else the sign-in page.
pub async fn root(viewer: Result<Viewer, NoSession>) -> Response {
    match viewer {
        Ok(_) => see_other("/changes"),
        Err(_) => see_other("/login"),
    }
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    github: bool,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// Query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Set when a session ended (expired, or its token was revoked).
    #[serde(default)]
    pub expired: Option<String>,
    /// Set after signing out.
    #[serde(default)]
    pub signed_out: Option<String>,
}

fn login_response(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let csrf = random_hex();
    let body = LoginPage {
        csrf: &csrf,
        github: s.dashboard.github_login.is_some(),
        error,
        notice,
    }
    .render()
    .unwrap_or_else(|e| format!("template error: {e}"));
    let mut r = html(status, body);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &csrf, 3600, secure(s, headers)),
    );
    r
}

/// `GET /login`.
pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let notice = if q.expired.is_some() {
        Some("Your session ended (it expired, or its token was revoked). Sign in again.")
    } else if q.signed_out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    login_response(&s, &headers, StatusCode::OK, None, notice)
}

/// Body of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// An API token (`cg_…`).
    #[serde(default)]
    pub token: String,
    /// The sign-in form's CSRF token (must equal the `cg_login` cookie).
    #[serde(default)]
    pub csrf: String,
}

/// `POST /login`: check the token like the API does, open a session, set the cookie.
pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    let cookie_csrf = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty() || !same_secret(cookie_csrf, &f.csrf) {
        return csrf_refused();
    }
    let refuse =
        |msg: &str| login_response(&s, &headers, StatusCode::UNAUTHORIZED, Some(msg), None);
    let bad = "That is not a valid API token. Paste the whole token (cg_…) that `changegate token create` printed.";
    let Some((id, secret)) = crate::token::parse(f.token.trim()) else {
        return refuse(bad);
    };
    let row = match s.db.token(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(bad),
        Err(e) => return NoSession::Store(e).into_response(),
    };
    if !crate::token::verify(secret, &row.digest) {
        return refuse(bad);
    }
    let now = s.now();
    if row.revoked {
        return refuse("This API token was revoked.");
    }
    if row.expires_at.is_some_and(|e| now >= e) {
        return refuse("This API token has expired.");
    }
    if row.kind == TokenKind::Integration {
        return refuse(
            "This is an integration's token; sign in with a person's (or an admin's) token.",
        );
    }
    tracing::info!(token = id, person = %row.person, "dashboard sign-in");
    match open(&s, &headers, id, &row.person, None, row.expires_at).await {
        Ok(r) | Err(r) => r,
    }
}

/// Body of the forms that carry only the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `POST /logout`: end the session (CSRF-checked), clear the cookie.
pub async fn logout(
    State(s): State<AppState>,
    viewer: Viewer,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&viewer, f.csrf.as_deref()) {
        return csrf_refused();
    }
    let _ = s.db.delete_session(&viewer.session_id).await;
    let mut r = see_other("/login?signed_out=1");
    r.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cg_session_x=2; cg_session=abc ; b=3"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("3"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_when_asked() {
        let c = set_cookie(SESSION_COOKIE, "x", 60, true);
        let c = c.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{c}");
        }
        let plain = set_cookie(SESSION_COOKIE, "x", 60, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}

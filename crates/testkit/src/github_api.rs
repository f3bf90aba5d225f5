//! The GitHub REST operations changegate calls (check runs, issue comments, deployment
//! protection rule reviews, App installation tokens, team members), as a local stand-in that
//! checks every request against GitHub's published OpenAPI description and records it.
//!
//! The schemas are `data/github-openapi.json`, extracted from the npm package
//! `@octokit/openapi` (see `data/README.md`): method, path template, path parameters, and the
//! request body schema with its `required` fields, `enum` values and `maxLength`/`maxItems`
//! limits. A request that matches no operation of the fixture, or whose body fails its schema,
//! is answered `422 Validation Failed` (GitHub's answer) or `404`, and recorded in
//! [`GitHubRest::rejections`], so a test asserts there were none. Accepted requests are recorded
//! ([`GitHubRest::requests`]) and answered the way GitHub does (ids, `201`/`200`/`204`), with the
//! state a test inspects: check runs with their accumulated annotations, comments per issue,
//! protection rule reviews, issued installation tokens, team members (paginated as GitHub
//! paginates: `per_page` at most 100, `page` from 1, a `Link` header to the next page). A token
//! a test revoked ([`GitHubRest::revoke_tokens`]) is answered `401 Bad credentials`, as GitHub
//! answers a revoked installation token.
//!
//! [`crate::fake_github::FakeGitHub`] serves these beside its workflow runs on the same
//! loopback address (its field `rest`), with github.com's OAuth web flow (`/login/oauth/authorize`,
//! `/login/oauth/access_token`: not in the REST description, so checked as GitHub's OAuth docs
//! state it) for the dashboard's GitHub sign-in, and `GET /user` for the token it issues.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The fixture: the operations as `@octokit/openapi` describes them.
pub const FIXTURE: &str = include_str!("../data/github-openapi.json");

/// The test App's private key (PKCS#1 PEM), for `serve --github-app-key-file`.
pub const TEST_APP_KEY: &str = include_str!("../data/test-github-app.pem");

/// The test App's public key, which the stand-in verifies App JWTs with.
pub const TEST_APP_PUBLIC_KEY: &str = include_str!("../data/test-github-app.pub.pem");

/// One operation of the fixture.
#[derive(Debug, Clone)]
pub struct Operation {
    /// GitHub's `operationId`, e.g. `checks/create`.
    pub id: String,
    /// `GET`, `POST`, `PATCH`.
    pub method: String,
    /// Path template, e.g. `/repos/{owner}/{repo}/check-runs`.
    pub path: String,
    /// Request body schema.
    pub body: Option<Value>,
    /// Query parameters and their schemas.
    pub query: BTreeMap<String, Value>,
    /// Success status.
    pub success: u16,
    /// Fields every success answer carries.
    pub response_required: Vec<String>,
}

/// The fixture's operations.
pub fn operations() -> Vec<Operation> {
    let v: Value = serde_json::from_str(FIXTURE).expect("github-openapi.json parses");
    v["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| Operation {
            id: o["operation_id"].as_str().unwrap().to_string(),
            method: o["method"].as_str().unwrap().to_string(),
            path: o["path"].as_str().unwrap().to_string(),
            body: o.get("request_body").filter(|b| !b.is_null()).cloned(),
            query: o["query_params"]
                .as_object()
                .map(|q| q.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            success: o["success"].as_u64().unwrap() as u16,
            response_required: o["response_required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// The fixture's package and version (`@octokit/openapi`, `23.0.2`).
pub fn fixture_source() -> (String, String) {
    let v: Value = serde_json::from_str(FIXTURE).expect("github-openapi.json parses");
    (
        v["source"]["package"].as_str().unwrap_or_default().into(),
        v["source"]["version"].as_str().unwrap_or_default().into(),
    )
}

/// A `deployment_protection_rule` (action `requested`) payload as GitHub sends it to an App,
/// checked against the webhook's schema in the fixture: for commit `sha` of `repo`, environment
/// `environment`, the run `run_id` waiting, its callback on `api`.
pub fn protection_rule_requested(
    api: &str,
    repo: &str,
    run_id: u64,
    environment: &str,
    sha: &str,
    installation: u64,
) -> Value {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, repo));
    let payload = json!({
        "action": "requested",
        "environment": environment,
        "event": "push",
        "sha": sha,
        "ref": "refs/heads/main",
        "deployment_callback_url": format!("{api}/repos/{repo}/actions/runs/{run_id}/deployment_protection_rule"),
        "deployment": {
            "url": format!("{api}/repos/{repo}/deployments/{run_id}"), "id": run_id, "node_id": format!("DE_{run_id}"),
            "sha": sha, "ref": "main", "task": "deploy", "payload": {}, "original_environment": environment,
            "environment": environment, "description": null, "creator": {"login": "github-actions[bot]", "id": 41898282},
            "created_at": "2026-03-10T08:00:00Z", "updated_at": "2026-03-10T08:00:00Z",
            "statuses_url": format!("{api}/repos/{repo}/deployments/{run_id}/statuses"),
            "repository_url": format!("{api}/repos/{repo}"),
        },
        "pull_requests": [],
        "repository": {"id": 1296269, "node_id": "R_1", "name": name, "full_name": repo, "private": false,
            "owner": {"login": owner, "id": 2}, "html_url": format!("{api}/{repo}"), "url": format!("{api}/repos/{repo}")},
        "installation": {"id": installation, "node_id": format!("I_{installation}")},
        "sender": {"login": "alice", "id": 3, "type": "User"},
    });
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let schema = fixture["webhooks"]
        .as_array()
        .and_then(|w| {
            w.iter()
                .find(|x| x["name"] == "deployment-protection-rule-requested")
        })
        .map(|w| w["schema"].clone())
        .expect("the webhook's schema in the fixture");
    let mut errors = Vec::new();
    validate(&schema, &payload, "payload", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    payload
}

/// Match `path` against a template; the path parameters by name.
pub fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (a, b) in t.iter().zip(&p) {
        if let Some(name) = a.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            if b.is_empty() {
                return None;
            }
            params.insert(name.to_string(), (*b).to_string());
        } else if a != b {
            return None;
        }
    }
    Some(params)
}

/// Check `v` against the JSON-schema subset of the fixture (`type`, `required`, `properties`,
/// `enum`, `maxLength`/`minLength` (characters), `maxItems`/`minItems`, `items`, `anyOf`/`oneOf`,
/// `format: date-time`); every violation, located by a JSON path.
pub fn validate(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema[key].as_array() {
            let fits = alts.iter().filter(|s| {
                let mut e = Vec::new();
                validate(s, v, at, &mut e);
                e.is_empty()
            });
            if fits.count() == 0 {
                errors.push(format!("{at}: matches none of the {key} alternatives"));
            }
        }
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => true,
        };
        let nullable = schema["nullable"].as_bool() == Some(true) && v.is_null();
        if !ok && !nullable {
            errors.push(format!("{at}: is not of type {t}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !v.is_null()
        && !allowed.contains(v)
    {
        errors.push(format!(
            "{at}: {v} is not one of {}",
            Value::from(allowed.clone())
        ));
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count() as u64;
        if let Some(max) = schema["maxLength"].as_u64()
            && n > max
        {
            errors.push(format!("{at}: is {n} characters long, more than {max}"));
        }
        if let Some(min) = schema["minLength"].as_u64()
            && n < min
        {
            errors.push(format!("{at}: is {n} characters long, fewer than {min}"));
        }
        if schema["format"] == "date-time" && s.parse::<jiff::Timestamp>().is_err() {
            errors.push(format!("{at}: `{s}` is not an ISO 8601 date-time"));
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = schema["maxItems"].as_u64()
            && items.len() as u64 > max
        {
            errors.push(format!("{at}: has {} items, more than {max}", items.len()));
        }
        if let Some(min) = schema["minItems"].as_u64()
            && (items.len() as u64) < min
        {
            errors.push(format!("{at}: has {} items, fewer than {min}", items.len()));
        }
        if schema.get("items").is_some() {
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                errors.push(format!("{at}: missing required field `{r}`"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, sub) in props {
                if let Some(x) = obj.get(k) {
                    validate(sub, x, &format!("{at}.{k}"), errors);
                }
            }
        }
    }
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The operation (`checks/create`, …), or `unknown`.
    pub operation: String,
    /// Method.
    pub method: String,
    /// Path (without the query).
    pub path: String,
    /// Query string.
    pub query: String,
    /// JSON body (`null` when none).
    pub body: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// What the stand-in answered.
    pub status: u16,
}

/// A request refused, with why.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The request.
    pub request: Recorded,
    /// Every violation.
    pub errors: Vec<String>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    rejections: Vec<Rejection>,
    next_id: u64,
    check_runs: BTreeMap<u64, Value>,
    annotations: BTreeMap<u64, Vec<Value>>,
    comments: BTreeMap<(String, u64), Vec<Value>>,
    reviews: Vec<(String, u64, Value)>,
    tokens: Vec<(u64, String, String)>,
    /// Tokens GitHub no longer accepts.
    revoked: std::collections::BTreeSet<String>,
    /// Refuse every installation token, even new ones.
    refuse_tokens: bool,
    /// Teams (`org/slug`, lowercase) → their members (GitHub's `simple-user` objects).
    teams: BTreeMap<String, Vec<Value>>,
    /// Operation id → (status to answer, how many more times).
    faults: BTreeMap<String, (u16, u32)>,
    /// App id and public key: App JWTs are verified.
    app: Option<(u64, String)>,
    /// Repository (lowercase `owner/name`) → installation id.
    installations: BTreeMap<String, u64>,
    base: String,
    /// OAuth apps: client id → (client secret, registered callback URL).
    oauth_apps: BTreeMap<String, (String, String)>,
    /// Who is signed in to the stand-in's github.com (approves every authorize request).
    oauth_user: Option<(String, u64)>,
    /// Codes issued by authorize: code → grant (single use).
    oauth_codes: BTreeMap<String, Grant>,
    /// User access tokens issued by the code exchange → (login, id).
    user_tokens: BTreeMap<String, (String, u64)>,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    login: String,
    id: u64,
    used: bool,
    /// PKCE (RFC 7636): the authorize request's S256 `code_challenge`, which the exchange's
    /// `code_verifier` must hash to.
    challenge: Option<String>,
}

/// The stand-in's state (cheap to clone).
#[derive(Clone, Default)]
pub struct GitHubRest {
    inner: Arc<Mutex<Inner>>,
}

impl GitHubRest {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the base URL answers link to.
    pub fn set_base(&self, base: &str) {
        self.lock().base = base.to_string();
    }

    /// Every accepted request (any operation), oldest first.
    pub fn all_requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The accepted requests of one operation (`checks/create`, …), oldest first.
    pub fn requests(&self, operation: &str) -> Vec<Recorded> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.operation == operation)
            .cloned()
            .collect()
    }

    /// Requests refused for not matching the fixture.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.lock().rejections.clone()
    }

    /// Panic when any request was refused (with the violations).
    pub fn assert_conforming(&self) {
        let r = self.rejections();
        assert!(
            r.is_empty(),
            "requests that do not match GitHub's OpenAPI description: {:#?}",
            r.iter()
                .map(|x| (
                    x.request.method.clone(),
                    x.request.path.clone(),
                    x.errors.clone()
                ))
                .collect::<Vec<_>>()
        );
    }

    /// Check runs by id (as GitHub would show them).
    pub fn check_runs(&self) -> BTreeMap<u64, Value> {
        self.lock().check_runs.clone()
    }

    /// Every annotation a check run received, in order.
    pub fn annotations(&self, check_run: u64) -> Vec<Value> {
        self.lock()
            .annotations
            .get(&check_run)
            .cloned()
            .unwrap_or_default()
    }

    /// Comments on issue/PR `number` of `repo` (`owner/name`).
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        self.lock()
            .comments
            .get(&(repo.to_ascii_lowercase(), number))
            .cloned()
            .unwrap_or_default()
    }

    /// Deployment protection rule reviews: (repository, run id, body), oldest first.
    pub fn reviews(&self) -> Vec<(String, u64, Value)> {
        self.lock().reviews.clone()
    }

    /// Installation tokens issued: (installation id, token, expires_at).
    pub fn tokens(&self) -> Vec<(u64, String, String)> {
        self.lock().tokens.clone()
    }

    /// Revoke every installation token issued so far: a request bearing one is answered `401`.
    pub fn revoke_tokens(&self) {
        let mut g = self.lock();
        let issued: Vec<String> = g.tokens.iter().map(|t| t.1.clone()).collect();
        g.revoked.extend(issued);
    }

    /// Make `team` (`org/team-slug`) unknown (answered `404`).
    pub fn clear_team(&self, team: &str) {
        self.lock().teams.remove(&team.to_ascii_lowercase());
    }

    /// Refuse (`401`) every installation token, also those issued later, while `on`.
    pub fn refuse_tokens(&self, on: bool) {
        self.lock().refuse_tokens = on;
    }

    /// Make `team` (`org/team-slug`) have these members (login, user id), in this order.
    pub fn set_team(&self, team: &str, members: &[(&str, u64)]) {
        let mut g = self.lock();
        let base = g.base.clone();
        let users = members
            .iter()
            .map(|(login, id)| simple_user(&base, login, *id))
            .collect();
        g.teams.insert(team.to_ascii_lowercase(), users);
    }

    /// Answer the next `times` requests of `operation` with `status` (and GitHub's error body).
    pub fn fail_next(&self, operation: &str, status: u16, times: u32) {
        self.lock()
            .faults
            .insert(operation.to_string(), (status, times));
    }

    /// Register an OAuth app: its client id, secret and callback URL (GitHub compares the
    /// `redirect_uri` of both requests with it).
    pub fn oauth_app(&self, client_id: &str, client_secret: &str, callback: &str) {
        self.lock().oauth_apps.insert(
            client_id.to_string(),
            (client_secret.to_string(), callback.to_string()),
        );
    }

    /// Sign `login` (user `id`) in to the stand-in's github.com: every authorize request is
    /// approved as this user.
    pub fn sign_in_as(&self, login: &str, id: u64) {
        self.lock().oauth_user = Some((login.to_string(), id));
    }

    /// An authorization code for `login` (user `id`) and `client_id`, as if GitHub had issued
    /// it to `redirect_uri` (a test that skips the browser's trip to authorize).
    pub fn issue_code(&self, client_id: &str, redirect_uri: &str, login: &str, id: u64) -> String {
        let mut g = self.lock();
        g.next_id += 1;
        let code = format!("code{}x{}", g.next_id, id);
        g.oauth_codes.insert(
            code.clone(),
            Grant {
                client_id: client_id.into(),
                redirect_uri: redirect_uri.into(),
                login: login.into(),
                id,
                used: false,
                challenge: None,
            },
        );
        code
    }

    /// Verify App JWTs (RS256, issuer `app_id`) with this public key (PEM); install the App on
    /// `repos` (`owner/name`) as installation `installation`.
    pub fn expect_app(&self, app_id: u64, public_pem: &str, installation: u64, repos: &[&str]) {
        let mut g = self.lock();
        g.app = Some((app_id, public_pem.to_string()));
        for r in repos {
            g.installations.insert(r.to_ascii_lowercase(), installation);
        }
    }
}

/// A user as GitHub's `simple-user` schema has it (every required field).
pub fn simple_user(base: &str, login: &str, id: u64) -> Value {
    let u = format!("{base}/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("{base}/avatars/u/{id}"), "gravatar_id": "",
        "url": u, "html_url": format!("{base}/{login}"),
        "followers_url": format!("{u}/followers"),
        "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"),
        "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"),
        "type": "User", "site_admin": false,
    })
}

/// The query string's parameters (no percent-decoding: changegate sends none that need it).
fn query_params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// Check query parameters against the operation's: each one documented, integers integers,
/// enum values among the allowed.
fn validate_query(op: &Operation, query: &str, errors: &mut Vec<String>) {
    for (k, v) in query_params(query) {
        let Some(schema) = op.query.get(&k) else {
            errors.push(format!(
                "query parameter `{k}` is not a parameter of {}",
                op.id
            ));
            continue;
        };
        let value = if schema["type"] == "integer" {
            match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push(format!("query `{k}`: `{v}` is not an integer"));
                    continue;
                }
            }
        } else {
            Value::String(v.clone())
        };
        validate(schema, &value, &format!("query `{k}`"), errors);
    }
}

fn github_error(status: u16, message: &str, errors: &[String]) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.to_string(),
    });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    (code, axum::Json(body)).into_response()
}

/// Verify an App JWT; the installation-token answer's `expires_at` base (its `iat`).
fn verify_jwt(auth: Option<&str>, app: &Option<(u64, String)>) -> Result<i64, String> {
    let token = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or("no `Authorization: Bearer JWT` header")?;
    let Some((app_id, pem)) = app else {
        return Err("the stand-in has no App configured (expect_app)".into());
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // The server signs with its own (injected) clock; GitHub checks `exp - iat` and the
    // signature, which is what matters here.
    v.validate_exp = false;
    v.required_spec_claims = ["iat", "exp", "iss"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| e.to_string())?;
    let c = data.claims;
    let iss_ok =
        c["iss"].as_str() == Some(&app_id.to_string()) || c["iss"].as_u64() == Some(*app_id);
    if !iss_ok {
        return Err(format!("JWT issuer {} is not App {app_id}", c["iss"]));
    }
    let (iat, exp) = (
        c["iat"].as_i64().unwrap_or(0),
        c["exp"].as_i64().unwrap_or(0),
    );
    if exp <= iat || exp - iat > 600 {
        return Err(format!(
            "JWT lifetime {}s: GitHub accepts at most 10 minutes",
            exp - iat
        ));
    }
    Ok(iat)
}

async fn handle(
    State(rest): State<GitHubRest>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let mut g = rest.lock();
                g.rejections.push(Rejection {
                    request: Recorded {
                        operation: "unknown".into(),
                        method: method.to_string(),
                        path,
                        query,
                        body: Value::String(String::from_utf8_lossy(&body).into()),
                        authorization,
                        status: 400,
                    },
                    errors: vec![format!("body is not JSON: {e}")],
                });
                return github_error(400, "Problems parsing JSON", &[]);
            }
        }
    };
    let op = operations().into_iter().find_map(|o| {
        (o.method == method.as_str())
            .then(|| match_path(&o.path, &path).map(|p| (o, p)))
            .flatten()
    });
    let mut record = Recorded {
        operation: "unknown".into(),
        method: method.to_string(),
        path: path.clone(),
        query,
        body: json_body.clone(),
        authorization: authorization.clone(),
        status: 404,
    };
    let Some((op, params)) = op else {
        rest.lock().rejections.push(Rejection {
            request: record,
            errors: vec![format!(
                "{method} {path} is no operation of the fixture (data/github-openapi.json)"
            )],
        });
        return github_error(404, "Not Found", &[]);
    };
    record.operation = op.id.clone();
    let mut errors = Vec::new();
    match &op.body {
        Some(schema) => validate(schema, &json_body, "body", &mut errors),
        None if !json_body.is_null() && method == Method::GET => {
            errors.push("a GET carries no body".into())
        }
        None => {}
    }
    // Rules the schema states only in prose.
    if op.id.starts_with("checks/") {
        let completed =
            json_body["status"] == "completed" || json_body.get("completed_at").is_some();
        if completed && json_body.get("conclusion").is_none() {
            errors.push(
                "body: `conclusion` is required with status `completed` or `completed_at`".into(),
            );
        }
        if json_body["conclusion"] == "stale" {
            errors.push("body.conclusion: only GitHub can set `stale`".into());
        }
    }
    validate_query(&op, &record.query, &mut errors);
    if op.id == "teams/list-members-in-org" || op.id == "issues/list-comments" {
        // "The number of results per page (max 100)."
        if let Some(n) = query_params(&record.query)
            .get("per_page")
            .and_then(|v| v.parse::<u64>().ok())
            && n > 100
        {
            errors.push(format!("query `per_page`: {n} is more than 100"));
        }
    }
    for (name, value) in &params {
        let numeric = name.ends_with("_id") || name.ends_with("_number");
        if numeric && value.parse::<u64>().is_err() {
            errors.push(format!(
                "path parameter `{name}`: `{value}` is not an integer"
            ));
        }
    }
    let bearer = authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer ") || a.starts_with("token "));
    if !bearer {
        errors.push("no `Authorization: Bearer …` header".into());
    }
    if !errors.is_empty() {
        record.status = 422;
        rest.lock().rejections.push(Rejection {
            request: record,
            errors: errors.clone(),
        });
        return github_error(422, "Validation Failed", &errors);
    }
    let mut g = rest.lock();
    let presented = authorization.as_deref().and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))
    });
    let issued = |t: &str| g.tokens.iter().any(|x| x.1 == t);
    if presented.is_some_and(|t| g.revoked.contains(t) || (g.refuse_tokens && issued(t))) {
        record.status = 401;
        g.requests.push(record);
        return github_error(401, "Bad credentials", &[]);
    }
    if let Some((status, times)) = g.faults.get_mut(&op.id)
        && *times > 0
    {
        *times -= 1;
        let status = *status;
        record.status = status;
        g.requests.push(record);
        return github_error(status, "Server Error", &[]);
    }
    let base = g.base.clone();
    let repo = format!(
        "{}/{}",
        params.get("owner").cloned().unwrap_or_default(),
        params.get("repo").cloned().unwrap_or_default()
    )
    .to_ascii_lowercase();
    let num = |k: &str| {
        params
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (status, answer): (u16, Value) = match op.id.as_str() {
        "checks/create" | "checks/update" => {
            let id = if op.id == "checks/create" {
                g.next_id += 1;
                1000 + g.next_id
            } else {
                num("check_run_id")
            };
            if op.id == "checks/update" && !g.check_runs.contains_key(&id) {
                record.status = 404;
                g.requests.push(record);
                return github_error(404, "Not Found", &[]);
            }
            let mut run = g.check_runs.get(&id).cloned().unwrap_or_else(|| {
                json!({
                    "id": id, "node_id": format!("CR_{id}"), "head_sha": json_body["head_sha"],
                    "name": json_body["name"], "url": format!("{base}/repos/{repo}/check-runs/{id}"),
                    "html_url": format!("{base}/{repo}/runs/{id}"), "details_url": null,
                    "status": "queued", "conclusion": null, "started_at": now, "completed_at": null,
                    "external_id": null, "check_suite": {"id": id + 5000},
                    "output": {"title": null, "summary": null, "text": null, "annotations_count": 0,
                               "annotations_url": format!("{base}/repos/{repo}/check-runs/{id}/annotations")},
                    "app": {"id": 1, "slug": "changegate"}, "pull_requests": [],
                })
            });
            for k in [
                "name",
                "details_url",
                "external_id",
                "status",
                "conclusion",
                "started_at",
                "completed_at",
            ] {
                if let Some(v) = json_body.get(k) {
                    run[k] = v.clone();
                }
            }
            if json_body.get("conclusion").is_some() {
                run["status"] = json!("completed");
            }
            if let Some(out) = json_body.get("output") {
                for k in ["title", "summary", "text"] {
                    if let Some(v) = out.get(k) {
                        run["output"][k] = v.clone();
                    }
                }
                let added = out["annotations"].as_array().cloned().unwrap_or_default();
                let all = g.annotations.entry(id).or_default();
                all.extend(added);
                run["output"]["annotations_count"] = json!(all.len());
            }
            g.check_runs.insert(id, run.clone());
            (op.success, run)
        }
        "issues/list-comments" => {
            let all = g
                .comments
                .get(&(repo.clone(), num("issue_number")))
                .cloned()
                .unwrap_or_default();
            let q: BTreeMap<String, String> = record
                .query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let per_page = q
                .get("per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page = q
                .get("page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let slice: Vec<Value> = all
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            (op.success, Value::Array(slice))
        }
        "issues/create-comment" => {
            g.next_id += 1;
            let id = 2000 + g.next_id;
            let number = num("issue_number");
            let c = json!({
                "id": id, "node_id": format!("IC_{id}"),
                "url": format!("{base}/repos/{repo}/issues/comments/{id}"),
                "html_url": format!("{base}/{repo}/pull/{number}#issuecomment-{id}"),
                "issue_url": format!("{base}/repos/{repo}/issues/{number}"),
                "body": json_body["body"], "user": {"login": "changegate[bot]", "id": 9, "type": "Bot"},
                "created_at": now, "updated_at": now, "author_association": "NONE",
            });
            g.comments
                .entry((repo.clone(), number))
                .or_default()
                .push(c.clone());
            (op.success, c)
        }
        "issues/update-comment" => {
            let id = num("comment_id");
            let found = g
                .comments
                .iter_mut()
                .filter(|((r, _), _)| *r == repo)
                .flat_map(|(_, v)| v.iter_mut())
                .find(|c| c["id"] == id);
            match found {
                Some(c) => {
                    c["body"] = json_body["body"].clone();
                    c["updated_at"] = json!(now);
                    (op.success, c.clone())
                }
                None => {
                    record.status = 404;
                    g.requests.push(record);
                    return github_error(404, "Not Found", &[]);
                }
            }
        }
        "teams/list-members-in-org" => {
            let team = format!(
                "{}/{}",
                params.get("org").cloned().unwrap_or_default(),
                params.get("team_slug").cloned().unwrap_or_default()
            )
            .to_ascii_lowercase();
            let Some(all) = g.teams.get(&team).cloned() else {
                record.status = 404;
                g.requests.push(record);
                return github_error(404, "Not Found", &[]);
            };
            let q = query_params(&record.query);
            let per_page = q
                .get("per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page = q
                .get("page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let slice: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .cloned()
                .collect();
            for u in &slice {
                for r in &op.response_required {
                    assert!(u.get(r).is_some(), "the stand-in's member lacks `{r}`");
                }
            }
            let more = all.len() > page * per_page;
            record.status = op.success;
            g.requests.push(record);
            drop(g);
            let mut resp = (StatusCode::OK, axum::Json(Value::Array(slice))).into_response();
            if more {
                let next = format!(
                    "<{base}{path}?per_page={per_page}&page={}>; rel=\"next\"",
                    page + 1
                );
                if let Ok(v) = axum::http::HeaderValue::from_str(&next) {
                    resp.headers_mut().insert("link", v);
                }
            }
            return resp;
        }
        "actions/review-custom-gates-for-run" => {
            g.reviews
                .push((repo.clone(), num("run_id"), json_body.clone()));
            (op.success, Value::Null)
        }
        "apps/create-installation-access-token" => {
            let iat = match verify_jwt(authorization.as_deref(), &g.app) {
                Ok(iat) => iat,
                Err(why) => {
                    record.status = 401;
                    g.rejections.push(Rejection {
                        request: record,
                        errors: vec![why.clone()],
                    });
                    return github_error(401, &why, &[]);
                }
            };
            let installation = num("installation_id");
            if !g.installations.values().any(|&i| i == installation) {
                record.status = 404;
                g.requests.push(record);
                return github_error(404, "Not Found", &[]);
            }
            let n = g.tokens.len() + 1;
            let token = format!("ghs_test{installation}x{n}");
            let expires = jiff::Timestamp::from_second(iat + 60 + 3600)
                .unwrap_or_default()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            g.tokens
                .push((installation, token.clone(), expires.clone()));
            (
                op.success,
                json!({"token": token, "expires_at": expires, "permissions": {"checks": "write", "pull_requests": "write", "deployments": "write", "actions": "read"}, "repository_selection": "selected"}),
            )
        }
        "users/get-authenticated" => {
            let token = authorization
                .as_deref()
                .and_then(|a| {
                    a.strip_prefix("Bearer ")
                        .or_else(|| a.strip_prefix("token "))
                })
                .unwrap_or("");
            match g.user_tokens.get(token).cloned() {
                Some((login, id)) => (op.success, user_json(&base, &login, id)),
                None => {
                    record.status = 401;
                    g.requests.push(record);
                    return github_error(401, "Bad credentials", &[]);
                }
            }
        }
        "apps/get-repo-installation" => {
            if let Err(why) = verify_jwt(authorization.as_deref(), &g.app) {
                record.status = 401;
                g.rejections.push(Rejection {
                    request: record,
                    errors: vec![why.clone()],
                });
                return github_error(401, &why, &[]);
            }
            match g.installations.get(&repo).copied() {
                Some(id) => (
                    op.success,
                    json!({"id": id, "account": {"login": params.get("owner")}, "app_id": g.app.as_ref().map(|a| a.0), "target_type": "Organization", "access_tokens_url": format!("{base}/app/installations/{id}/access_tokens"), "repositories_url": format!("{base}/installation/repositories"), "html_url": format!("{base}/settings/installations/{id}"), "permissions": {}, "events": [], "created_at": now, "updated_at": now, "single_file_name": null, "app_slug": "changegate", "target_id": 1, "repository_selection": "selected", "suspended_by": null, "suspended_at": null}),
                ),
                None => {
                    record.status = 404;
                    g.requests.push(record);
                    return github_error(404, "Not Found", &[]);
                }
            }
        }
        _ => (op.success, json!({})),
    };
    if let Some(obj) = answer.as_object() {
        for r in &op.response_required {
            assert!(
                obj.contains_key(r),
                "the stand-in's {} answer lacks `{r}`",
                op.id
            );
        }
    }
    record.status = status;
    g.requests.push(record);
    drop(g);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if answer.is_null() {
        code.into_response()
    } else {
        (code, axum::Json(answer)).into_response()
    }
}

/// A user as `GET /user` answers it (every field both of GitHub's user schemas require).
fn user_json(base: &str, login: &str, id: u64) -> Value {
    let u = format!("{base}/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("{base}/avatars/{id}"), "gravatar_id": "",
        "url": u, "html_url": format!("{base}/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": "User", "site_admin": false,
        "name": null, "company": null, "blog": "", "location": null, "email": null, "hireable": null,
        "bio": null, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
        "created_at": "2020-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    })
}

/// `GET /login/oauth/authorize` on github.com, as GitHub answers it once the signed-in user has
/// authorized the app (GitHub docs, "Authorizing OAuth apps", web application flow, step 1):
/// `client_id` must be an app's, `redirect_uri` (when given) its registered callback URL; the
/// browser goes back to the callback with `code` and the unchanged `state`. Without a signed-in
/// user (or with an unknown app or another redirect URI) GitHub shows a page and sends nobody
/// back: here a 404/400 page, and the request is recorded as a rejection.
async fn authorize(State(rest): State<GitHubRest>, uri: Uri) -> Response {
    let q: BTreeMap<String, String> = url_query(uri.query().unwrap_or_default());
    let mut g = rest.lock();
    let record = Recorded {
        operation: "oauth/authorize".into(),
        method: "GET".into(),
        path: uri.path().into(),
        query: uri.query().unwrap_or_default().into(),
        body: Value::Null,
        authorization: None,
        status: 302,
    };
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let Some((_, callback)) = g.oauth_apps.get(&client_id).cloned() else {
        g.rejections.push(Rejection {
            request: Recorded {
                status: 404,
                ..record
            },
            errors: vec![format!("no OAuth app has client_id `{client_id}`")],
        });
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or(callback.clone());
    if redirect_uri != callback {
        g.rejections.push(Rejection {
            request: Recorded {
                status: 400,
                ..record
            },
            errors: vec![format!(
                "redirect_uri `{redirect_uri}` is not the app's callback URL `{callback}`"
            )],
        });
        return (
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not associated with this application.",
        )
            .into_response();
    }
    let Some((login, id)) = g.oauth_user.clone() else {
        g.rejections.push(Rejection {
            request: Recorded {
                status: 401,
                ..record
            },
            errors: vec!["nobody is signed in to the stand-in's github.com (sign_in_as)".into()],
        });
        return (StatusCode::UNAUTHORIZED, "Sign in to GitHub").into_response();
    };
    // PKCE: GitHub accepts only the S256 method (changelog 2025-07-14, "PKCE support for OAuth
    // and GitHub App authentication"); a challenge binds the code to its verifier.
    let challenge = q.get("code_challenge").cloned();
    let method = q.get("code_challenge_method").cloned();
    if challenge.is_some() != method.is_some()
        || method.as_deref().is_some_and(|m| m != "S256")
        || challenge.as_deref().is_some_and(|c| {
            c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        g.rejections.push(Rejection {
            request: Recorded {
                status: 400,
                ..record
            },
            errors: vec![format!(
                "PKCE: code_challenge {challenge:?} with code_challenge_method {method:?} (S256 and a 43-character base64url challenge, or neither)"
            )],
        });
        return (StatusCode::BAD_REQUEST, "Invalid PKCE parameters.").into_response();
    }
    g.requests.push(record);
    drop(g);
    let code = rest.issue_code(&client_id, &redirect_uri, &login, id);
    if let Some(c) = challenge
        && let Some(grant) = rest.lock().oauth_codes.get_mut(&code)
    {
        grant.challenge = Some(c);
    }
    let mut to = format!("{redirect_uri}?code={code}");
    if let Some(state) = q.get("state") {
        to.push_str("&state=");
        to.push_str(&form_encode(state));
    }
    (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response()
}

/// `POST /login/oauth/access_token` on github.com (web application flow, step 2): `client_id`,
/// `client_secret`, `code` and `redirect_uri` as a form (or JSON); the answer is JSON with
/// `Accept: application/json`, else form-encoded. Errors are answered `200` with `error` and
/// `error_description`, as GitHub does ("Troubleshooting OAuth app access token request
/// errors"): `incorrect_client_credentials`, `redirect_uri_mismatch`, `bad_verification_code`.
/// A code is single-use.
async fn access_token(
    State(rest): State<GitHubRest>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        serde_json::from_slice::<BTreeMap<String, Value>>(&body)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect()
    } else {
        url_query(&String::from_utf8_lossy(&body))
    };
    let json_answer = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut g = rest.lock();
    let mut shown = form.clone();
    if shown.contains_key("client_secret") {
        shown.insert("client_secret".into(), "<redacted>".into());
    }
    let record = Recorded {
        operation: "oauth/access-token".into(),
        method: "POST".into(),
        path: uri.path().into(),
        query: String::new(),
        body: json!(shown),
        authorization: None,
        status: 200,
    };
    let error = |e: &str, d: &str| json!({"error": e, "error_description": d, "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"});
    let answer = match g.oauth_apps.get(&field("client_id")).cloned() {
        Some((secret, callback)) if secret == field("client_secret") => {
            let uri_ok = |u: &str| form.get("redirect_uri").is_none_or(|r| r == u);
            match g.oauth_codes.get(&field("code")).cloned() {
                Some(grant) if !grant.used && grant.client_id == field("client_id") => {
                    let verified = match (&grant.challenge, form.get("code_verifier")) {
                        (None, None) => true,
                        (Some(c), Some(v)) => {
                            use base64::Engine as _;
                            use sha2::Digest as _;
                            let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                                .encode(sha2::Sha256::digest(v.as_bytes()));
                            (43..=128).contains(&v.len()) && &hashed == c
                        }
                        _ => false,
                    };
                    if !verified {
                        // The stand-in's wording: a code whose PKCE check fails is as good as a
                        // wrong code.
                        error(
                            "bad_verification_code",
                            "The code_verifier does not match the code_challenge of this code.",
                        )
                    } else if !uri_ok(&grant.redirect_uri) || !uri_ok(&callback) {
                        error(
                            "redirect_uri_mismatch",
                            "The redirect_uri MUST match the registered callback URL for this application.",
                        )
                    } else {
                        if let Some(gr) = g.oauth_codes.get_mut(&field("code")) {
                            gr.used = true;
                        }
                        g.next_id += 1;
                        let token = format!("gho_test{}x{}", g.next_id, grant.id);
                        g.user_tokens
                            .insert(token.clone(), (grant.login.clone(), grant.id));
                        json!({"access_token": token, "token_type": "bearer", "scope": ""})
                    }
                }
                _ => error(
                    "bad_verification_code",
                    "The code passed is incorrect or expired.",
                ),
            }
        }
        _ => error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ),
    };
    g.requests.push(record);
    drop(g);
    if json_answer {
        (StatusCode::OK, axum::Json(answer)).into_response()
    } else {
        let text = answer
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={}", form_encode(v.as_str().unwrap_or_default())))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        (
            StatusCode::OK,
            [(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            text,
        )
            .into_response()
    }
}

fn form_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// The stand-in as a router (a fallback: routes of the embedding router take precedence), with
/// github.com's OAuth endpoints beside the REST API.
pub fn router(rest: GitHubRest) -> axum::Router {
    axum::Router::new()
        .route("/login/oauth/authorize", axum::routing::get(authorize))
        .route(
            "/login/oauth/access_token",
            axum::routing::post(access_token),
        )
        .fallback(handle)
        .with_state(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_holds_the_operations_and_their_limits() {
        let ops = operations();
        let create = ops.iter().find(|o| o.id == "checks/create").unwrap();
        let body = create.body.as_ref().unwrap();
        assert_eq!(
            body["properties"]["output"]["properties"]["summary"]["maxLength"],
            65535
        );
        assert_eq!(
            body["properties"]["output"]["properties"]["annotations"]["maxItems"],
            50
        );
        let ok = json!({"name": "changegate", "head_sha": "abc", "conclusion": "success",
            "output": {"title": "t", "summary": "s"}});
        let mut e = Vec::new();
        validate(body, &ok, "body", &mut e);
        assert!(e.is_empty(), "{e:?}");
        let bad = json!({"name": "changegate", "conclusion": "ok",
            "output": {"title": "t", "summary": "x".repeat(65536),
              "annotations": (0..51).map(|_| json!({"path": "a", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m"})).collect::<Vec<_>>()}});
        let mut e = Vec::new();
        validate(body, &bad, "body", &mut e);
        assert_eq!(e.len(), 4, "{e:#?}");
        let review = ops
            .iter()
            .find(|o| o.id == "actions/review-custom-gates-for-run")
            .unwrap();
        let mut e = Vec::new();
        validate(
            review.body.as_ref().unwrap(),
            &json!({"environment_name": "production", "state": "maybe"}),
            "body",
            &mut e,
        );
        assert!(!e.is_empty());
        let mut e = Vec::new();
        validate(
            review.body.as_ref().unwrap(),
            &json!({"environment_name": "production", "comment": "waiting"}),
            "body",
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            match_path(
                "/repos/{owner}/{repo}/check-runs/{check_run_id}",
                "/repos/a/b/check-runs/7"
            )
            .unwrap()["check_run_id"],
            "7"
        );
        assert_eq!(fixture_source().0, "@octokit/openapi");
    }
}

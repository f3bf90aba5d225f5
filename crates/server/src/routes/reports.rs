//! Reports: `GET /api/v1/reports/monthly/{month}`, `GET /api/v1/reports/quarterly/{quarter}`
//! (`?format=json|markdown|html|csv|xlsx`, any valid token: the reports hold nothing a token
//! cannot read through `GET /changes`), and the reviewers' sign-off,
//! `POST /api/v1/reports/{monthly|quarterly}/{period}/signoffs` (docs/reports.md).
//!
//! Sign-off authority: the signer is the token's person, never a body field; the role must be
//! one of the policy's reviewers of that report, held directly or through a team
//! (`roles.<role>.holders`, the stored teams and aliases).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_report::render::{Format, render};
use changegate_report::{Period, ReportKind, Settings};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// The report routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/monthly/{month}", get(monthly))
        .route("/api/v1/reports/quarterly/{quarter}", get(quarterly))
        .route(
            "/api/v1/reports/monthly/{month}/signoffs",
            post(sign_monthly),
        )
        .route(
            "/api/v1/reports/quarterly/{quarter}/signoffs",
            post(sign_quarterly),
        )
}

/// `?format=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// json (default), markdown, html, csv, xlsx.
    #[serde(default)]
    pub format: Option<String>,
}

/// Body of a sign-off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// Reviewer role.
    pub role: String,
}

fn period(kind: ReportKind, s: &str) -> Result<Period, ApiError> {
    Period::parse_as(kind, s).map_err(|e| {
        ApiError::new(ErrorCode::InvalidPath, e.to_string()).at(match kind {
            ReportKind::Monthly => "path `month`",
            ReportKind::Quarterly => "path `quarter`",
        })
    })
}

async fn get_report(
    s: &AppState,
    kind: ReportKind,
    p: &str,
    q: ReportQuery,
) -> Result<Response, ApiError> {
    let period = period(kind, p)?;
    let format: Format = q.format.as_deref().unwrap_or("json").parse().map_err(
        |e: changegate_report::ReportError| {
            ApiError::new(ErrorCode::InvalidQuery, e.to_string()).at("query `format`")
        },
    )?;
    let settings = Settings::from_policy(&s.policy);
    let report = s.db.store().current_report(&period, &settings).await?;
    let bytes = render(&report, format).map_err(ApiError::internal)?;
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    if format == Format::Xlsx || format == Format::Csv {
        let ext = if format == Format::Xlsx {
            "xlsx"
        } else {
            "csv"
        };
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "attachment; filename=\"changegate-{}-{}.{ext}\"",
            kind.as_str(),
            report.period
        )) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

/// `GET /api/v1/reports/monthly/{month}`.
pub async fn monthly(
    State(s): State<AppState>,
    _caller: Caller,
    Path(month): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    get_report(&s, ReportKind::Monthly, &month, q).await
}

/// `GET /api/v1/reports/quarterly/{quarter}`.
pub async fn quarterly(
    State(s): State<AppState>,
    _caller: Caller,
    Path(quarter): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    get_report(&s, ReportKind::Quarterly, &quarter, q).await
}

async fn sign(
    s: &AppState,
    caller: &Caller,
    kind: ReportKind,
    p: &str,
    body: SignBody,
) -> Result<Response, ApiError> {
    let period = period(kind, p)?;
    let settings = Settings::from_policy(&s.policy);
    let reviewers = changegate_report::required_roles(kind, &settings);
    if !reviewers.contains(&body.role) {
        return Err(ApiError::new(
            ErrorCode::UnknownRole,
            format!(
                "`{}` does not review the {} report (reviewers: {})",
                body.role,
                kind.as_str(),
                reviewers.join(", ")
            ),
        )
        .at("body `role`"));
    }
    let world = s.db.world().await?;
    if !changegate_gate::people::holds_directly(&s.policy, &world.value, &caller.person, &body.role)
    {
        return Err(ApiError::new(
            ErrorCode::ReportSignerUnauthorized,
            format!(
                "{} does not hold the role `{}` (policy roles.{}.holders)",
                caller.person, body.role, body.role
            ),
        ));
    }
    let via = json!({ "token": caller.token_id, "authority": "roles-holder" });
    let (report, appended) =
        s.db.store()
            .sign_report(&period, &settings, &body.role, &caller.person, via)
            .await?;
    let mut missing = report.signoffs.missing.clone();
    missing.retain(|r| *r != body.role);
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({
            "report": changegate_report::report_name(kind, &report.period),
            "role": body.role,
            "person": caller.person,
            "digest": report.digest,
            "checkpoint": report.proof.as_ref().map(|p| &p.checkpoint),
            "event": appended,
            "missing": missing,
        })),
    )
        .into_response())
}

/// `POST /api/v1/reports/monthly/{month}/signoffs`.
pub async fn sign_monthly(
    State(s): State<AppState>,
    caller: Caller,
    Path(month): Path<String>,
    JsonBody(b): JsonBody<SignBody>,
) -> Result<Response, ApiError> {
    sign(&s, &caller, ReportKind::Monthly, &month, b).await
}

/// `POST /api/v1/reports/quarterly/{quarter}/signoffs`.
pub async fn sign_quarterly(
    State(s): State<AppState>,
    caller: Caller,
    Path(quarter): Path<String>,
    JsonBody(b): JsonBody<SignBody>,
) -> Result<Response, ApiError> {
    sign(&s, &caller, ReportKind::Quarterly, &quarter, b).await
}

//! Handlers, one module per resource, each with its own [`Router`]; [`app`] merges them.
//!
//! Every write follows one pattern: load the current state with its version, apply a validated
//! gate command (`changegate_gate::ops`), and store the new state only if nobody else wrote in
//! between (compare-and-swap on the version), in the same transaction as its audit event. On a
//! lost race the command is re-validated against the fresh state and retried, so concurrent
//! approvals across replicas never lose an update and never double-approve.
//!
//! | module | routes |
//! | --- | --- |
//! | [`health`] | `/health`, `/health/database`, `/openapi.json` |
//! | [`changes`] | `GET /changes`, `GET /changes/{id}`, `GET /overdue`, change views |
//! | [`create`] | `POST /changes` (from a body, a pull request, server-side classification) |
//! | [`approvals`] | `POST /changes/{id}/approvals`, `…/attestations`, `…/exceptions`, `…/ops`, `GET …/decision` |
//! | [`incidents`] | `/incidents`, `/announcements`, and every write of the shared world |
//! | [`admin`] | `POST /changes/import`, `PUT /teams/{name}`, `PUT /aliases/{alias}` |
//! | [`tokens`] | `GET /tokens`, `POST /tokens`, `DELETE /tokens/{id}` |
//! | [`rollbacks`] | `/changes/{id}/rollbacks…`, `…/rollback-tests`, `…/duties/{duty}` |
//! | [`gates`] | `/gates/flagger/{confirm-rollout,confirm-promotion,rollback}`, `/gates/argo/changes/{id}` |
//! | [`webhooks`] | `POST /webhooks/pagerduty`, `POST /webhooks/alertmanager`, `GET /deliveries`, `POST /deliveries/{row}/retry` |
//! | [`reports`] | `GET /reports/monthly/{month}`, `GET /reports/quarterly/{quarter}`, `POST …/signoffs` |
//! | [`notifications`] | `GET /notifications`, `POST /notifications/{id}/retry` |
//! | [`crate::rollouts::routes`] | `POST /changes/{id}/rollouts`, `GET /changes/{id}/rollouts` |

pub mod admin;
pub mod approvals;
pub mod changes;
pub mod create;
pub mod gates;
pub mod health;
pub mod incidents;
pub mod notifications;
pub mod reports;
pub mod rollbacks;
pub mod tokens;
pub mod webhooks;

use axum::Router;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Caller;

/// How often a write retries after losing a compare-and-swap race.
const MAX_RETRIES: usize = 16;

/// Every route of the API (without layers or state; see [`crate::router`]).
pub fn app() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(changes::router())
        .merge(create::router())
        .merge(approvals::router())
        .merge(incidents::router())
        .merge(admin::router())
        .merge(tokens::router())
        .merge(rollbacks::router())
        .merge(gates::router())
        .merge(webhooks::router())
        .merge(notifications::router())
        .merge(crate::rollouts::routes::router())
        .merge(reports::router())
}

/// Who a write is on behalf of: the caller, or (admin tokens only) someone named in the body.
fn acting_as(caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
    match named {
        Some(p) if p != caller.person => {
            if caller.admin {
                Ok(p)
            } else {
                Err(ApiError::new(
                    ErrorCode::ImpersonationForbidden,
                    format!(
                        "{} may not act on behalf of {p}; only admin tokens may",
                        caller.person
                    ),
                ))
            }
        }
        _ => Ok(caller.person.clone()),
    }
}

/// A change id the caller chose: 1-64 characters of `A-Z a-z 0-9 . _ -`, located at `location`.
fn check_id(id: &str, location: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidId,
            format!("change id `{id}` must be 1-64 characters of A-Z a-z 0-9 . _ -"),
        )
        .at(location))
    }
}

/// Refuse an id that is taken.
async fn check_new(s: &AppState, id: &str) -> Result<(), ApiError> {
    if s.db.change(id).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::ChangeExists,
            format!("change {id} already exists"),
        ));
    }
    Ok(())
}

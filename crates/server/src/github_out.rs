//! What changegate sends back to GitHub: the `changegate` check run and the PR comment for a
//! change, and the answer to a deployment protection rule.
//!
//! This is the seam between the incoming GitHub webhooks (`routes::webhooks::github`, which call
//! these functions from the delivery worker) and the outgoing side, configured by
//! [`crate::AppState::github_out`] (`serve --github-app-id/--github-app-key-file`, or
//! `--github-checks` with a personal token). Until it is configured these do nothing.
//!
//! - [`app`]: the credential (a personal token, or a GitHub App's JWT exchanged for cached
//!   installation tokens) and the one HTTP call path.
//! - [`render`]: the check run's and comment's content, the conclusion, truncation to GitHub's
//!   limits, which reasons only time lifts.
//! - [`checks`]: publishing the check run (annotations in batches of 50) and the comment (edited
//!   in place), idempotently by digest.
//! - [`teams`]: the members of GitHub teams that hold roles (`[integrations.github] teams`).
//! - [`protection`]: deployment protection rules: approve, reject, or wait for the next slot
//!   (the leased scheduler over `server_github_gate`), callback retries, the sweeper.

pub mod app;
pub mod checks;
pub mod protection;
pub mod render;
pub mod teams;

use crate::AppState;

/// The change `change_id` (linked to a pull request) changed state: publish its check run and
/// PR comment, and make the protection rule requests waiting on its head due now. Called after
/// every state change the webhook worker applies; safe to call often (publishing is skipped when
/// the rendered content's digest is unchanged). Failures are logged; the next state change
/// publishes again.
pub async fn change_updated(state: &AppState, change_id: &str) {
    if state.github_out.is_none() {
        return;
    }
    match checks::publish(state, change_id).await {
        Ok(p) => tracing::debug!(change = %change_id, published = ?p, "github check run"),
        Err(e) => tracing::warn!(change = %change_id, error = %e, "github check run not published"),
    }
    if let Ok(Some(c)) = state.db.change(change_id).await {
        match state
            .db
            .wake_github_gates(&c.value.change.head_commit, state.now())
            .await
        {
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = protection::run_once(state).await {
                    tracing::warn!(error = %e, "protection rule scheduler: claiming failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "protection rule requests not woken"),
        }
    }
}

/// A verified `deployment_protection_rule` delivery (action `requested`): evaluate the gate for
/// the deployment and answer through its `deployment_callback_url`. `delivery` is GitHub's
/// `X-GitHub-Delivery` GUID; `payload` the verified JSON body. An `Err` is retried by the worker
/// (only when the request could not be stored; answering is the scheduler's, with its own
/// retries).
pub async fn protection_rule_requested(
    state: &AppState,
    delivery: &str,
    payload: &serde_json::Value,
) -> Result<(), String> {
    protection::requested(state, delivery, payload).await
}

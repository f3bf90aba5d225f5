//! What changegate sends back to GitHub: the `changegate` check run and the PR comment for a
//! change, and the answer to a deployment protection rule.
//!
//! This is the seam between the incoming GitHub webhooks (`routes::webhooks::github`, which call
//! these functions from the delivery worker) and the outgoing side. Until the outgoing side is
//! configured these do nothing.

use crate::AppState;

/// The change `change_id` (linked to a pull request) changed state: publish its check run and
/// PR comment. Called after every state change the webhook worker applies; safe to call often
/// (publishing is idempotent per change state).
pub async fn change_updated(_state: &AppState, _change_id: &str) {}

/// A verified `deployment_protection_rule` delivery (action `requested`): evaluate the gate for
/// the deployment and answer through its `deployment_callback_url`. `delivery` is GitHub's
/// `X-GitHub-Delivery` GUID; `payload` the verified JSON body. An `Err` is retried by the worker.
pub async fn protection_rule_requested(
    _state: &AppState,
    _delivery: &str,
    _payload: &serde_json::Value,
) -> Result<(), String> {
    Ok(())
}

//! The notification worker: sends due outbox rows, at least once.
//!
//! Like the delivery worker ([`crate::deliveries`]): one task per server process, polling every
//! [`WorkerConfig::poll`]; it leases due rows, renders each with the change and the world as they
//! are now, sends it through its channel's adapter and marks it `sent` with the receiver's
//! receipt, only while it still holds the lease. A failed send is due again after an exponential
//! backoff (or the delay a 429 asked for) and `dead` after [`WorkerConfig::max_attempts`] (or at
//! once when the receiver refuses it for good); `POST /api/v1/notifications/{id}/retry` makes a
//! dead one pending again. A process killed between sending and marking leaves the row pending
//! with its lease: once the lease expires, this or another process sends it again, with the same
//! dedupe key.

use std::time::Duration;

use changegate_audit::AuditEvent;
use changegate_gate::{Publication, SentNotice};
use changegate_policy::ChannelKind;
use changegate_store::{Finished, NoticeWrite, Notification, NotificationStatus, StoreError};
use jiff::SignedDuration;
use serde_json::json;

use super::Notifier;
use super::render::{Rendered, render};
use super::send::{self, SendError};
use crate::AppState;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in leases (unique per process).
    pub owner: String,
    /// Poll this often.
    pub poll: Duration,
    /// A claimed notification is this worker's for this long.
    pub lease: SignedDuration,
    /// Notifications claimed at once.
    pub batch: i64,
    /// Attempts before a notification is `dead`.
    pub max_attempts: i64,
    /// Delay before the second attempt; doubled for each further one.
    pub backoff: SignedDuration,
    /// Longest delay between attempts.
    pub max_backoff: SignedDuration,
    /// Slack: at least this long between two messages to one channel.
    pub slack_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let mut id = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        WorkerConfig {
            owner: format!("notify-{}-{}", std::process::id(), hex::encode(id)),
            poll: Duration::from_secs(1),
            lease: SignedDuration::from_secs(60),
            batch: 16,
            max_attempts: 8,
            backoff: SignedDuration::from_secs(2),
            max_backoff: SignedDuration::from_mins(30),
            slack_interval: Duration::from_secs(1),
        }
    }
}

impl WorkerConfig {
    /// The delay after `attempts` failed attempts.
    pub fn delay(&self, attempts: i64) -> SignedDuration {
        let exp = attempts.clamp(1, 20) - 1;
        let secs = self.backoff.as_secs_f64() * 2f64.powi(exp as i32);
        SignedDuration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()))
    }
}

/// Start the worker: runs until the task is aborted.
pub fn spawn(state: AppState, n: std::sync::Arc<Notifier>) -> tokio::task::JoinHandle<()> {
    changegate_store::spawn_background(async move {
        tracing::info!(owner = %n.cfg.owner, channels = ?n.active(), "notification worker started");
        loop {
            match run_once(&state, &n).await {
                Ok(k) if k as i64 >= n.cfg.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "notification worker: claiming failed"),
            }
            tokio::time::sleep(n.cfg.poll).await;
        }
    })
}

/// Claim the due notifications once and send them; how many were claimed.
pub async fn run_once(state: &AppState, n: &Notifier) -> Result<usize, StoreError> {
    let claimed = state
        .db
        .claim_notifications(&n.cfg.owner, state.now(), n.cfg.lease, n.cfg.batch)
        .await?;
    let k = claimed.len();
    for row in claimed {
        process(state, n, &row).await;
    }
    Ok(k)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent.
    Sent,
    /// Cancelled: its condition no longer held.
    Cancelled,
    /// Failed; due again later.
    Retry(String),
    /// Failed for good (dead letter).
    Dead(String),
    /// Another worker holds it now.
    LeaseLost,
}

/// Send one claimed notification and record what happened.
pub async fn process(state: &AppState, n: &Notifier, row: &Notification) -> Outcome {
    let result = attempt(state, n, row).await;
    let now = state.now();
    let out = match result {
        Ok((status, receipt)) => match finish(state, n, row, status, &receipt).await {
            Ok(Finished::Done) if status == NotificationStatus::Sent => Outcome::Sent,
            Ok(Finished::Done) => Outcome::Cancelled,
            Ok(Finished::LeaseLost) => Outcome::LeaseLost,
            Ok(Finished::Conflict) => {
                return Outcome::Retry("the notice's document kept changing".into());
            }
            Err(e) => {
                // Sent but not marked: the lease expires and it is sent again (same key).
                tracing::warn!(id = row.id, error = %e, "notification sent, but marking it failed");
                return Outcome::Retry(e.to_string());
            }
        },
        Err(SendError::Permanent(e)) => {
            let _ = state
                .db
                .fail_notification(row.id, &n.cfg.owner, &e, now, None)
                .await;
            Outcome::Dead(e)
        }
        Err(SendError::Retry { message, after }) => {
            if row.attempts >= n.cfg.max_attempts {
                let _ = state
                    .db
                    .fail_notification(row.id, &n.cfg.owner, &message, now, None)
                    .await;
                Outcome::Dead(message)
            } else {
                let mut delay = n.cfg.delay(row.attempts);
                if let Some(a) = after.and_then(|a| SignedDuration::try_from(a).ok()) {
                    delay = delay.max(a);
                }
                let at = now.checked_add(delay).unwrap_or(now);
                let _ = state
                    .db
                    .fail_notification(row.id, &n.cfg.owner, &message, now, Some(at))
                    .await;
                Outcome::Retry(message)
            }
        }
    };
    match &out {
        Outcome::Sent => {
            tracing::info!(id = row.id, channel = %row.channel, event = %row.event, "notification sent")
        }
        Outcome::Cancelled => tracing::info!(id = row.id, event = %row.event, "reminder cancelled"),
        Outcome::Retry(e) | Outcome::Dead(e) => {
            tracing::warn!(id = row.id, channel = %row.channel, attempts = row.attempts, error = %e, "notification not sent")
        }
        Outcome::LeaseLost => {
            tracing::info!(id = row.id, "notification taken over by another worker")
        }
    }
    out
}

async fn attempt(
    state: &AppState,
    n: &Notifier,
    row: &Notification,
) -> Result<(NotificationStatus, serde_json::Value), SendError> {
    let policy = &state.policy;
    let ep = n
        .endpoints
        .0
        .get(&row.channel)
        .ok_or_else(|| SendError::Retry {
            message: format!(
                "channel `{}` has no endpoint in this server's --notify-config",
                row.channel
            ),
            after: None,
        })?;
    let store_err = |e: StoreError| SendError::Retry {
        message: format!("reading the state to render: {e}"),
        after: None,
    };
    let change = match row.payload["change"].as_str() {
        Some(id) => state
            .db
            .change(id)
            .await
            .map_err(store_err)?
            .map(|v| v.value),
        None => None,
    };
    let world = state.db.world().await.map_err(store_err)?.value;
    let m = match render(policy, row, change.as_ref(), &world) {
        Rendered::Send(m) => m,
        Rendered::Cancel(reason) => {
            return Ok((
                NotificationStatus::Cancelled,
                json!({ "cancelled": reason }),
            ));
        }
    };
    let ch = policy.notifications.channels.get(&row.channel);
    let receipt = match ep.kind {
        ChannelKind::Slack => {
            // One message per second per channel, counted from the previous answer (what the
            // receiver sees), with the channel's pacing held across the send.
            let mut last = n.last_sent.lock().await;
            if let Some(t) = last.get(&row.channel) {
                tokio::time::sleep_until(*t + n.cfg.slack_interval).await;
            }
            let sent = send::slack(&n.http, ep, row, &m).await;
            last.insert(row.channel.clone(), tokio::time::Instant::now());
            sent?
        }
        ChannelKind::Webhook => send::webhook(&n.http, ep, row, &m).await?,
        ChannelKind::Email => {
            let to = ch.map(|c| c.to.clone()).unwrap_or_default();
            send::email(ep, &to, row, &m).await?
        }
        ChannelKind::Statuspage => {
            let components = ch.map(|c| c.components.clone()).unwrap_or_default();
            let created = if row.payload["phase"].is_string() {
                maintenance_id(state, row).await
            } else {
                None
            };
            send::statuspage(&n.http, ep, &components, row, &m, created.as_deref()).await?
        }
    };
    Ok((NotificationStatus::Sent, receipt))
}

/// What a channel kind is called where the gate reads sent notices (`announce_via`).
fn via(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Email => "email",
        ChannelKind::Statuspage => "status-page",
        ChannelKind::Slack => "slack",
        ChannelKind::Webhook => "webhook",
    }
}

/// Mark the row, committing with it the notice it is (the stakeholder notice on the change, the
/// maintenance announcement's channel in the world) when it was sent: the record the gate reads.
/// Retries a lost compare-and-swap on the document.
async fn finish(
    state: &AppState,
    n: &Notifier,
    row: &Notification,
    status: NotificationStatus,
    receipt: &serde_json::Value,
) -> Result<Finished, StoreError> {
    let kind = n.endpoints.0.get(&row.channel).map(|e| e.kind);
    // The rollback's own record of its `#incidents` notice (`incident_notice.status`).
    let rollback_notice = row.event == "change-rolled-back"
        && row.payload["manual"] == true
        && kind == Some(ChannelKind::Slack);
    let is_notice = status == NotificationStatus::Sent
        && kind.is_some()
        && (row.event == "stakeholder-notice"
            || rollback_notice
            || (row.event == "maintenance-announced" && !row.payload["phase"].is_string()));
    if !is_notice {
        return state
            .db
            .finish_notification(row.id, &n.cfg.owner, status, receipt, state.now(), None)
            .await;
    }
    let via = via(kind.expect("checked")).to_string();
    for _ in 0..16 {
        let now = state.now();
        let sent = SentNotice {
            via: via.clone(),
            channel: row.channel.clone(),
            notification: row.id,
            at: now,
        };
        let event = AuditEvent::new("notice.sent", "changegate").details(json!({
            "notification": row.id, "channel": row.channel, "via": via, "event": row.event,
            "subject": row.subject, "dedupe_key": row.dedupe_key,
        }));
        let done = if row.event == "stakeholder-notice" || rollback_notice {
            let id = row.payload["change"].as_str().unwrap_or_default();
            let Some(current) = state.db.change(id).await? else {
                return state
                    .db
                    .finish_notification(row.id, &n.cfg.owner, status, receipt, now, None)
                    .await;
            };
            let mut next = current.value.clone();
            if rollback_notice {
                let rid = row.payload["request"].as_str().unwrap_or_default();
                if let Some(notice) = next
                    .rollback
                    .requests
                    .iter_mut()
                    .find(|r| r.id == rid)
                    .and_then(|r| r.incident_notice.as_mut())
                {
                    notice.status = "sent".into();
                }
            } else {
                let item = next
                    .lead_items
                    .entry("stakeholder-notice".into())
                    .or_insert_with(|| Publication {
                        at: now,
                        link: None,
                        by: None,
                        sent: None,
                    });
                if item.sent.is_none() {
                    item.sent = Some(sent);
                }
            }
            let event = event.change(id);
            state
                .db
                .finish_notification(
                    row.id,
                    &n.cfg.owner,
                    status,
                    receipt,
                    now,
                    Some(NoticeWrite::Change {
                        id,
                        expected: current.version,
                        state: &next,
                        event,
                    }),
                )
                .await?
        } else {
            let current = state.db.world().await?;
            let mut next = current.value.clone();
            let aid = row.payload["announcement"].as_str().unwrap_or_default();
            if let Some(a) = next.announcements.iter_mut().find(|a| a.id == aid)
                && !a
                    .sent
                    .iter()
                    .any(|s| s.via == via && s.channel == row.channel)
            {
                a.sent.push(sent);
            }
            state
                .db
                .finish_notification(
                    row.id,
                    &n.cfg.owner,
                    status,
                    receipt,
                    now,
                    Some(NoticeWrite::World {
                        expected: current.version,
                        world: &next,
                        event,
                    }),
                )
                .await?
        };
        if done != Finished::Conflict {
            return Ok(done);
        }
    }
    Ok(Finished::Conflict)
}

/// The Statuspage incident id the creation of this announcement's maintenance received.
async fn maintenance_id(state: &AppState, row: &Notification) -> Option<String> {
    let sent = state
        .db
        .list_notifications(Some(NotificationStatus::Sent), Some(&row.subject), 100)
        .await
        .ok()?;
    sent.iter()
        .find(|s| {
            s.channel == row.channel
                && s.event == "maintenance-announced"
                && !s.payload["phase"].is_string()
        })
        .and_then(|s| s.receipt.as_ref())
        .and_then(|r| r["body"]["id"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WorkerConfig::default();
        assert_eq!(cfg.delay(1), SignedDuration::from_secs(2));
        assert_eq!(cfg.delay(3), SignedDuration::from_secs(8));
        assert_eq!(cfg.delay(40), SignedDuration::from_mins(30));
    }
}

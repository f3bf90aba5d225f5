//! Notifications out: a transactional outbox, a background sender, channel adapters.
//!
//! - [`route`]: what an audit event means as notifications, routed by the policy's
//!   `[notifications]` to the channels that have an endpoint. [`install`] puts it on the store,
//!   which calls it inside the transaction of every audit append, so the rows commit with the
//!   state change that causes them (or not at all).
//! - [`config`]: the endpoints and secrets of the channels (`serve --notify-config`), never in
//!   the policy.
//! - [`render`]: the message of a notification, rendered when it is sent (with the change and the
//!   world as they are then: a reminder whose duty was done is cancelled instead), and its Slack
//!   Block Kit, e-mail, webhook and Statuspage forms.
//! - [`send`]: one adapter per channel kind.
//! - [`worker`]: leases due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, replicas share the work),
//!   sends, marks `sent`, retries with exponential backoff, `dead` after the last attempt. A row
//!   due in the future is a scheduled reminder: the outbox is also the scheduler of the policy's
//!   time-driven duties, surviving restarts and run once across replicas by the lease.

pub mod config;
pub mod render;
pub mod route;
pub mod send;
pub mod worker;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use changegate_policy::Policy;
use changegate_store::{NotificationRouter, Store};

pub use config::{ConfigError, Endpoint, Endpoints};
pub use worker::WorkerConfig;

/// The sender: the channel endpoints, an HTTP client, the worker's settings and the per-channel
/// pacing of Slack (one message per second per channel).
#[derive(Debug)]
pub struct Notifier {
    /// Endpoints by channel name.
    pub endpoints: Endpoints,
    /// HTTP client (Slack, webhooks, Statuspage).
    pub http: reqwest::Client,
    /// Worker settings.
    pub cfg: WorkerConfig,
    pub(crate) last_sent: tokio::sync::Mutex<HashMap<String, tokio::time::Instant>>,
}

impl Notifier {
    /// A sender over these endpoints.
    pub fn new(endpoints: Endpoints, cfg: WorkerConfig) -> Notifier {
        Notifier {
            endpoints,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            cfg,
            last_sent: Default::default(),
        }
    }

    /// The channels that have an endpoint (the only ones anything is queued for).
    pub fn active(&self) -> BTreeSet<String> {
        self.endpoints.0.keys().cloned().collect()
    }
}

/// The routing function for `policy` and the `active` channels, as the store calls it.
pub fn router(policy: Arc<Policy>, active: BTreeSet<String>) -> NotificationRouter {
    Arc::new(
        move |e: &changegate_audit::AuditEvent, seq: u64, at: jiff::Timestamp| {
            route::route(&policy, &active, e, seq, at)
        },
    )
}

/// Install the routing function on the store: from now on every audit append queues the
/// notifications it causes for the active channels. Returns the policy's channels that stay
/// inactive (no endpoint), for the server to say at start.
pub fn install(store: &Store, policy: Arc<Policy>, active: BTreeSet<String>) -> Vec<String> {
    let inactive = policy
        .notifications
        .channels
        .keys()
        .filter(|c| !active.contains(*c))
        .cloned()
        .collect();
    store.set_notification_router(Some(router(policy, active)));
    inactive
}

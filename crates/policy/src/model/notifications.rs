//! Notifications (`[notifications]`): the channels changegate sends to (Slack incoming webhooks,
//! e-mail, an Atlassian Statuspage, signed webhooks) and which events go to which channel per
//! category.
//!
//! Why only names, recipients and components here, never a webhook URL or an SMTP password: the
//! policy file is reviewed and versioned like code, and secrets do not belong in it. `changegate
//! serve --notify-config FILE` binds each channel name to its endpoint and credentials; a channel
//! the server has no endpoint for is inactive (nothing is queued for it, and the server says so at
//! start). So the seed may route every event the policy names to the channels the policy names
//! without sending anything until an operator configures them.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Level;

/// Notification channels and routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Base URL of the dashboard: a message too long for its channel links to
    /// `{base_url}/changes/{id}` instead of growing. Empty: the message is cut with a note.
    #[serde(default)]
    pub base_url: String,
    /// Channels by name.
    #[serde(default)]
    pub channels: IndexMap<String, Channel>,
    /// Which events go where: every route whose events and categories match sends to its
    /// channels (a channel named by several matching routes gets one message).
    #[serde(default)]
    pub routes: Vec<NotifyRoute>,
    /// Notices the gate accepts only as sent by changegate (the outbox's record that the receiver
    /// accepted it, from its time), never as declared: lead-time ids (`stakeholder-notice`) and
    /// `maintenance-announcement`. Empty: a declared notice counts (the seed, whose channels have
    /// no endpoints until `serve --notify-config` binds them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_sent: Vec<String>,
}

/// The `require_sent` entry for the maintenance-window announcement.
pub const SENT_MAINTENANCE_ANNOUNCEMENT: &str = "maintenance-announcement";

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// A Slack incoming webhook (Block Kit message).
    Slack,
    /// E-mail over SMTP to `to`.
    Email,
    /// An Atlassian Statuspage-compatible API: scheduled maintenances for announced windows.
    Statuspage,
    /// A generic webhook: a JSON body signed with HMAC-SHA256.
    Webhook,
}

impl ChannelKind {
    /// Its name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
            ChannelKind::Statuspage => "statuspage",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// `slack`, `email`, `statuspage` or `webhook`.
    pub kind: ChannelKind,
    /// What it is (`Slack #deployments`).
    #[serde(default)]
    pub description: String,
    /// Recipients (`email` channels): addresses, at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Status-page component ids a scheduled maintenance affects (`statuspage` channels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
}

/// Events changegate notifies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A change entered review.
    ChangeSubmitted,
    /// An approval was recorded.
    ChangeApproved,
    /// A deployment started.
    DeploymentStarted,
    /// A deployment completed.
    ChangeDeployed,
    /// A change was rolled back (automatically or by hand).
    ChangeRolledBack,
    /// An emergency was declared for a change.
    EmergencyDeclared,
    /// An incident opened.
    IncidentOpened,
    /// An incident changed (severity, commander, reopened).
    IncidentUpdated,
    /// An incident resolved.
    IncidentResolved,
    /// An incident of a freezing severity opened: changes are frozen.
    FreezeStarted,
    /// A maintenance window was announced (e-mail; status page: a scheduled maintenance).
    MaintenanceAnnounced,
    /// The stakeholder notice of a change was requested (`publish stakeholder-notice`): sent by
    /// changegate, and recorded as the change's notice once sent.
    StakeholderNotice,
    /// The Incident Commander's standby after a category-3 deploy begins (and its end is due).
    StandbyReminder,
    /// A daily status update after a category-3 deploy is due.
    StatusUpdateDue,
    /// An emergency's retrospective (and its follow-up PR) is due; sent when it is not recorded
    /// by then.
    RetrospectiveDue,
    /// A post-mortem of a manual rollback is due; sent when it is not recorded by then.
    PostMortemDue,
    /// The executive report of a P0 or security incident is due.
    ExecutiveReport,
    /// The server generated the monthly audit report or the quarterly review (on the first day
    /// of the month / quarter); its reviewers are to sign it.
    ReportGenerated,
}

impl NotifyEvent {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ChangeSubmitted => "change-submitted",
            NotifyEvent::ChangeApproved => "change-approved",
            NotifyEvent::DeploymentStarted => "deployment-started",
            NotifyEvent::ChangeDeployed => "change-deployed",
            NotifyEvent::ChangeRolledBack => "change-rolled-back",
            NotifyEvent::EmergencyDeclared => "emergency-declared",
            NotifyEvent::IncidentOpened => "incident-opened",
            NotifyEvent::IncidentUpdated => "incident-updated",
            NotifyEvent::IncidentResolved => "incident-resolved",
            NotifyEvent::FreezeStarted => "freeze-started",
            NotifyEvent::MaintenanceAnnounced => "maintenance-announced",
            NotifyEvent::StakeholderNotice => "stakeholder-notice",
            NotifyEvent::StandbyReminder => "standby-reminder",
            NotifyEvent::StatusUpdateDue => "status-update-due",
            NotifyEvent::RetrospectiveDue => "retrospective-due",
            NotifyEvent::PostMortemDue => "post-mortem-due",
            NotifyEvent::ExecutiveReport => "executive-report",
            NotifyEvent::ReportGenerated => "report-generated",
        }
    }
}

/// A route: these events (of these categories) go to these channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRoute {
    /// Events.
    pub events: Vec<NotifyEvent>,
    /// Category levels; empty: every category, and events about no change (incidents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Level>,
    /// Channel names under `[notifications.channels]`.
    pub channels: Vec<String>,
}

impl Notifications {
    /// Whether the gate accepts `notice` (a lead-time id or `maintenance-announcement`) only as
    /// sent by changegate.
    pub fn requires_sent(&self, notice: &str) -> bool {
        self.require_sent.iter().any(|n| n == notice)
    }

    /// The channels `event` of a change of `category` (or of no change) goes to, each once, in
    /// the order the routes name them.
    pub fn channels_for(&self, event: NotifyEvent, category: Option<Level>) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.routes {
            if !r.events.contains(&event) {
                continue;
            }
            let cat_ok =
                r.categories.is_empty() || category.is_some_and(|c| r.categories.contains(&c));
            if !cat_ok {
                continue;
            }
            for c in &r.channels {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
        }
        out
    }
}

//! The channel endpoints and secrets (`serve --notify-config FILE`, or the file named by
//! `CHANGEGATE_NOTIFY_CONFIG`): what the policy must not hold.
//!
//! ```toml
//! [channels.deployments]              # a slack channel of the policy
//! url_file = "/run/secrets/slack-deployments"   # or url = "https://hooks.slack.com/services/…"
//!
//! [channels.stakeholders]             # an email channel
//! url = "smtp://mail.example.com:587"  # STARTTLS when the server offers it; smtps:// for TLS
//! starttls = "required"               # refuse to send in clear text (default: "opportunistic")
//! ca_file = "/etc/ssl/private-ca.pem" # trust this CA (PEM) besides the system's roots
//! username = "changegate"
//! secret_file = "/run/secrets/smtp-password"
//! from = "changegate@example.com"
//!
//! [channels.status-page]              # a statuspage channel
//! url = "https://api.statuspage.io/v1"
//! page_id = "kctbh9vrtdwd"
//! secret_file = "/run/secrets/statuspage-api-key"
//!
//! [channels.audit-sink]               # a webhook channel
//! url = "https://hooks.example.com/changegate"
//! secret_file = "/run/secrets/hook-hmac"
//! ```
//!
//! Every entry must name a channel the policy declares, and carry what its kind needs; anything
//! else is refused at start with the entry's name. Secrets are never printed (`Debug` redacts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use changegate_policy::{ChannelKind, Policy};
use serde::Deserialize;

use crate::signature::Secret;

/// Why the notification config is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification config {file}: {message}")]
pub struct ConfigError {
    /// The file (as given).
    pub file: String,
    /// What is wrong, naming the entry.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    url: Option<String>,
    url_file: Option<PathBuf>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    username: Option<String>,
    from: Option<String>,
    page_id: Option<String>,
    starttls: Option<StartTls>,
    ca_file: Option<PathBuf>,
}

/// Whether an `smtp://` channel may send without TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartTls {
    /// STARTTLS when the server offers it, clear text when it does not (the default: what
    /// "STARTTLS where offered" means, and what a relay on loopback needs).
    #[default]
    Opportunistic,
    /// STARTTLS or no delivery: a server that does not offer it (or a man in the middle that
    /// strips the offer) gets nothing, and the notification is retried, then dead-lettered.
    Required,
}

/// A channel's endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// The policy's kind of the channel.
    pub kind: ChannelKind,
    /// Webhook URL, SMTP URL or API base.
    pub url: String,
    /// HMAC secret (webhook), API key (statuspage), password (SMTP).
    pub secret: Option<Secret>,
    /// The secret's text (SMTP password, API key), kept only to send it.
    pub(crate) secret_text: Option<String>,
    /// SMTP user name.
    pub username: Option<String>,
    /// SMTP sender.
    pub from: Option<String>,
    /// Statuspage page id.
    pub page_id: Option<String>,
    /// SMTP: whether STARTTLS is required (`smtp://` only; `smtps://` is TLS from the start).
    pub starttls: StartTls,
    /// SMTP: an extra trusted CA certificate (PEM), e.g. a company CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL of a Slack webhook is its secret: show only the scheme and host.
        let shown = self
            .url
            .split_once("://")
            .map(|(s, rest)| format!("{s}://{}/…", rest.split(['/', '@']).next().unwrap_or("")))
            .unwrap_or_else(|| "…".into());
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("url", &shown)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Every configured channel endpoint, by channel name.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(pub BTreeMap<String, Endpoint>);

fn read(path: &Path, what: &str, file: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| ConfigError {
            file: file.to_string(),
            message: format!("cannot read {what} file {}: {e}", path.display()),
        })
}

impl Endpoints {
    /// Parse the config text against the policy's channels.
    pub fn parse(text: &str, file: &str, policy: &Policy) -> Result<Endpoints, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.message().to_string()))?;
        let mut out = BTreeMap::new();
        for (name, c) in raw.channels {
            let Some(ch) = policy.notifications.channels.get(&name) else {
                let known: Vec<&str> = policy
                    .notifications
                    .channels
                    .keys()
                    .map(String::as_str)
                    .collect();
                return Err(err(format!(
                    "[channels.{name}]: the policy declares no such channel (declared: {})",
                    known.join(", ")
                )));
            };
            let url = match (c.url, c.url_file) {
                (Some(u), None) => u,
                (None, Some(f)) => read(&f, &format!("[channels.{name}] url"), file)?,
                (Some(_), Some(_)) => {
                    return Err(err(format!(
                        "[channels.{name}]: give `url` or `url_file`, not both"
                    )));
                }
                (None, None) => {
                    return Err(err(format!(
                        "[channels.{name}]: `url` (or `url_file`) is required"
                    )));
                }
            };
            let secret_text = match (c.secret, c.secret_file) {
                (Some(s), None) => Some(s),
                (None, Some(f)) => Some(read(&f, &format!("[channels.{name}] secret"), file)?),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(err(format!(
                        "[channels.{name}]: give `secret` or `secret_file`, not both"
                    )));
                }
            };
            let scheme_ok = match ch.kind {
                ChannelKind::Email => url.starts_with("smtp://") || url.starts_with("smtps://"),
                _ => url.starts_with("https://") || url.starts_with("http://"),
            };
            if !scheme_ok {
                let want = if ch.kind == ChannelKind::Email {
                    "smtp:// or smtps://"
                } else {
                    "https:// (or http:// on loopback)"
                };
                return Err(err(format!(
                    "[channels.{name}] url: a {} channel needs a {want} URL",
                    ch.kind.as_str()
                )));
            }
            let need = |ok: bool, what: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(err(format!(
                        "[channels.{name}]: a {} channel needs {what}",
                        ch.kind.as_str()
                    )))
                }
            };
            if ch.kind != ChannelKind::Email && (c.starttls.is_some() || c.ca_file.is_some()) {
                return Err(err(format!(
                    "[channels.{name}]: `starttls` and `ca_file` are for email channels only"
                )));
            }
            let ca_pem = match &c.ca_file {
                None => None,
                Some(f) => {
                    let pem = std::fs::read(f).map_err(|e| {
                        err(format!(
                            "[channels.{name}] ca_file: cannot read {}: {e}",
                            f.display()
                        ))
                    })?;
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(err(format!(
                            "[channels.{name}] ca_file: {} holds no PEM certificate \
                             (-----BEGIN CERTIFICATE-----)",
                            f.display()
                        )));
                    }
                    Some(pem)
                }
            };
            match ch.kind {
                ChannelKind::Email => need(c.from.is_some(), "`from`")?,
                ChannelKind::Statuspage => {
                    need(c.page_id.is_some(), "`page_id`")?;
                    need(secret_text.is_some(), "`secret` (the API key)")?;
                }
                ChannelKind::Webhook => need(
                    secret_text.as_deref().is_some_and(|s| !s.is_empty()),
                    "`secret` (the HMAC signing secret)",
                )?,
                ChannelKind::Slack => {}
            }
            out.insert(
                name,
                Endpoint {
                    kind: ch.kind,
                    url,
                    secret: secret_text.as_deref().and_then(Secret::new),
                    secret_text,
                    username: c.username,
                    from: c.from,
                    page_id: c.page_id,
                    starttls: c.starttls.unwrap_or_default(),
                    ca_pem,
                },
            );
        }
        Ok(Endpoints(out))
    }
}

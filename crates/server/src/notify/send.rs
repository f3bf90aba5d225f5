//! Channel adapters: one send per kind, each returning the receiver's receipt or why it failed
//! (and whether trying again can help).
//!
//! Every adapter hands the receiver the notification's dedupe key, so a receiver that dedupes
//! shows a message once even when changegate sends it twice (a crash between sending and marking
//! it sent): Slack and webhooks get it as `Idempotency-Key` (and `X-Changegate-Notification`),
//! e-mail as the `Message-ID` (`<sha256(key)@changegate>`), a Statuspage maintenance carries it
//! in its `metadata` and the worker looks for an existing maintenance with it before creating
//! one. What "at least once" means per channel is in docs/notifications.md.

use std::collections::HashMap;
use std::time::Duration;

use changegate_store::Notification;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::config::Endpoint;
use super::render::{self, Message};

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (a timeout, a 5xx, a 429 with the delay asked for).
    #[error("{message}")]
    Retry {
        /// What happened (never a secret).
        message: String,
        /// The delay the receiver asked for (`Retry-After`).
        after: Option<Duration>,
    },
    /// Trying again cannot help (a 4xx other than 408/429: the endpoint refuses the message).
    #[error("{0}")]
    Permanent(String),
}

fn retry(message: impl Into<String>) -> SendError {
    SendError::Retry {
        message: message.into(),
        after: None,
    }
}

/// The Message-ID of a notification's e-mail: stable per dedupe key.
pub fn message_id(dedupe_key: &str) -> String {
    let d = Sha256::digest(dedupe_key.as_bytes());
    format!("<{}@changegate>", hex::encode(&d[..16]))
}

/// What a URL is safe to show as: scheme and host (a Slack webhook's path is its secret).
fn host_of(url: &str) -> String {
    url.split_once("://")
        .map(|(s, r)| format!("{s}://{}", r.split(['/', '?']).next().unwrap_or("")))
        .unwrap_or_default()
}

async fn answer(
    resp: Result<reqwest::Response, reqwest::Error>,
    url: &str,
) -> Result<Value, SendError> {
    let resp = resp.map_err(|e| {
        retry(format!(
            "{}: {}",
            host_of(url),
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request failed".to_string()
            }
        ))
    })?;
    let status = resp.status();
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.unwrap_or_default();
    let short: String = text.chars().take(200).collect();
    if status.is_success() {
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(short));
        return Ok(json!({ "status": status.as_u16(), "body": body }));
    }
    let message = format!("{} answered {}: {short}", host_of(url), status.as_u16());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(SendError::Retry { message, after })
    } else {
        Err(SendError::Permanent(message))
    }
}

/// Slack: POST the Block Kit body to the incoming webhook.
pub async fn slack(
    http: &reqwest::Client,
    ep: &Endpoint,
    n: &Notification,
    m: &Message,
) -> Result<Value, SendError> {
    let body = render::slack(m);
    let resp = http
        .post(&ep.url)
        .header("Idempotency-Key", &n.dedupe_key)
        .header("X-Changegate-Notification", n.id.to_string())
        .json(&body)
        .send()
        .await;
    answer(resp, &ep.url).await
}

/// A generic webhook: the JSON body, `X-Changegate-Signature: sha256=<hex HMAC-SHA256 of the
/// body>` under the channel's secret, `Idempotency-Key`, `X-Changegate-Event`.
pub async fn webhook(
    http: &reqwest::Client,
    ep: &Endpoint,
    n: &Notification,
    m: &Message,
) -> Result<Value, SendError> {
    let body = serde_json::to_vec(&render::webhook(n, m)).expect("JSON");
    let secret = ep
        .secret
        .as_ref()
        .ok_or_else(|| SendError::Permanent("the webhook channel has no signing secret".into()))?;
    let sig = format!("sha256={}", secret.sign_hex(&body));
    let resp = http
        .post(&ep.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Changegate-Signature", sig)
        .header("X-Changegate-Event", &n.event)
        .header("Idempotency-Key", &n.dedupe_key)
        .body(body)
        .send()
        .await;
    answer(resp, &ep.url).await
}

/// E-mail over SMTP (lettre): STARTTLS when the server offers it (`smtp://`), TLS from the start
/// (`smtps://`); to the channel's recipients, with a Message-ID from the dedupe key.
pub async fn email(
    ep: &Endpoint,
    to: &[String],
    n: &Notification,
    m: &Message,
) -> Result<Value, SendError> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let (wrapper, rest) = if let Some(r) = ep.url.strip_prefix("smtps://") {
        (true, r)
    } else if let Some(r) = ep.url.strip_prefix("smtp://") {
        (false, r)
    } else {
        return Err(SendError::Permanent("not an smtp:// URL".into()));
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| SendError::Permanent(format!("bad SMTP port `{p}`")))?,
        ),
        None => (hostport.to_string(), if wrapper { 465 } else { 587 }),
    };
    let mut params = TlsParameters::builder(host.clone());
    if let Some(pem) = &ep.ca_pem {
        let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
            .map_err(|e| SendError::Permanent(format!("ca_file certificate: {e}")))?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build()
        .map_err(|e| SendError::Permanent(format!("TLS parameters for {host}: {e}")))?;
    let tls = match (wrapper, ep.starttls) {
        (true, _) => Tls::Wrapper(params),
        (false, super::config::StartTls::Required) => Tls::Required(params),
        (false, super::config::StartTls::Opportunistic) => Tls::Opportunistic(params),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(user), Some(pass)) = (&ep.username, &ep.secret_text) {
        builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    let mailer = builder.build();
    let from = ep
        .from
        .as_deref()
        .unwrap_or("changegate@localhost")
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| SendError::Permanent(format!("sender address: {e}")))?;
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(format!("[changegate] {}", m.title))
        .message_id(Some(message_id(&n.dedupe_key)))
        .header(ContentType::TEXT_PLAIN);
    for addr in to {
        let mb = addr
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| SendError::Permanent(format!("recipient `{addr}`: {e}")))?;
        b = b.to(mb);
    }
    let email = b
        .body(render::email_body(m))
        .map_err(|e| SendError::Permanent(format!("cannot build the e-mail: {e}")))?;
    match mailer.send(email).await {
        Ok(r) => Ok(json!({
            "code": r.code().to_string(),
            "message_id": message_id(&n.dedupe_key),
            "recipients": to,
        })),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP {host}: {e}"))),
        Err(e) => Err(retry(format!("SMTP {host}: {e}"))),
    }
}

/// Statuspage: create the scheduled maintenance of an announced window (`phase` absent), or move
/// it to `in_progress` / `completed` (`incident_id`: the receipt of the create).
pub async fn statuspage(
    http: &reqwest::Client,
    ep: &Endpoint,
    components: &[String],
    n: &Notification,
    m: &Message,
    incident_id: Option<&str>,
) -> Result<Value, SendError> {
    let page = ep.page_id.as_deref().unwrap_or("");
    let key = ep.secret_text.as_deref().unwrap_or("");
    let base = ep.url.trim_end_matches('/');
    let auth = format!("OAuth {key}");
    let p = &n.payload;
    if let Some(phase) = p["phase"].as_str() {
        let id = incident_id.ok_or_else(|| {
            retry("the scheduled maintenance is not created yet (its creation is pending)")
        })?;
        let url = format!("{base}/pages/{page}/incidents/{id}");
        let resp = http
            .patch(&url)
            .header(reqwest::header::AUTHORIZATION, &auth)
            .json(&json!({ "incident": { "status": phase } }))
            .send()
            .await;
        return answer(resp, &url).await;
    }
    // Created before (a crash after creating it)? Then that one is ours.
    let list = format!("{base}/pages/{page}/incidents/scheduled");
    if let Ok(resp) = http
        .get(&list)
        .header(reqwest::header::AUTHORIZATION, &auth)
        .send()
        .await
        && resp.status().is_success()
        && let Ok(items) = resp.json::<Vec<Value>>().await
        && let Some(found) = items
            .iter()
            .find(|i| i["metadata"]["changegate"]["dedupe_key"] == n.dedupe_key.as_str())
    {
        return Ok(json!({ "status": 200, "body": found, "found": true }));
    }
    let url = format!("{base}/pages/{page}/incidents");
    let statuses: HashMap<&str, &str> = components
        .iter()
        .map(|c| (c.as_str(), "under_maintenance"))
        .collect();
    let body = json!({ "incident": {
        "name": m.title,
        "status": "scheduled",
        "scheduled_for": p["window_start"],
        "scheduled_until": p["window_end"],
        "scheduled_remind_prior": true,
        "body": m.lines.join("\n"),
        "component_ids": components,
        "components": statuses,
        "metadata": { "changegate": { "dedupe_key": n.dedupe_key } },
    }});
    let resp = http
        .post(&url)
        .header(reqwest::header::AUTHORIZATION, &auth)
        .json(&body)
        .send()
        .await;
    answer(resp, &url).await
}

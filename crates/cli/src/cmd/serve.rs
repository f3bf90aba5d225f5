//! `changegate serve` and `changegate token create | list | revoke`: the server and its
//! credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use changegate_server::{AppState, Clock, Db};

use changegate_server::token::TokenRequest;
use changegate_store::Revocation;

use crate::common::{Format, Global, Outcome, StoreArgs, policy};

impl StoreArgs {
    /// Open (and migrate) the database.
    pub async fn open(&self, policy: &changegate_policy::Policy) -> anyhow::Result<Db> {
        Db::open(&self.data_dir, self.database_url.as_deref(), policy)
            .await
            .with_context(|| match &self.database_url {
                Some(_) => {
                    "cannot open the PostgreSQL database given by --database-url".to_string()
                }
                None => format!("cannot open the database in {}", self.data_dir.display()),
            })
    }
}

/// `changegate serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CHANGEGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: StoreArgs,
    /// Let the server classify local repositories under DIR itself (`POST /api/v1/changes` with a
    /// `repository` path relative to DIR and no `classification`).
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,
    /// Keep bare mirrors of remote repositories in DIR, so the server classifies a change whose
    /// `repository` is a URL (https, http, ssh or git) or a name of the mirror config, and a
    /// change created from a pull request: it fetches the commits from the remote on create and
    /// on push. Only URLs under a `[[remote]]` prefix of --mirror-config are fetched.
    #[arg(long, env = "CHANGEGATE_MIRROR_DIR", value_name = "DIR")]
    pub mirror_dir: Option<PathBuf>,
    /// The mirror config (TOML): the allow-list of remote prefixes with their credentials
    /// (`token_file`, `username`, `ssh_key_file`, `known_hosts_file`), `[repositories]` names,
    /// `max_concurrent_fetches`, `fetch_timeout_secs`, `[github] clone_base`. See docs/api.md.
    #[arg(
        long,
        env = "CHANGEGATE_MIRROR_CONFIG",
        value_name = "FILE",
        requires = "mirror_dir"
    )]
    pub mirror_config: Option<PathBuf>,
    /// GitHub REST API for changes created from a pull request (token: CHANGEGATE_GITHUB_TOKEN).
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_API",
        default_value = "https://api.github.com",
        value_name = "URL"
    )]
    pub github_api: String,
    /// The manual rollback action the server runs once a rollback request's authority is complete
    /// (`POST /api/v1/changes/{id}/rollbacks`): a command (`sh -c`, `{change}` `{plan}`
    /// substituted, `CHANGEGATE_*` variables) or a webhook URL, e.g. `kubectl rollout undo
    /// deployment/chat-backend -n production`. Without it, application rollbacks are refused
    /// (`rollback-action-not-configured`).
    #[arg(long, env = "CHANGEGATE_ROLLBACK_ACTION", value_name = "CMD|URL")]
    pub rollback_action: Option<String>,
    /// The database rollback action; default: the policy's `[rollback.database] command`.
    #[arg(
        long,
        env = "CHANGEGATE_DATABASE_ROLLBACK_ACTION",
        value_name = "CMD|URL"
    )]
    pub database_rollback_action: Option<String>,
    /// Testing only: start the server's clock at this instant (it then advances in real time).
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub test_clock: Option<jiff::Timestamp>,
    /// Run rollouts (`POST /api/v1/changes/{id}/rollouts`): Prometheus, actions and the deployed
    /// service's base URL, in a TOML file (docs/rollout.md, "Server-run rollouts").
    #[arg(long, env = "CHANGEGATE_ROLLOUT_CONFIG", value_name = "FILE")]
    pub rollout_config: Option<PathBuf>,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub github_out: GithubOutArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The web dashboard's sessions and sign-in (docs/dashboard.md).
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// How long a dashboard session lasts after sign-in: a number and m, h, d or w (e.g. 30m,
    /// 8h). Never longer than the API token it was opened with.
    #[arg(
        long,
        env = "CHANGEGATE_SESSION_LIFETIME",
        default_value = "8h",
        value_name = "LIFETIME"
    )]
    pub session_lifetime: String,
    /// Always mark the session cookies `Secure` (behind a TLS-terminating proxy that does not
    /// send `X-Forwarded-Proto: https`). An `https://` --dashboard-url implies it.
    #[arg(long, env = "CHANGEGATE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The dashboard's public base URL as browsers reach it (e.g. https://changegate.example.com):
    /// GitHub sign-in's callback is URL/login/github/callback.
    #[arg(long, env = "CHANGEGATE_DASHBOARD_URL", value_name = "URL")]
    pub dashboard_url: Option<String>,
    /// Rows per page of the dashboard's change list (1-500).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub dashboard_page_size: usize,
    /// Offer "Sign in with GitHub": the client id of a GitHub OAuth app whose callback URL is
    /// --dashboard-url/login/github/callback. People sign in as the person whose `[people.NAME]
    /// github` (and `github_id`) is their login; anyone else is refused.
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_OAUTH_CLIENT_ID",
        value_name = "ID",
        requires = "dashboard_url"
    )]
    pub github_oauth_client_id: Option<String>,
    /// The OAuth app's client secret, in a file (or CHANGEGATE_GITHUB_OAUTH_CLIENT_SECRET).
    #[arg(long, value_name = "FILE", requires = "github_oauth_client_id")]
    pub github_oauth_client_secret_file: Option<PathBuf>,
    /// GitHub's web address for the OAuth flow (`/login/oauth/authorize`, `/login/oauth/access_token`);
    /// a GitHub Enterprise Server's own host. The user is read from --github-api.
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_WEB_URL",
        default_value = "https://github.com",
        value_name = "URL"
    )]
    pub github_web_url: String,
}

impl DashboardArgs {
    /// The dashboard's settings.
    pub fn load(
        &self,
        github_api: &str,
    ) -> anyhow::Result<changegate_server::dashboard::Dashboard> {
        use changegate_server::dashboard::{Dashboard, github_login::GithubLogin};
        let session_lifetime = changegate_server::token::parse_lifetime(&self.session_lifetime)
            .map_err(|e| anyhow::anyhow!("--session-lifetime: {e}"))?;
        anyhow::ensure!(
            (1..=500).contains(&self.dashboard_page_size),
            "--dashboard-page-size {} must be 1 to 500",
            self.dashboard_page_size
        );
        let url = match &self.dashboard_url {
            Some(u) => {
                Some(public_url(u).map_err(|why| anyhow::anyhow!("--dashboard-url `{u}`: {why}"))?)
            }
            None => None,
        };
        let github_login = match (&self.github_oauth_client_id, &url) {
            (Some(id), Some(url)) => {
                let secret = match &self.github_oauth_client_secret_file {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| {
                            format!(
                                "cannot read the GitHub OAuth client secret file {}",
                                path.display()
                            )
                        })?
                        .trim()
                        .to_string(),
                    None => std::env::var("CHANGEGATE_GITHUB_OAUTH_CLIENT_SECRET")
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                anyhow::ensure!(
                    !secret.is_empty(),
                    "--github-oauth-client-id needs the client secret: --github-oauth-client-secret-file or CHANGEGATE_GITHUB_OAUTH_CLIENT_SECRET"
                );
                let web = public_url(&self.github_web_url).map_err(|why| {
                    anyhow::anyhow!("--github-web-url `{}`: {why}", self.github_web_url)
                })?;
                Some(GithubLogin::new(id.trim(), &secret, &web, github_api, url))
            }
            _ => None,
        };
        Ok(Dashboard {
            session_lifetime,
            secure_cookies: self.secure_cookies
                || url.as_deref().is_some_and(|u| u.starts_with("https://")),
            page_size: self.dashboard_page_size,
            github_login,
            ..Dashboard::default()
        })
    }
}

/// A base URL (`http(s)://host[:port][/path]`, no query or fragment), without its trailing `/`.
fn public_url(u: &str) -> Result<String, &'static str> {
    let u = u.trim();
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if u.contains(['?', '#', ' ']) {
        return Err("must not have a query, a fragment or spaces");
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// What the server sends back to GitHub: check runs, PR comments, deployment protection rule
/// answers (README "Run it as a GitHub App", docs/integrations.md).
#[derive(Debug, clap::Args)]
pub struct GithubOutArgs {
    /// Act as this GitHub App (with --github-app-key-file): publish check runs and PR comments
    /// and answer deployment protection rules with installation tokens.
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_APP_ID",
        value_name = "ID",
        requires = "github_app_key_file"
    )]
    pub github_app_id: Option<u64>,
    /// The GitHub App's private key (PEM, as GitHub hands it out).
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_APP_KEY_FILE",
        value_name = "FILE",
        requires = "github_app_id"
    )]
    pub github_app_key_file: Option<PathBuf>,
    /// Without an App: publish check runs and PR comments and answer protection rules with the
    /// personal token CHANGEGATE_GITHUB_TOKEN (a single repository).
    #[arg(long, conflicts_with = "github_app_id")]
    pub github_checks: bool,
    /// Base URL of changegate's dashboard: check runs and comments link to URL/changes/ID (and a
    /// truncated report points there).
    #[arg(long, env = "CHANGEGATE_GITHUB_DETAILS_URL", value_name = "URL")]
    pub github_details_url: Option<String>,
}

impl GithubOutArgs {
    /// The outgoing side, if configured.
    pub fn load(
        &self,
        api: &str,
    ) -> anyhow::Result<Option<Arc<changegate_server::github_out::app::Outgoing>>> {
        use changegate_server::github_out::app::{AppAuth, Auth, Outgoing};
        let auth = match (self.github_app_id, &self.github_app_key_file) {
            (Some(id), Some(path)) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("cannot read the GitHub App key file {}", path.display())
                })?;
                Auth::App(AppAuth::from_pem(id, &pem).map_err(|e| {
                    anyhow::anyhow!("--github-app-key-file {}: {e}", path.display())
                })?)
            }
            _ if self.github_checks => {
                let token = std::env::var("CHANGEGATE_GITHUB_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .context("--github-checks needs CHANGEGATE_GITHUB_TOKEN")?;
                Auth::Token(token)
            }
            _ => return Ok(None),
        };
        let mut out = Outgoing::new(api, auth);
        out.base_url = self.github_details_url.clone();
        Ok(Some(Arc::new(out)))
    }
}

/// Notifications out (the policy's `[notifications]`) and their worker.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// The endpoints and secrets of the policy's notification channels (TOML: `[channels.NAME]`
    /// with `url`/`url_file`, `secret`/`secret_file`, `username`, `from`, `page_id`; see
    /// docs/notifications.md). Channels without an entry are inactive: nothing is queued for them.
    #[arg(long, env = "CHANGEGATE_NOTIFY_CONFIG", value_name = "FILE")]
    pub notify_config: Option<PathBuf>,
    /// Do not send notifications from this process (another replica does); they are still queued.
    #[arg(long)]
    pub no_notify_worker: bool,
    /// How long a claimed notification stays this process's before another may send it (seconds).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub notify_lease_secs: u32,
}

impl NotifyArgs {
    /// The sender, when a config is given.
    pub fn load(
        &self,
        policy: &changegate_policy::Policy,
    ) -> anyhow::Result<Option<changegate_server::notify::Notifier>> {
        let Some(path) = &self.notify_config else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the notification config {}", path.display()))?;
        let endpoints =
            changegate_server::notify::Endpoints::parse(&text, &path.display().to_string(), policy)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cfg = changegate_server::notify::WorkerConfig {
            lease: jiff::SignedDuration::from_secs(i64::from(self.notify_lease_secs.max(1))),
            ..Default::default()
        };
        Ok(Some(changegate_server::notify::Notifier::new(
            endpoints, cfg,
        )))
    }
}

/// Incoming webhooks (`POST /api/v1/webhooks/…`) and their delivery worker.
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// PagerDuty V3 webhook signing secrets, one per line (two during a rotation). Without it
    /// (or CHANGEGATE_PAGERDUTY_WEBHOOK_SECRET) the PagerDuty route answers 404.
    #[arg(long, value_name = "FILE")]
    pub pagerduty_webhook_secret_file: Option<PathBuf>,
    /// GitHub webhook secret (the GitHub App's or the repository webhook's), one per line (two
    /// during a rotation). Without it (or CHANGEGATE_GITHUB_WEBHOOK_SECRET) the GitHub route
    /// answers 404.
    #[arg(long, value_name = "FILE")]
    pub github_webhook_secret_file: Option<PathBuf>,
    /// Do not process stored webhook deliveries in this process (another replica does).
    #[arg(long)]
    pub no_delivery_worker: bool,
}

impl WebhookArgs {
    /// The webhook configuration: the secrets from the file and from
    /// CHANGEGATE_PAGERDUTY_WEBHOOK_SECRET (comma-separated for several).
    pub fn load(&self) -> anyhow::Result<changegate_server::routes::webhooks::Webhooks> {
        use changegate_server::signature::Secret;
        let mut secrets = Vec::new();
        if let Some(path) = &self.pagerduty_webhook_secret_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the PagerDuty webhook secret file {}",
                    path.display()
                )
            })?;
            let found = Secret::parse_list(&text);
            anyhow::ensure!(
                !found.is_empty(),
                "the PagerDuty webhook secret file {} holds no secret",
                path.display()
            );
            secrets.extend(found);
        }
        if let Ok(text) = std::env::var("CHANGEGATE_PAGERDUTY_WEBHOOK_SECRET") {
            secrets.extend(Secret::parse_list(&text));
        }
        // GitHub secrets: one per line (a secret may contain commas).
        let lines = |text: &str| -> Vec<Secret> { text.lines().filter_map(Secret::new).collect() };
        let mut github = Vec::new();
        if let Some(path) = &self.github_webhook_secret_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the GitHub webhook secret file {}",
                    path.display()
                )
            })?;
            let found = lines(&text);
            anyhow::ensure!(
                !found.is_empty(),
                "the GitHub webhook secret file {} holds no secret",
                path.display()
            );
            github.extend(found);
        }
        if let Ok(text) = std::env::var("CHANGEGATE_GITHUB_WEBHOOK_SECRET") {
            github.extend(lines(&text));
        }
        Ok(changegate_server::routes::webhooks::Webhooks {
            pagerduty_secrets: Arc::new(secrets),
            github_secrets: Arc::new(github),
            ..Default::default()
        })
    }
}

/// `changegate token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Issue an API token (run on the server's host). Printed once. A person token acts only as
    /// its person; `--admin` may act on behalf of others; `--integration NAME --scope S` stands
    /// for a CI job or pipeline and may do what its scopes name. Names: 1-64 characters of
    /// `a-z 0-9 . _ -`, starting with a letter or digit.
    Create {
        /// The person the token acts as (approvals are recorded under this name).
        #[arg(
            long,
            conflicts_with = "integration",
            required_unless_present = "integration"
        )]
        person: Option<String>,
        /// May act on behalf of others and record incidents (with --person).
        #[arg(long, conflicts_with = "integration")]
        admin: bool,
        /// An integration token for this integration (acts as `integration:NAME`).
        #[arg(long, value_name = "NAME")]
        integration: Option<String>,
        /// A scope of the integration token: classify, ci-evidence, incidents, deployments
        /// (repeat, or separate with commas).
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            value_delimiter = ',',
            requires = "integration"
        )]
        scopes: Vec<String>,
        /// Stop working after this long: a number and m, h, d or w (e.g. 90d).
        #[arg(long, value_name = "LIFETIME", conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Stop working at this instant (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
        #[command(flatten)]
        db: StoreArgs,
    },
    /// List every token: id, kind, person or integration, scopes, created, expires, revoked.
    /// Never the secret or its digest.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Revoke a token by id (the part after `cg_`): refused from the next request on.
    Revoke {
        /// The token's id (16 hex digits).
        id: String,
        #[command(flatten)]
        db: StoreArgs,
    },
}

/// Run `serve`.
pub async fn serve(global: &Global, args: ServeArgs) -> anyhow::Result<Outcome> {
    let policy = policy(global)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let db = args.db.open(&policy).await?;
    if db.token_count().await.map_err(|e| anyhow::anyhow!("{e}"))? == 0 {
        let t = changegate_server::token::mint();
        db.insert_token(&t, "admin", true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "First start: created an admin token (shown once, store it now):\n{}",
            t.plaintext
        );
    }
    let clock = match args.test_clock {
        Some(start) => {
            tracing::warn!(%start, "TEST CLOCK in use: decisions are made for a simulated time");
            Clock::From {
                start,
                since: std::time::Instant::now(),
            }
        }
        None => Clock::System,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let source = match &global.policy {
        Some(p) => format!("{} over the built-in default", p.display()),
        None => "built-in default".to_string(),
    };
    println!(
        "policy: {} v{} ({source}); database: {}",
        policy.meta.name,
        policy.meta.version,
        db.backend()
    );
    println!("listening on http://{}", listener.local_addr()?);
    let github = changegate_server::github::GitHub {
        api: args.github_api.clone(),
        token: std::env::var("CHANGEGATE_GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        http: reqwest::Client::new(),
    };
    let mirrors = match &args.mirror_dir {
        None => None,
        Some(dir) => {
            let text = match &args.mirror_config {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read the mirror config {}", f.display()))?,
                None => String::new(),
            };
            let m = changegate_server::mirror::Mirrors::from_toml(dir, &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if args.mirror_config.is_none() {
                tracing::warn!(
                    "--mirror-dir without --mirror-config: no remote is allowed, every repository URL is refused"
                );
            }
            println!("mirrors: {} ({m:?})", dir.display());
            Some(Arc::new(m))
        }
    };
    let webhooks = args.webhooks.load()?;
    let dashboard = args.dashboard.load(&args.github_api)?;
    if dashboard.github_login.is_some() {
        tracing::info!("dashboard: sign in with GitHub offered");
    }
    let github_out = args.github_out.load(&args.github_api)?;
    let notifier = args.notify.load(&policy)?.map(Arc::new);
    let rollouts = match &args.rollout_config {
        Some(path) => Some(Arc::new(
            changegate_server::rollouts::Runtime::from_file(path, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
        None => None,
    };
    let state = AppState {
        repo_root: args.repo_root.clone(),
        github: Some(github),
        rollback: changegate_server::routes::rollbacks::RollbackActions {
            application: args
                .rollback_action
                .as_deref()
                .map(changegate_rollout::action::Action::parse),
            database: args
                .database_rollback_action
                .as_deref()
                .map(changegate_rollout::action::Action::parse),
        },
        mirrors,
        webhooks,
        rollouts,
        github_out,
        dashboard,
        ..AppState::new(Arc::new(policy), db, clock)
    };
    // Deployment protection rules: the leased scheduler (every replica may run one).
    let _gates = changegate_server::github_out::protection::spawn(state.clone());
    // Incoming webhooks: the worker that processes stored deliveries (every replica may run one).
    let _worker = (!args.webhooks.no_delivery_worker).then(|| {
        changegate_server::deliveries::spawn(
            state.clone(),
            changegate_server::deliveries::WorkerConfig::default(),
        )
    });
    // Notifications: every audit append from now on queues what it causes for the channels that
    // have an endpoint; the worker sends them (every replica may run one).
    let active = notifier.as_ref().map(|n| n.active()).unwrap_or_default();
    let inactive =
        changegate_server::notify::install(state.db.store(), state.policy.clone(), active);
    if !inactive.is_empty() {
        // A log line, not stdout: stdout ends with `listening on …`, which scripts wait for and
        // then may stop reading (a later write to a closed pipe would kill the server).
        tracing::info!(
            channels = %inactive.join(", "),
            "notification channels without an endpoint are inactive"
        );
    }
    // Scheduled reports: the previous month's (and quarter's) report on the first day, generated
    // once across replicas, stored and notified (every replica may run one).
    let _reports = changegate_server::reports_schedule::spawn(
        state.clone(),
        changegate_server::reports_schedule::ScheduleConfig::default(),
    );
    let _notify_worker = notifier
        .filter(|_| !args.notify.no_notify_worker)
        .map(|n| changegate_server::notify::worker::spawn(state.clone(), n));
    changegate_server::serve(state, listener)
        .await
        .context("server failed")?;
    Ok(Outcome::Ok)
}

/// Run a `token` command.
pub async fn token(global: &Global, cmd: TokenCmd) -> anyhow::Result<Outcome> {
    let policy = policy(global)?;
    match cmd {
        TokenCmd::Create {
            person,
            admin,
            integration,
            scopes,
            expires_in,
            expires_at,
            db,
        } => {
            let db = db.open(&policy).await?;
            let now = db.now();
            let spec = TokenRequest {
                person: person.as_deref(),
                integration: integration.as_deref(),
                admin,
                scopes: &scopes,
                expires_in: expires_in.as_deref(),
                expires_at: expires_at.as_deref(),
            }
            .spec(now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = db
                .issue_token(&spec, now, "changegate")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", t.plaintext);
        }
        TokenCmd::List { format, db } => {
            let db = db.open(&policy).await?;
            let tokens = db.list_tokens().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "tokens": tokens }))?
                ),
                Format::Text | Format::Markdown => print!("{}", token_table(&tokens)),
            }
        }
        TokenCmd::Revoke { id, db } => {
            let db = db.open(&policy).await?;
            match db
                .revoke_token(&id, "changegate")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Revocation::Revoked => println!("revoked token {id}"),
                Revocation::AlreadyRevoked => println!("token {id} was already revoked"),
                Revocation::NotFound => anyhow::bail!("not-found: no token has the id {id}"),
            }
        }
    }
    Ok(Outcome::Ok)
}

/// `token list` for people: a header and one aligned line per token.
fn token_table(tokens: &[changegate_store::TokenInfo]) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "KIND".to_string(),
        "NAME".to_string(),
        "SCOPES".to_string(),
        "CREATED".to_string(),
        "EXPIRES".to_string(),
        "REVOKED".to_string(),
    ]];
    for t in tokens {
        let scopes = if t.scopes.is_empty() {
            "-".to_string()
        } else {
            t.scopes.join(",")
        };
        let revoked = match (&t.revoked_at, &t.revoked_by) {
            (Some(at), Some(by)) => format!("{at} by {by}"),
            (Some(at), None) => at.clone(),
            _ => "-".to_string(),
        };
        rows.push([
            t.id.clone(),
            t.kind.to_string(),
            t.name.clone(),
            scopes,
            t.created_at.clone(),
            t.expires_at.map_or("never".to_string(), |e| e.to_string()),
            revoked,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        d: DashboardArgs,
    }

    fn load(args: &[&str]) -> anyhow::Result<changegate_server::dashboard::Dashboard> {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        Wrap::try_parse_from(argv)?.d.load("https://api.github.com")
    }

    #[test]
    fn dashboard_flags_set_the_session_lifetime_secure_cookies_and_page_size() {
        let d = load(&[]).unwrap();
        assert_eq!(d.session_lifetime, jiff::SignedDuration::from_hours(8));
        assert!(!d.secure_cookies);
        assert_eq!(d.page_size, 50);
        assert!(d.github_login.is_none());
        let d = load(&["--session-lifetime", "30m", "--dashboard-page-size", "20"]).unwrap();
        assert_eq!(d.session_lifetime, jiff::SignedDuration::from_mins(30));
        assert_eq!(d.page_size, 20);
        assert!(load(&["--secure-cookies"]).unwrap().secure_cookies);
        // An https public URL is TLS in front: the cookies are Secure.
        assert!(
            load(&["--dashboard-url", "https://cg.example.com/"])
                .unwrap()
                .secure_cookies
        );
        assert!(
            !load(&["--dashboard-url", "http://127.0.0.1:8080"])
                .unwrap()
                .secure_cookies
        );
        for (bad, why) in [
            (vec!["--session-lifetime", "forever"], "--session-lifetime"),
            (vec!["--session-lifetime", "0h"], "--session-lifetime"),
            (vec!["--dashboard-page-size", "0"], "1 to 500"),
            (vec!["--dashboard-url", "cg.example.com"], "https://"),
            (
                vec!["--dashboard-url", "https://cg.example.com/?x=1"],
                "query",
            ),
        ] {
            let e = load(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn github_sign_in_needs_the_public_url_and_the_client_secret() {
        // Without --dashboard-url clap refuses the client id.
        assert!(load(&["--github-oauth-client-id", "Iv1.x"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = load(&[
            "--dashboard-url",
            "https://cg.example.com",
            "--github-oauth-client-id",
            "Iv1.x",
            "--github-oauth-client-secret-file",
            empty.to_str().unwrap(),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("client secret"), "{e}");
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let d = load(&[
            "--dashboard-url",
            "https://cg.example.com/",
            "--github-oauth-client-id",
            "Iv1.x",
            "--github-oauth-client-secret-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let gh = d.github_login.unwrap();
        assert_eq!(
            gh.callback(),
            "https://cg.example.com/login/github/callback"
        );
        assert_eq!(gh.client_secret, "s3cret");
        assert!(
            !format!("{gh:?}").contains("s3cret"),
            "the secret is not in Debug"
        );
        assert!(
            gh.authorize_url("abc", "v")
                .starts_with("https://github.com/login/oauth/authorize?client_id=Iv1.x&redirect_uri=https%3A%2F%2Fcg.example.com%2Flogin%2Fgithub%2Fcallback&state=abc&code_challenge=")
        );
    }
}

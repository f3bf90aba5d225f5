//! `changegate serve` and `changegate token create`: the server and its credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use changegate_server::{AppState, Clock, Db};

use crate::common::{Global, Outcome, StoreArgs, policy};

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
    /// GitHub REST API for changes created from a pull request (token: CHANGEGATE_GITHUB_TOKEN).
    #[arg(
        long,
        env = "CHANGEGATE_GITHUB_API",
        default_value = "https://api.github.com",
        value_name = "URL"
    )]
    pub github_api: String,
    /// Testing only: start the server's clock at this instant (it then advances in real time).
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub test_clock: Option<jiff::Timestamp>,
}

/// `changegate token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Issue an API token bound to a person (run on the server's host). Printed once.
    Create {
        /// The person the token acts as (approvals are recorded under this name).
        #[arg(long)]
        person: String,
        /// May act on behalf of others and record incidents.
        #[arg(long)]
        admin: bool,
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
    let state = AppState {
        policy: Arc::new(policy),
        db,
        clock,
        repo_root: args.repo_root.clone(),
        github: Some(github),
    };
    changegate_server::serve(state, listener)
        .await
        .context("server failed")?;
    Ok(Outcome::Ok)
}

/// Run a `token` command.
pub async fn token(global: &Global, cmd: TokenCmd) -> anyhow::Result<Outcome> {
    let TokenCmd::Create { person, admin, db } = cmd;
    let policy = policy(global)?;
    let db = db.open(&policy).await?;
    let t = changegate_server::token::mint();
    db.insert_token(&t, &person, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", t.plaintext);
    Ok(Outcome::Ok)
}

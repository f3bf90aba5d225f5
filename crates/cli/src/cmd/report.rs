//! `changegate report monthly | quarterly | verify | sign`: the monthly audit report and the
//! quarterly review computed from the audit log, their proof of completeness, and sign-off
//! (docs/reports.md).
//!
//! Exit codes: 0 ok; 1 `report verify` found a difference; 2 usage or input error.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use changegate_audit::VerifierKey;
use changegate_report::render::{Format, render};
use changegate_report::{Period, Report, ReportKind, Settings};
use changegate_store::{Store, StoreConfig};

use crate::cmd::client::Conn;
use crate::common::{Global, Outcome, StoreArgs, policy};

/// Report output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown (for people and wikis).
    #[default]
    Markdown,
    /// HTML with SVG charts (print it to PDF).
    Html,
    /// JSON: the file `report verify` checks.
    Json,
    /// CSV: the population, one row per production deployment.
    Csv,
    /// XLSX: the metrics sheet and the population sheet.
    Xlsx,
}

impl ReportFormat {
    fn format(self) -> Format {
        match self {
            ReportFormat::Markdown => Format::Markdown,
            ReportFormat::Html => Format::Html,
            ReportFormat::Json => Format::Json,
            ReportFormat::Csv => Format::Csv,
            ReportFormat::Xlsx => Format::Xlsx,
        }
    }
}

/// Text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VerifyFormat {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Report commands.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {
    /// The monthly audit report (policy "Audit Reports"), read from the store.
    Monthly {
        #[command(flatten)]
        db: StoreArgs,
        /// Month, YYYY-MM (UTC).
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: ReportFormat,
        /// Write to this file instead of stdout (needed for xlsx).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The quarterly review (policy "Quarterly Review"), read from the store.
    Quarterly {
        #[command(flatten)]
        db: StoreArgs,
        /// Quarter, YYYY-Qn (UTC).
        #[arg(long, value_name = "YYYY-Qn")]
        quarter: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: ReportFormat,
        /// Write to this file instead of stdout (needed for xlsx).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Recompute every metric of a report (JSON) from an export of the whole log
    /// (`changegate audit export --format jsonl`) and prove the export is the log's population:
    /// the tree root of the exported events must equal the report's signed checkpoint.
    /// Exit 1 on any difference.
    Verify {
        /// The report (`report monthly --format json`).
        report: PathBuf,
        /// The export (`audit export --format jsonl`, without --since/--until).
        #[arg(long, value_name = "EXPORT.jsonl")]
        events: PathBuf,
        /// Trusted log key (`name+hash+key` text or a file holding it, from `audit key`).
        /// Without it the key named in the report is used: the report is then only shown to be
        /// self-consistent.
        #[arg(long, value_name = "KEY|FILE")]
        key: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: VerifyFormat,
    },
    /// Sign off the current report of a month or quarter in a reviewer role, as the API token's
    /// person (the server checks that the person holds the role and records a `report.signed`
    /// event for the report's digest).
    Sign {
        #[command(flatten)]
        conn: Conn,
        /// Month, YYYY-MM.
        #[arg(
            long,
            value_name = "YYYY-MM",
            conflicts_with = "quarter",
            required_unless_present = "quarter"
        )]
        month: Option<String>,
        /// Quarter, YYYY-Qn.
        #[arg(long, value_name = "YYYY-Qn")]
        quarter: Option<String>,
        /// Reviewer role (monthly: engineering-manager, security-lead, compliance-officer;
        /// quarterly: tech-architect, backend-lead).
        #[arg(long)]
        role: String,
    },
}

async fn open(db: &StoreArgs) -> anyhow::Result<Store> {
    if db.database_url.is_none() && !db.data_dir.join(changegate_store::SQLITE_FILE).exists() {
        bail!(
            "no audit log in {} (no {}); pass --data-dir or --database-url",
            db.data_dir.display(),
            changegate_store::SQLITE_FILE
        );
    }
    let mut cfg = StoreConfig::new(&db.data_dir);
    cfg.database_url = db.database_url.clone();
    cfg.create_key = false;
    Store::open(cfg)
        .await
        .with_context(|| match &db.database_url {
            Some(_) => "cannot open the audit log in the database given by --database-url".into(),
            None => format!("cannot open the audit log in {}", db.data_dir.display()),
        })
}

fn write_out(bytes: &[u8], output: Option<&Path>, format: ReportFormat) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
        }
        None if format == ReportFormat::Xlsx => {
            bail!("--format xlsx needs --output FILE (it is a binary file)")
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

async fn generate(
    global: &Global,
    db: &StoreArgs,
    kind: ReportKind,
    period: &str,
    format: ReportFormat,
    output: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let period = Period::parse_as(kind, period).map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = Settings::from_policy(&policy(global)?);
    let store = open(db).await?;
    let report = store.current_report(&period, &settings).await;
    store.close().await;
    let report = report?;
    let bytes = render(&report, format.format())?;
    write_out(&bytes, output, format)?;
    Ok(Outcome::Ok)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Run a report command.
pub async fn run(global: &Global, cmd: ReportCmd) -> anyhow::Result<Outcome> {
    match cmd {
        ReportCmd::Monthly {
            db,
            month,
            format,
            output,
        } => {
            generate(
                global,
                &db,
                ReportKind::Monthly,
                &month,
                format,
                output.as_deref(),
            )
            .await
        }
        ReportCmd::Quarterly {
            db,
            quarter,
            format,
            output,
        } => {
            generate(
                global,
                &db,
                ReportKind::Quarterly,
                &quarter,
                format,
                output.as_deref(),
            )
            .await
        }
        ReportCmd::Verify {
            report,
            events,
            key,
            format,
        } => {
            let text = read(&report)?;
            let r: Report = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a report in JSON (write one with `report monthly --format json`)",
                    report.display()
                )
            })?;
            let export = read(&events)?;
            let key = match key {
                Some(k) if Path::new(&k).exists() => {
                    Some(VerifierKey::parse(read(Path::new(&k))?.trim())?)
                }
                Some(k) => Some(VerifierKey::parse(k.trim())?),
                None => None,
            };
            let out = changegate_report::verify::verify_export(&r, &export, key.as_ref());
            if format == VerifyFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"ok": out.ok(), "outcome": out})
                    )?
                );
            } else if out.ok() {
                println!(
                    "ok: report {} {} is proven by the export",
                    r.kind.as_str(),
                    r.period
                );
                for f in &out.facts {
                    println!("  - {f}");
                }
            } else {
                println!("FAILED: {} problem(s)", out.failures.len());
                for f in &out.failures {
                    println!("  {}: {}", f.code, f.message);
                }
            }
            Ok(if out.ok() {
                Outcome::Ok
            } else {
                Outcome::Denied
            })
        }
        ReportCmd::Sign {
            conn,
            month,
            quarter,
            role,
        } => {
            let (kind, period) = match (month, quarter) {
                (Some(m), _) => ("monthly", m),
                (None, Some(q)) => ("quarterly", q),
                (None, None) => bail!("pass --month YYYY-MM or --quarter YYYY-Qn"),
            };
            let token = conn.token.clone().context(
                "no API token: pass --token or set CHANGEGATE_TOKEN (sign-off is recorded as the token's person)",
            )?;
            let url = format!(
                "{}/api/v1/reports/{kind}/{period}/signoffs",
                conn.server.trim_end_matches('/')
            );
            let resp = reqwest::Client::new()
                .post(&url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "role": role }))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {}", conn.server))?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!(
                    "server answered {status}: [{}] {}",
                    body["code"].as_str().unwrap_or("error"),
                    body["message"].as_str().unwrap_or("request failed")
                );
            }
            println!(
                "signed {kind} report {period} as {} ({role}), digest {}; still missing: {}",
                body["person"].as_str().unwrap_or("?"),
                body["digest"].as_str().unwrap_or("?"),
                body["missing"]
                    .as_array()
                    .map(|m| m
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none".into())
            );
            Ok(Outcome::Ok)
        }
    }
}

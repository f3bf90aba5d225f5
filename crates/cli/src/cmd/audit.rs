//! `changegate audit verify | prove | consistency | check-proof | checkpoint | export | log |
//! prune | adopt | append | key`: the tamper-evident audit trail (docs/audit.md).
//!
//! Exit codes: 0 ok; 1 verification or proof check failed (the first bad position is printed);
//! 2 usage or input error.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use changegate_audit::{AuditEvent, FieldPolicy, ProofFile, VerifierKey};
use changegate_store::{EventFilter, Store, StoreConfig, StoredEvent};
use comfy_table::{ContentArrangement, Table, presets};
use jiff::Timestamp;

use crate::common::{Global, Outcome, StoreArgs, policy};

/// Text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutFormat {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line (the canonical record plus its leaf hash and salt, so
    /// `report verify` recomputes every leaf).
    Jsonl,
    /// Comma-separated, one row per event; what/who/when/why/outcome/details as JSON cells.
    Csv,
}

/// Audit commands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Recompute the whole log; exit 1 with the first bad position if anything was modified,
    /// deleted, inserted or reordered, or a checkpoint no longer matches.
    Verify {
        #[command(flatten)]
        db: StoreArgs,
        /// A checkpoint kept elsewhere (signed note); the log must still contain it.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutFormat,
    },
    /// Inclusion proof of an event (id `ev_...` or log position) as JSON, checkable offline.
    Prove {
        #[command(flatten)]
        db: StoreArgs,
        /// Event id or position.
        event: String,
    },
    /// Consistency proof that the log of size OLD is a prefix of the log of size NEW (JSON).
    Consistency {
        #[command(flatten)]
        db: StoreArgs,
        /// Old tree size.
        old: u64,
        /// New tree size (at most the current size).
        new: u64,
    },
    /// Check a proof file offline (inclusion or consistency). Exit 1 if it does not hold.
    CheckProof {
        /// The proof (JSON from `audit prove` / `audit consistency`); `-` for stdin.
        file: PathBuf,
        /// Trusted log key (`name+hash+key` text or a file holding it). Default: audit-log.pub
        /// in --data-dir when present; without a key, signatures are not checked.
        #[arg(long, value_name = "KEY|FILE")]
        key: Option<String>,
        /// Data directory to take audit-log.pub from.
        #[arg(
            long,
            env = "CHANGEGATE_DATA",
            default_value = "./changegate-data",
            value_name = "DIR"
        )]
        data_dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutFormat,
    },
    /// Print the latest signed checkpoint (C2SP tlog-checkpoint) for anchoring elsewhere.
    Checkpoint {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Export events for auditors.
    Export {
        #[command(flatten)]
        db: StoreArgs,
        /// From (RFC 3339 or YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Until (RFC 3339 or YYYY-MM-DD, UTC), exclusive.
        #[arg(long)]
        until: Option<String>,
        /// Format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show events, newest last, with filters.
    Log {
        #[command(flatten)]
        db: StoreArgs,
        /// Only this change.
        #[arg(long)]
        change: Option<String>,
        /// Only this actor.
        #[arg(long)]
        actor: Option<String>,
        /// Only this kind (`deployment.*` for a family).
        #[arg(long)]
        kind: Option<String>,
        /// From (RFC 3339 or YYYY-MM-DD), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Until (RFC 3339 or YYYY-MM-DD), exclusive.
        #[arg(long)]
        until: Option<String>,
        /// At most this many (the oldest first).
        #[arg(long, default_value_t = 200)]
        limit: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutFormat,
    },
    /// Delete records older than DATE (keeping their leaves, so proofs of the rest hold).
    /// Refuses any DATE younger than the policy's `audit.retention`, and refuses to prune at all
    /// under a retention shorter than the 2-year compliance minimum that the policy does not
    /// acknowledge. Every prune is logged as an `audit.pruned` event.
    Prune {
        #[command(flatten)]
        db: StoreArgs,
        /// Cutoff (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        before: String,
        /// Who runs it (recorded in the `audit.pruned` event).
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
    },
    /// Log the state of stored rows no event recorded (rows written before state proofs:
    /// `audit-state-unlogged`), one audited `audit.adopted` event per row, naming who and why.
    /// Refused when the log fails any other check (adopting would hide it).
    Adopt {
        #[command(flatten)]
        db: StoreArgs,
        /// Who adopts (recorded in each event).
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
        /// Why (recorded in each event), e.g. "rows written before changegate 0.x logged state".
        #[arg(long)]
        reason: String,
        /// List what would be adopted; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Append an event (operations and tests). Fields are checked against `policy.audit.fields`.
    Append {
        #[command(flatten)]
        db: StoreArgs,
        /// The event as JSON: {"kind", "actor", "change_id"?, "category"?, "what"?, "who"?,
        /// "when"?, "why"?, "outcome"?, "details"?}; `-` reads stdin.
        #[arg(long, value_name = "JSON")]
        json: String,
    },
    /// Print the log's public verifier key (give it to auditors).
    Key {
        #[command(flatten)]
        db: StoreArgs,
    },
}

fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d: jiff::civil::Date = s
        .parse()
        .with_context(|| format!("`{s}` is neither an RFC 3339 time nor a YYYY-MM-DD date"))?;
    Ok(d.to_zoned_datetime(jiff::tz::TimeZone::UTC)?.timestamp())
}

fn opt_time(s: &Option<String>) -> anyhow::Result<Option<Timestamp>> {
    s.as_deref().map(parse_time).transpose()
}

async fn open(db: &StoreArgs, write: bool, fields: Option<FieldPolicy>) -> anyhow::Result<Store> {
    if db.database_url.is_none()
        && !write
        && !db.data_dir.join(changegate_store::SQLITE_FILE).exists()
    {
        bail!(
            "no audit log in {} (no {}); pass --data-dir or --database-url",
            db.data_dir.display(),
            changegate_store::SQLITE_FILE
        );
    }
    let mut cfg = StoreConfig::new(&db.data_dir);
    cfg.database_url = db.database_url.clone();
    cfg.create_key = write;
    cfg.fields = fields;
    Store::open(cfg)
        .await
        .with_context(|| match &db.database_url {
            Some(_) => {
                "cannot open the audit log in the database given by --database-url".to_string()
            }
            None => format!("cannot open the audit log in {}", db.data_dir.display()),
        })
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin()).context("cannot read stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Run an audit command.
pub async fn run(global: &Global, cmd: AuditCmd) -> anyhow::Result<Outcome> {
    match cmd {
        AuditCmd::Verify {
            db,
            checkpoint,
            format,
        } => {
            let note = checkpoint.as_deref().map(read_input).transpose()?;
            let store = open(&db, false, None).await?;
            let report = store.verify(note.as_deref()).await?;
            store.close().await;
            if format == OutFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": report.ok(),
                        "first_bad_position": report.first_bad_position(),
                        "report": report,
                    }))?
                );
            } else if report.ok() {
                println!(
                    "ok: {} events verified (root {}), {} records checked, {} pruned by retention, {} signed checkpoints, {} nodes",
                    report.size,
                    report.root,
                    report.records,
                    report.pruned,
                    report.checkpoints,
                    report.nodes
                );
            } else {
                match report.first_bad_position() {
                    Some(p) => println!(
                        "FAILED: first bad position {p} ({} problem(s))",
                        report.failures.len()
                    ),
                    None => println!("FAILED: {} problem(s)", report.failures.len()),
                }
                for f in &report.failures {
                    let at = f.position.map(|p| format!(" at {p}")).unwrap_or_default();
                    println!("  {}{at}: {}", f.code, f.message);
                }
            }
            Ok(if report.ok() {
                Outcome::Ok
            } else {
                Outcome::Denied
            })
        }
        AuditCmd::Prove { db, event } => {
            let store = open(&db, false, None).await?;
            let p = store.prove(&event).await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(Outcome::Ok)
        }
        AuditCmd::Consistency { db, old, new } => {
            let store = open(&db, false, None).await?;
            let p = store.consistency(old, new).await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(Outcome::Ok)
        }
        AuditCmd::CheckProof {
            file,
            key,
            data_dir,
            format,
        } => {
            let text = read_input(&file)?;
            let proof =
                ProofFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let key = match key {
                Some(k) if Path::new(&k).exists() => {
                    Some(VerifierKey::parse(&std::fs::read_to_string(&k)?)?)
                }
                Some(k) => Some(VerifierKey::parse(&k)?),
                None => changegate_store::read_verifier_key(&data_dir).ok(),
            };
            let result = proof.check(key.as_ref());
            match (format, &result) {
                (OutFormat::Json, Ok(c)) => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"ok": true, "check": c}))?
                ),
                (OutFormat::Json, Err(e)) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"ok": false, "code": e.code(), "message": e.to_string()})
                        )?
                    )
                }
                (OutFormat::Text, Ok(c)) => {
                    println!("ok: {} proof holds", c.kind);
                    for f in &c.facts {
                        println!("  - {f}");
                    }
                    if !c.signed {
                        println!(
                            "  (no trusted key: the roots are only as good as the file; pass --key)"
                        );
                    }
                }
                (OutFormat::Text, Err(e)) => println!("FAILED: {e}"),
            }
            Ok(if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Denied
            })
        }
        AuditCmd::Checkpoint { db } => {
            let store = open(&db, true, None).await?;
            let note = store.publish_checkpoint().await?;
            store.close().await;
            print!("{note}");
            Ok(Outcome::Ok)
        }
        AuditCmd::Key { db } => {
            let store = open(&db, false, None).await?;
            println!("{}", store.verifier_key());
            store.close().await;
            Ok(Outcome::Ok)
        }
        AuditCmd::Export {
            db,
            since,
            until,
            format,
            output,
        } => {
            let filter = EventFilter {
                since: opt_time(&since)?,
                until: opt_time(&until)?,
                ..Default::default()
            };
            let store = open(&db, false, None).await?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            if format == ExportFormat::Csv {
                writeln!(
                    out,
                    "seq,id,recorded_at,kind,actor,change_id,category,what,who,when,why,outcome,details,leaf_hash"
                )?;
            }
            let mut after = None;
            loop {
                let page = store
                    .events(&EventFilter {
                        after_seq: after,
                        limit: Some(5000),
                        ..filter.clone()
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                for e in &page {
                    match format {
                        ExportFormat::Jsonl => writeln!(out, "{}", export_json(e))?,
                        ExportFormat::Csv => writeln!(out, "{}", export_csv(e))?,
                    }
                }
            }
            out.flush()?;
            store.close().await;
            Ok(Outcome::Ok)
        }
        AuditCmd::Log {
            db,
            change,
            actor,
            kind,
            since,
            until,
            limit,
            format,
        } => {
            let filter = EventFilter {
                change_id: change,
                actor,
                kind,
                since: opt_time(&since)?,
                until: opt_time(&until)?,
                limit: Some(limit),
                after_seq: None,
            };
            let store = open(&db, false, None).await?;
            let events = store.events(&filter).await?;
            store.close().await;
            if format == OutFormat::Json {
                let v: Vec<_> = events.iter().map(export_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(Outcome::Ok);
            }
            let mut t = Table::new();
            t.load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            t.set_header([
                "#",
                "recorded at (UTC)",
                "kind",
                "actor",
                "change",
                "summary",
            ]);
            for e in &events {
                let r = &e.record;
                t.add_row([
                    e.seq.to_string(),
                    r.recorded_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                    r.event.kind.clone(),
                    r.event.actor.clone(),
                    r.event.change_id.clone().unwrap_or_default(),
                    summary(&r.event),
                ]);
            }
            println!("{t}");
            println!("{} event(s)", events.len());
            Ok(Outcome::Ok)
        }
        AuditCmd::Prune { db, before, actor } => {
            let before = parse_time(&before)?;
            let audit = policy(global)?.audit;
            let store = open(&db, true, None).await?;
            let out = store.prune(before, &audit, &actor).await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    store.close().await;
                    return Err(e.into());
                }
            };
            store.close().await;
            println!(
                "pruned {} record(s) recorded before {} (leaves kept; {} older record(s) kept as the latest proof of a stored row's state; logged as event {})",
                out.deleted, out.before, out.kept, out.event_id
            );
            Ok(Outcome::Ok)
        }
        AuditCmd::Adopt {
            db,
            actor,
            reason,
            dry_run,
        } => {
            let store = open(&db, !dry_run, None).await?;
            let out = store.adopt_unlogged(&actor, &reason, dry_run).await;
            store.close().await;
            let out = out?;
            for a in &out {
                if dry_run {
                    println!("would adopt {} {}", a.table.as_str(), a.id);
                } else {
                    println!(
                        "adopted {} {} version {} (event {})",
                        a.table.as_str(),
                        a.id,
                        a.version,
                        a.event_id
                    );
                }
            }
            println!(
                "{} row(s) {}",
                out.len(),
                if dry_run { "to adopt" } else { "adopted" }
            );
            Ok(Outcome::Ok)
        }
        AuditCmd::Append { db, json } => {
            let text = if json == "-" {
                read_input(Path::new("-"))?
            } else {
                json
            };
            let event: AuditEvent = serde_json::from_str(&text)
                .context("the event is not valid JSON of an audit event")?;
            let fields = FieldPolicy::from_policy(&policy(global)?.audit.fields);
            let store = open(&db, true, Some(fields)).await?;
            let a = store.append(event).await?;
            store.close().await;
            println!("{}", serde_json::to_string(&a)?);
            Ok(Outcome::Ok)
        }
    }
}

fn summary(e: &AuditEvent) -> String {
    let mut parts = Vec::new();
    for (group, map) in [
        ("what", &e.what),
        ("who", &e.who),
        ("why", &e.why),
        ("outcome", &e.outcome),
    ] {
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{group}.{k}={v}"));
        }
    }
    let s = parts.join(" ");
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}

fn export_json(e: &StoredEvent) -> serde_json::Value {
    let mut v = serde_json::to_value(&e.record).expect("records serialise");
    if let Some(o) = v.as_object_mut() {
        o.insert("leaf_hash".into(), e.leaf_hash.clone().into());
        // With the salt an auditor recomputes the leaf from the record (`report verify`).
        o.insert("salt".into(), e.salt.clone().into());
    }
    v
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn export_csv(e: &StoredEvent) -> String {
    let r = &e.record;
    let j = |m: &std::collections::BTreeMap<String, serde_json::Value>| {
        if m.is_empty() {
            String::new()
        } else {
            serde_json::to_string(m).expect("json")
        }
    };
    let details = if r.event.details.is_null() {
        String::new()
    } else {
        r.event.details.to_string()
    };
    [
        e.seq.to_string(),
        r.id.clone(),
        r.recorded_at.to_string(),
        r.event.kind.clone(),
        r.event.actor.clone(),
        r.event.change_id.clone().unwrap_or_default(),
        r.event.category.clone().unwrap_or_default(),
        j(&r.event.what),
        j(&r.event.who),
        j(&r.event.when),
        j(&r.event.why),
        j(&r.event.outcome),
        details,
        e.leaf_hash.clone(),
    ]
    .iter()
    .map(|c| csv_cell(c))
    .collect::<Vec<_>>()
    .join(",")
}

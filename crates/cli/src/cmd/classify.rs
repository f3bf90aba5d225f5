//! `changegate classify`: what kind of change is `base..head`, why, and who must approve it.
//!
//! Exit codes: 0 classified (whatever the category), 2 input error (not a repository, unknown
//! revision, shallow clone missing the base, unreadable coverage report). Output formats and the
//! JSON schema: docs/classify.md.

use std::path::PathBuf;

use anyhow::Context;
use changegate_classify::{Coverage, classify_repo, render_markdown, render_text};

use crate::common::{Format, Global, Outcome, policy};

/// Arguments of `changegate classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Repository (any directory inside it).
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub repo: PathBuf,
    /// Base revision. Default: the merge base of --head with the default branch (origin/HEAD,
    /// else origin/main, origin/master, main, master).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Head revision.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// Output format: text, json (stable schema, docs/classify.md) or markdown (a PR comment).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Line coverage of head (lcov or Cobertura XML): source changes whose changed lines are
    /// covered above the policy's threshold become `bugfix-covered` instead of `code-changed`.
    #[arg(long, value_name = "FILE")]
    pub coverage: Option<PathBuf>,
}

/// Run `changegate classify`.
pub fn run(global: &Global, args: ClassifyArgs) -> anyhow::Result<Outcome> {
    let policy = policy(global)?;
    let coverage = match &args.coverage {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read coverage report {}", p.display()))?;
            Some(
                Coverage::parse(&text)
                    .with_context(|| format!("coverage report {}", p.display()))?,
            )
        }
        None => None,
    };
    let c = classify_repo(
        &args.repo,
        args.base.as_deref(),
        Some(&args.head),
        &policy,
        coverage.as_ref(),
    )?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&c)?),
        Format::Text => print!("{}", render_text(&c)),
        Format::Markdown => print!("{}", render_markdown(&c)),
    }
    Ok(Outcome::Ok)
}

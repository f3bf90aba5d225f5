//! Things every command shares: global flags, policy loading, output formats, error rendering.

use std::path::PathBuf;

use anyhow::Context;
use changegate_policy::{Loaded, Policy};

/// Flags accepted by every command.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Policy file to use instead of the built-in default. Unless it sets `extends = "none"`, it
    /// overrides the built-in policy key by key.
    #[arg(long, global = true, env = "CHANGEGATE_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Where the store lives: the data directory (SQLite file and audit-log key) or PostgreSQL. The
/// same flags for `serve`, `token create` and every `audit` command.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Data directory: the SQLite file (changegate.db) and the log key (audit-log.key / .pub).
    #[arg(
        long,
        env = "CHANGEGATE_DATA",
        default_value = "./changegate-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the SQLite file, e.g. postgres://user@host:5432/db.
    #[arg(long, env = "CHANGEGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the check ran and said no.
    #[allow(dead_code)] // constructed by the check commands (window, gate, audit verify)
    Denied,
    /// Exit 3 (`gate` only): denied only by time (window, freeze, lead time); a later run passes.
    Waiting,
}

/// Output format for commands that report something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// For programs (stable schema, see docs/json-output.md).
    Json,
    /// Ready to paste into a PR comment.
    Markdown,
}

/// An input error whose details were already printed (diagnostics).
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Reported {}

/// Load a policy file (or the built-in default), printing its diagnostics to stderr.
pub fn load_policy_file(path: Option<&std::path::Path>) -> anyhow::Result<Loaded> {
    let Some(path) = path else {
        return Ok(changegate_policy::load_default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    let name = path.display().to_string();
    match changegate_policy::load(&text, &name) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                anstream::eprint!("{}", w.render());
            }
            Ok(loaded)
        }
        Err(err) => {
            for d in err.diagnostics() {
                anstream::eprint!("{}", d.render());
            }
            Err(Reported(err.to_string()).into())
        }
    }
}

/// The effective policy for this invocation.
pub fn policy(global: &Global) -> anyhow::Result<Policy> {
    Ok(load_policy_file(global.policy.as_deref())?.policy)
}

/// Render an error for people, once, at the edge.
pub fn print_error(err: &anyhow::Error) {
    anstream::eprintln!("error: {err:#}");
}

//! The `changegate` binary: parses arguments, runs one command, renders its outcome.
//!
//! Exit codes (documented in docs/cli.md): 0 allowed / ok, 1 denied / check failed,
//! 2 usage or input error.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod cmd;
mod common;
mod render;

use common::{Global, Outcome};

/// Enforce a change-control policy: classify changes, route approvals, hold change windows,
/// guard rollouts and keep a tamper-evident audit trail.
#[derive(Debug, Parser)]
#[command(name = "changegate", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show, explain, validate the policy, or print its JSON Schema.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCmd),
    /// List the facet detectors and the facet codes they emit.
    #[command(subcommand)]
    Detectors(cmd::detectors::DetectorsCmd),
    /// Every stable code changegate emits (reasons, errors, facets, diagnostics), by family.
    Codes(cmd::codes::CodesArgs),
    /// Classify a change: facets with evidence, category and required approvers.
    Classify(cmd::classify::ClassifyArgs),
    /// Change windows: check a time, find the next slot, print a month calendar.
    #[command(subcommand)]
    Window(cmd::window::WindowCmd),
    /// Guard a rollout: walk the plan, watch the triggers, roll back; replay; manual rollback.
    #[command(subcommand)]
    Rollout(cmd::rollout::RolloutCmd),
    /// May this change be deployed now? Every reason. Exit 0 allowed, 1 denied.
    Gate(Box<cmd::gate::GateArgs>),
    /// The tamper-evident audit trail: verify, prove, checkpoint, export, log, prune.
    #[command(subcommand)]
    Audit(Box<cmd::audit::AuditCmd>),
    /// Monthly audit report, quarterly review (markdown, HTML, JSON, CSV, XLSX), their proof of
    /// completeness (`report verify`) and reviewer sign-off.
    #[command(subcommand)]
    Report(Box<cmd::report::ReportCmd>),
    /// Run the changegate server (SQLite in --data-dir by default, or --database-url postgres://…).
    Serve(Box<cmd::serve::ServeArgs>),
    /// Issue API tokens (on the server's host).
    #[command(subcommand)]
    Token(cmd::serve::TokenCmd),
    /// Change requests on a server: create, show, approve, attest, transition.
    Change {
        #[command(flatten)]
        conn: cmd::client::Conn,
        #[command(subcommand)]
        cmd: cmd::client::ChangeCmd,
    },
    /// Incidents on a server: open, resolve, list.
    Incident {
        #[command(flatten)]
        conn: cmd::client::Conn,
        #[command(subcommand)]
        cmd: cmd::client::IncidentCmd,
    },
    /// Incoming webhook deliveries on a server (admin): list, retry a failed one.
    Deliveries {
        #[command(flatten)]
        conn: cmd::client::Conn,
        #[command(subcommand)]
        cmd: cmd::client::DeliveriesCmd,
    },
    /// The notification outbox on a server (admin): list, retry a dead one.
    Notify {
        #[command(flatten)]
        conn: cmd::client::Conn,
        #[command(subcommand)]
        cmd: cmd::client::NotifyCmd,
    },
    /// Print docs/cli.md (this reference, generated from the argument definitions).
    #[command(hide = true)]
    CliReference,
}

/// docs/cli.md.
fn cli_reference() -> String {
    use clap::CommandFactory;
    cmd::reference::markdown(&Cli::command())
}

/// mimalloc instead of glibc's malloc: classification allocates many small, short-lived values
/// on two threads (parsed documents, paths, line vectors), and glibc's allocator took about a
/// quarter of `classify`'s time on the 10,000-file benchmark (ADR 0012, decision 8).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let result = runtime().and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Denied) => ExitCode::from(1),
        Ok(Outcome::Waiting) => ExitCode::from(3),
        Err(err) => {
            common::print_error(&err);
            ExitCode::from(2)
        }
    }
}

/// The one async runtime of the process. Commands never build their own: a store, a pool or a
/// client opened on one runtime and used on another breaks (PostgreSQL connections die with the
/// runtime that spawned them), so everything async runs here, from `main` to the exit code.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Run the command. Pure commands (policy, detectors, classify, window) are plain functions;
/// the ones that do IO over the network or a database are async.
async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = &cli.global;
    match cli.command {
        Command::Policy(cmd::policy::PolicyCmd::Simulate(a)) => {
            cmd::simulate::run(global, *a).await
        }
        Command::Policy(c) => cmd::policy::run(global, c),
        Command::Detectors(c) => cmd::detectors::run(global, c),
        Command::Codes(c) => cmd::codes::run(c),
        Command::Classify(c) => cmd::classify::run(global, c),
        Command::Window(c) => cmd::window::run(global, c),
        Command::Rollout(c) => cmd::rollout::run(global, c).await,
        Command::Gate(a) => cmd::gate::run(global, *a).await,
        Command::Audit(c) => cmd::audit::run(global, *c).await,
        Command::Report(c) => cmd::report::run(global, *c).await,
        Command::Serve(a) => cmd::serve::serve(global, *a).await,
        Command::Token(c) => cmd::serve::token(global, c).await,
        Command::Change { conn, cmd } => cmd::client::change(&conn, cmd).await,
        Command::Incident { conn, cmd } => cmd::client::incident(&conn, cmd).await,
        Command::Deliveries { conn, cmd } => cmd::client::deliveries(&conn, cmd).await,
        Command::Notify { conn, cmd } => cmd::client::notify(&conn, cmd).await,
        Command::CliReference => {
            print!("{}", cli_reference());
            Ok(Outcome::Ok)
        }
    }
}

/// `changegate policy show | head` closes our stdout early. Rust ignores SIGPIPE, so the next
/// `println!` panics with "failed printing to stdout: Broken pipe"; print no panic message and
/// exit 141, what a shell reports for a process ended by SIGPIPE (as `git log | head` does).
/// Not 0: the command's own outcome is unknown at that point, and a denial must never read as
/// "allowed" under `set -o pipefail`. Only that panic is caught; sockets are untouched
/// (restoring SIGPIPE's default would let a peer that hangs up kill the server).
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

#[cfg(test)]
mod reference_tests {
    #[test]
    fn docs_cli_md_is_current() {
        let doc = include_str!("../../../docs/cli.md");
        assert!(
            doc == super::cli_reference(),
            "docs/cli.md is stale: run `cargo xtask docs`"
        );
    }
}

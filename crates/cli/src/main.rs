//! The `changegate` binary: parses arguments, runs one command, renders its outcome.
//!
//! Exit codes (documented in docs/cli.md): 0 allowed / ok, 1 denied / check failed,
//! 2 usage or input error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod common;

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
    /// Classify a change: facets with evidence, category and required approvers.
    Classify(cmd::classify::ClassifyArgs),
    /// Change windows: check a time, find the next slot, print a month calendar.
    #[command(subcommand)]
    Window(cmd::window::WindowCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(c) => cmd::policy::run(&cli.global, c),
        Command::Detectors(c) => cmd::detectors::run(&cli.global, c),
        Command::Classify(c) => cmd::classify::run(&cli.global, c),
        Command::Window(c) => cmd::window::run(&cli.global, c),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Denied) => ExitCode::from(1),
        Err(err) => {
            common::print_error(&err);
            ExitCode::from(2)
        }
    }
}

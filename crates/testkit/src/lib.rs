//! The workspace's test kit (dev-only, never published): what tests and benches of several crates
//! share instead of keeping copies.
//!
//! - [`git`]: real git repositories (the `git` CLI with a pinned environment, fixed dates so commit
//!   ids are stable) and a `fast-import` builder for bench-sized histories.
//! - [`gitserver`]: real git servers on loopback (`git daemon`, `git http-backend` behind an
//!   HTTP shim that may require a token) for code that fetches over the network.
//! - [`pg`]: a throwaway PostgreSQL database for tests that run a real process against it.
//! - [`redact`]: placeholders for commit ids and temporary paths in `insta` snapshots.
//! - [`gate`] (feature `gate`): change-request scenarios for the pure decision.
//! - [`server`] (feature `server`): a real server on loopback over SQLite or PostgreSQL.
//! - [`fake_github`] (feature `server`): a fake GitHub REST API on loopback (workflow runs).
//! - [`github_api`] (feature `server`): the GitHub write operations changegate calls, validated
//!   against GitHub's OpenAPI description (`data/github-openapi.json`).
//! - [`notify_standins`] (feature `server`): Slack, Statuspage and webhook receivers on loopback
//!   that enforce the vendors' documented limits and honour idempotency keys.
//!
//! Snapshots: tests use `insta` directly (`tests/snapshots/*.snap` beside each test file, committed).
//! With `CI` set, insta neither writes nor accepts a new or changed snapshot, so a missing or
//! stale `.snap` fails the run (the test below keeps CI from turning that off). Locally a
//! mismatch fails too and leaves a `.snap.new` to review; after checking the diff, accept with
//! `cargo insta review` or `INSTA_UPDATE=always cargo test -p CRATE --test NAME`.

pub mod git;
pub mod gitserver;
pub mod pg;
pub mod redact;

#[cfg(feature = "gate")]
pub mod gate;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "server")]
pub mod fake_github;

#[cfg(feature = "server")]
pub mod github_api;

#[cfg(feature = "server")]
pub mod notify_standins;

pub use git::{GitRepo, git_in};
pub use redact::Redactions;

#[cfg(test)]
mod tests {
    /// On CI (`CI` set, as `.ci/run` runs), insta must fail on a missing or changed snapshot:
    /// nothing may set it to write snapshots in place or to pass regardless.
    #[test]
    fn ci_never_accepts_snapshots_silently() {
        let ci = match std::env::var("CI").ok().as_deref() {
            Some("false") | Some("0") | Some("") => false,
            None => std::env::var("TF_BUILD").is_ok(),
            Some(_) => true,
        };
        if !ci {
            return;
        }
        let update = std::env::var("INSTA_UPDATE").unwrap_or_default();
        assert!(
            matches!(update.as_str(), "" | "auto" | "no" | "new"),
            "INSTA_UPDATE={update} on CI would accept snapshots"
        );
        let force = std::env::var("INSTA_FORCE_PASS").unwrap_or_default();
        assert!(
            matches!(force.as_str(), "" | "0"),
            "INSTA_FORCE_PASS={force} on CI would pass failing snapshots"
        );
    }
}

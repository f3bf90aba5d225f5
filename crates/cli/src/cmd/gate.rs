//! `changegate gate`: may this change be deployed now? Either ask a server about a recorded change
//! (`--change ID`), or decide offline for a CI job from the repository and flags alone
//! (`--repo . --base A --head B`): classification, window and checklist, no server needed.

use std::path::PathBuf;

use anyhow::Context;
use changegate_gate::{
    Approval, Attestation, ChangeRequest, ChangeState, Incident, Status, WorldState,
};

use crate::cmd::client::{Conn, gate_remote, render_decision};
use crate::common::{Format, Global, Outcome, policy};

/// `changegate gate`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Ask the server about this recorded change (records the decision in the audit trail).
    #[arg(long, conflicts_with_all = ["repo", "base", "head"])]
    pub change: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
    /// Offline: the repository to classify.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Offline: base revision (default: merge base with the default branch).
    #[arg(long)]
    pub base: Option<String>,
    /// Offline: head revision (default: HEAD).
    #[arg(long)]
    pub head: Option<String>,
    /// Offline: coverage report (lcov or Cobertura) for the bug-fix rule.
    #[arg(long)]
    pub coverage: Option<PathBuf>,
    /// Offline: an approval given elsewhere (e.g. PR reviews), as ROLE=PERSON; `deploy:ROLE=PERSON`
    /// is a deploy-stage approval (the production gate after staging, category 3). Repeatable.
    #[arg(long = "approval", value_name = "[deploy:]ROLE=PERSON")]
    pub approvals: Vec<String>,
    /// Offline: an attested checklist item, as ITEM or ITEM=EVIDENCE-URL. Repeatable.
    #[arg(long = "attest", value_name = "ITEM[=URL]")]
    pub attestations: Vec<String>,
    /// Offline: commit author (for separation of duties). Repeatable.
    #[arg(long = "author")]
    pub authors: Vec<String>,
    /// Offline: an active incident of this severity (P0 … P4). Repeatable.
    #[arg(long = "incident-active", value_name = "SEVERITY")]
    pub incidents: Vec<String>,
    /// Decide for this instant (RFC 3339); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

fn split_pair<'a>(s: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    s.split_once('=')
        .with_context(|| format!("{what} `{s}` must look like KEY=VALUE"))
}

/// Run `gate`.
pub async fn run(global: &Global, args: GateArgs) -> anyhow::Result<Outcome> {
    if let Some(id) = &args.change {
        return gate_remote(&args.conn, id, args.at.as_deref(), args.format).await;
    }
    let policy = policy(global)?;
    let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let coverage = match &args.coverage {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read coverage report {}", p.display()))?;
            Some(
                changegate_classify::Coverage::parse(&text)
                    .with_context(|| format!("coverage report {}", p.display()))?,
            )
        }
        None => None,
    };
    let c = changegate_classify::classify_repo(
        &repo,
        args.base.as_deref(),
        args.head.as_deref(),
        &policy,
        coverage.as_ref(),
    )?;
    let at: jiff::Timestamp = match &args.at {
        Some(t) => t
            .parse()
            .with_context(|| format!("--at `{t}` is not an RFC 3339 time"))?,
        None => jiff::Timestamp::now(),
    };
    let head = c
        .head
        .as_ref()
        .map(|r| r.commit.clone())
        .unwrap_or_else(|| "HEAD".into());
    let base = c
        .base
        .as_ref()
        .map(|r| r.commit.clone())
        .unwrap_or_default();
    let classification = changegate_server::classified_change(&c);
    let request = ChangeRequest {
        id: format!("ci-{}", &head[..head.len().min(12)]),
        repository: repo.display().to_string(),
        pr_link: None,
        ticket: None,
        title: String::new(),
        base_commit: base,
        head_commit: head.clone(),
        authors: args.authors.clone(),
        co_authors: Vec::new(),
        last_pusher: None,
        classification,
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance: Default::default(),
    };
    let mut state = ChangeState::new(request);
    // Offline, approvals come from elsewhere (PR reviews): judge the change as if marked approved
    // and let the gate check every approval itself.
    state.status = Status::Approved;
    for a in &args.approvals {
        let (role, person) = split_pair(a, "--approval")?;
        let (role, stage) = match role.strip_prefix("deploy:") {
            Some(r) => (r, changegate_gate::ApprovalStage::Deploy),
            None => (role, changegate_gate::ApprovalStage::Review),
        };
        state.approvals.push(Approval {
            person: person.into(),
            role: role.into(),
            head_commit: head.clone(),
            at,
            stage,
        });
    }
    for item in &args.attestations {
        let (item, evidence) = match item.split_once('=') {
            Some((i, e)) => (i, Some(e.to_string())),
            None => (item.as_str(), None),
        };
        state.attestations.push(Attestation {
            person: "ci".into(),
            item: item.into(),
            evidence,
            head_commit: head.clone(),
            at,
            verified: None,
        });
    }
    let mut world = WorldState::default();
    for (n, severity) in args.incidents.iter().enumerate() {
        world.incidents.push(Incident {
            id: format!("flag-{n}"),
            severity: severity.clone(),
            title: "given with --incident-active".into(),
            opened_at: at,
            resolved_at: None,
            commander: None,
            kind: None,
            cvss: None,
        });
    }
    let d = changegate_gate::decide(&policy, &state, &world, at);
    render_decision(&serde_json::to_value(&d)?, args.format)?;
    // In GitHub Actions: the job summary and `::error` annotations at the denying facets'
    // evidence. Exit 1 denied, 3 waiting (only time denies), 0 allowed.
    crate::cmd::gate_ci::github_actions(&d, &crate::cmd::gate_ci::denying_facets(&c, &d))?;
    Ok(crate::cmd::gate_ci::outcome(&d))
}

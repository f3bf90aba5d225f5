//! Role-holder teams read from GitHub (`[integrations.github] teams`: `NAME = "org/team-slug"`).
//!
//! [`Outgoing::team_members`] reads a team's members through GitHub's REST API
//! (`GET /orgs/{org}/teams/{team_slug}/members?per_page=100&page=N`, page by page until a short
//! page) with the credential of the outgoing side (the App's installation token for the
//! repository the delivery came from, or the personal token), and keeps them per team for the
//! policy's `team_ttl_secs`, by the server's clock. [`crate::routes::webhooks::github`] turns the
//! logins into persons (`[people.NAME] github`, and `github_id` when given; other logins hold
//! nothing) and records them as the team's membership in the world, audited as
//! [`TEAM_SYNCED`], before it checks the authority of an approval from a review or comment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use super::app::{OutError, Outgoing};

/// Audit kind of a team membership read from GitHub that differs from the recorded one.
pub const TEAM_SYNCED: &str = "team.synced";

/// Members per page (GitHub's maximum).
pub const PER_PAGE: usize = 100;

/// Pages read at most (10,000 members).
pub const MAX_PAGES: usize = 100;

/// A member of a GitHub team, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Login.
    pub login: String,
    /// Numeric user id.
    pub id: Option<u64>,
}

/// A team's members as read at `read_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMembers {
    /// `org/team-slug`, lowercase.
    pub team: String,
    /// The members, in GitHub's order.
    pub members: Vec<Member>,
    /// When the server read them (its clock).
    pub read_at: Timestamp,
}

/// Members read from GitHub, per team.
#[derive(Debug, Default)]
pub struct TeamCache {
    entries: Mutex<HashMap<String, TeamMembers>>,
    reads: AtomicU64,
}

impl TeamCache {
    /// How many times a team was read from GitHub (not answered from the cache).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Forget every team (the next approval reads them again).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn fresh(&self, team: &str, now: Timestamp, ttl: SignedDuration) -> Option<TeamMembers> {
        let g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = g.get(team)?;
        let until = e.read_at.checked_add(ttl).ok()?;
        (now >= e.read_at && now < until).then(|| e.clone())
    }

    fn put(&self, t: TeamMembers) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.team.clone(), t);
    }
}

impl Outgoing {
    /// The members of GitHub team `team` (`org/team-slug`) at `now`: from the cache when read
    /// less than `ttl` ago, else read from GitHub with the credential for `repo` (and the
    /// webhook's `installation`).
    pub async fn team_members(
        &self,
        now: Timestamp,
        repo: &str,
        installation: Option<u64>,
        team: &str,
        ttl: SignedDuration,
    ) -> Result<TeamMembers, OutError> {
        let key = team.to_ascii_lowercase();
        let Some((org, slug)) = key.split_once('/') else {
            return Err(OutError::Invalid(format!(
                "`{team}` is not a GitHub team `org/team-slug`"
            )));
        };
        if let Some(hit) = self.teams.fresh(&key, now, ttl) {
            return Ok(hit);
        }
        let mut members = Vec::new();
        for page in 1..=MAX_PAGES {
            let (_, v) = self
                .call(
                    now,
                    repo,
                    installation,
                    reqwest::Method::GET,
                    &format!("/orgs/{org}/teams/{slug}/members?per_page={PER_PAGE}&page={page}"),
                    None,
                    "the team members lookup",
                )
                .await?;
            let Value::Array(list) = v else {
                return Err(OutError::Status {
                    status: 200,
                    what: "the team members lookup".into(),
                    message: "the answer is not a list of users".into(),
                });
            };
            let n = list.len();
            members.extend(list.iter().filter_map(|u| {
                Some(Member {
                    login: u.get("login")?.as_str()?.to_string(),
                    id: u.get("id").and_then(Value::as_u64),
                })
            }));
            if n < PER_PAGE {
                break;
            }
        }
        self.teams.reads.fetch_add(1, Ordering::Relaxed);
        let t = TeamMembers {
            team: key,
            members,
            read_at: now,
        };
        self.teams.put(t.clone());
        Ok(t)
    }
}

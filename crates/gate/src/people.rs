//! Who is who: identities, role holding and the separation-of-duties relations.
//!
//! Git knows people by name and e-mail, the policy by person id or team. Everything is compared
//! after [`canonical`]: trimmed, lowercased and mapped through [`WorldState::aliases`]. Comparing
//! canonical ids is what makes "the author never approves their own change" hold when the author
//! commits as `Alice <alice@example.com>` and approves as `alice`.

use changegate_policy::Policy;
use serde::Serialize;

use crate::model::{ChangeState, Person, WorldState};

/// A `Co-authored-by` trailer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoAuthor {
    /// Name as written.
    pub name: String,
    /// E-mail, without the angle brackets (empty when the trailer has none).
    pub email: String,
}

/// Every `Co-authored-by: Name <email>` trailer of a commit message (key case-insensitive, as
/// GitHub reads them).
pub fn parse_co_authors(message: &str) -> Vec<CoAuthor> {
    const KEY: &str = "co-authored-by:";
    message
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.len() < KEY.len() || !line[..KEY.len()].eq_ignore_ascii_case(KEY) {
                return None;
            }
            let value = line[KEY.len()..].trim();
            let (name, email) = match (value.find('<'), value.rfind('>')) {
                (Some(l), Some(r)) if l < r => (value[..l].trim(), value[l + 1..r].trim()),
                _ => (value, ""),
            };
            (!name.is_empty() || !email.is_empty()).then(|| CoAuthor {
                name: name.to_string(),
                email: email.to_string(),
            })
        })
        .collect()
}

/// The canonical person id of an identifier.
pub fn canonical(world: &WorldState, who: &str) -> Person {
    let key = who.trim().to_lowercase();
    match world
        .aliases
        .get(&key)
        .or_else(|| world.aliases.get(who.trim()))
    {
        Some(p) => p.trim().to_lowercase(),
        None => key,
    }
}

/// How someone holds a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Holding {
    /// Listed by name in `roles.<role>.holders`.
    Direct,
    /// Member of a team listed as `team:NAME`.
    Team {
        /// Team name.
        team: String,
    },
    /// The assigned commander of the emergency's incident (for the commander role), provided they
    /// hold a role of `emergency.commander_from`.
    IncidentCommander {
        /// Incident id.
        incident: String,
    },
}

/// Whether `person` holds `role`, and how. `None` when the role is unknown or not held.
pub fn holding(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    person: &str,
    role: &str,
) -> Option<Holding> {
    let me = canonical(world, person);
    let def = policy.roles.get(role)?;
    for h in &def.holders {
        if let Some(team) = h.strip_prefix("team:") {
            let members = world.teams.get(team).map(Vec::as_slice).unwrap_or_default();
            if members.iter().any(|m| canonical(world, m) == me) {
                return Some(Holding::Team {
                    team: team.to_string(),
                });
            }
        } else if canonical(world, h) == me {
            return Some(Holding::Direct);
        }
    }
    if role != policy.emergency.commander_role {
        return None;
    }
    let inc = world.incident(&state.emergency.as_ref()?.incident)?;
    let commander = canonical(world, inc.commander.as_deref()?);
    if commander != me {
        return None;
    }
    // The commander is drawn from `emergency.commander_from` and the on-call rotations of
    // `emergency.commander_on_call` (on-call SRE or backend lead), as of the incident's opening:
    // that is when the commander was assigned.
    crate::emergency::commander_eligible(policy, world, person, inc.opened_at).map(|_| {
        Holding::IncidentCommander {
            incident: inc.id.clone(),
        }
    })
}

/// The person holds `role` directly or through a team (never through an incident).
pub fn holds_directly(policy: &Policy, world: &WorldState, person: &str, role: &str) -> bool {
    let me = canonical(world, person);
    policy.roles.get(role).is_some_and(|def| {
        def.holders.iter().any(|h| match h.strip_prefix("team:") {
            Some(team) => world
                .teams
                .get(team)
                .is_some_and(|ms| ms.iter().any(|m| canonical(world, m) == me)),
            None => canonical(world, h) == me,
        })
    })
}

/// Members of a list of people and `team:NAME` entries, teams expanded in the order their members
/// were set, each person once (canonical ids).
pub fn expand(world: &WorldState, members: &[String]) -> Vec<Person> {
    let mut out: Vec<Person> = Vec::new();
    for m in members {
        let people: Vec<&String> = match m.strip_prefix("team:") {
            Some(team) => world.teams.get(team).into_iter().flatten().collect(),
            None => vec![m],
        };
        for p in people {
            let c = canonical(world, p);
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Who is on call in the policy's rotation `rotation` at `at` (teams expanded through
/// [`WorldState::teams`]); `None` when nobody is.
pub fn on_call_at(
    policy: &Policy,
    world: &WorldState,
    rotation: &str,
    at: jiff::Timestamp,
) -> Option<changegate_calendar::OnCallShift> {
    let r = policy.on_call.rotations.get(rotation)?;
    let members = expand(world, &r.members);
    let mut shift = changegate_calendar::on_call(policy, rotation, &members, at)?;
    shift.person = canonical(world, &shift.person);
    Some(shift)
}

/// How someone is involved in writing the change (the separation-of-duties relations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// A commit author.
    Author,
    /// A `Co-authored-by` co-author.
    CoAuthor,
    /// Pushed the head commit.
    LastPusher,
}

impl Relation {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Author => "author",
            Relation::CoAuthor => "co-author",
            Relation::LastPusher => "last-pusher",
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way `person` took part in writing the change (empty when they did not).
pub fn relations(world: &WorldState, state: &ChangeState, person: &str) -> Vec<Relation> {
    let me = canonical(world, person);
    let c = &state.change;
    let mut out = Vec::new();
    if c.authors.iter().any(|a| canonical(world, a) == me) {
        out.push(Relation::Author);
    }
    if c.co_authors.iter().any(|a| canonical(world, a) == me) {
        out.push(Relation::CoAuthor);
    }
    if c.last_pusher
        .as_deref()
        .is_some_and(|p| canonical(world, p) == me)
    {
        out.push(Relation::LastPusher);
    }
    out
}

/// The inputs of the author check, as recorded in reasons.
pub fn sod_inputs(world: &WorldState, state: &ChangeState) -> serde_json::Value {
    let c = &state.change;
    let canon = |v: &[Person]| v.iter().map(|p| canonical(world, p)).collect::<Vec<_>>();
    serde_json::json!({
        "authors": canon(&c.authors),
        "co_authors": canon(&c.co_authors),
        "last_pusher": c.last_pusher.as_deref().map(|p| canonical(world, p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_author_trailers() {
        let msg = "Fix it\n\nSome body.\n\nCo-authored-by: Bob Builder <bob@example.com>\nco-authored-by: carol\nSigned-off-by: x <x@y>\n";
        let got = parse_co_authors(msg);
        assert_eq!(
            got,
            vec![
                CoAuthor {
                    name: "Bob Builder".into(),
                    email: "bob@example.com".into()
                },
                CoAuthor {
                    name: "carol".into(),
                    email: String::new()
                },
            ]
        );
        assert!(parse_co_authors("Co-authored-by:   \n").is_empty());
    }

    #[test]
    fn aliases_map_emails_to_people() {
        let mut world = WorldState::default();
        world
            .aliases
            .insert("alice@example.com".into(), "alice".into());
        assert_eq!(canonical(&world, " Alice@Example.com "), "alice");
        assert_eq!(canonical(&world, "Bob"), "bob");
    }
}

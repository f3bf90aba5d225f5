//! Who may be an incident's commander: the one place the webhooks ask.
//!
//! The policy: "Incident Commander assigned automatically (on-call SRE or Backend Lead)". Until
//! the gate has its own answer (an on-call rota in the policy, `commander_eligible` in
//! `changegate_gate::emergency`), [`commander_for`] applies the rule that exists today: a holder of
//! a role of `emergency.commander_from` (directly or through a team), never through an incident.
//! Every webhook asks through this one function, so switching to the gate's answer is one edit.

use changegate_gate::WorldState;
use changegate_gate::people::canonical;
use changegate_policy::Policy;
use jiff::Timestamp;
use serde_json::{Value, json};

/// Why `person` may be an incident commander at `at` (recorded in the delivery's outcome), or
/// `None` when they may not.
pub fn commander_for(
    policy: &Policy,
    world: &WorldState,
    person: &str,
    _at: Timestamp,
) -> Option<Value> {
    let e = &policy.emergency;
    let me = canonical(world, person);
    e.commander_from
        .iter()
        .filter(|r| **r != e.commander_role)
        .find(|role| {
            policy.roles.get(role.as_str()).is_some_and(|def| {
                def.holders.iter().any(|h| match h.strip_prefix("team:") {
                    Some(team) => world
                        .teams
                        .get(team)
                        .is_some_and(|ms| ms.iter().any(|m| canonical(world, m) == me)),
                    None => canonical(world, h) == me,
                })
            })
        })
        .map(|role| json!({ "via": "role", "role": role }))
}

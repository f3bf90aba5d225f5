//! Who may be an incident's commander: the one place the webhooks ask.
//!
//! The policy: "Incident Commander assigned automatically (on-call SRE or Backend Lead)".
//! [`commander_for`] is the gate's answer (`changegate_gate::emergency::commander_eligible`: a
//! holder of a role of `emergency.commander_from`, or whoever is on call at that instant in a
//! rotation of `emergency.commander_on_call`), as JSON for the delivery's outcome.

use changegate_gate::WorldState;
use changegate_policy::Policy;
use jiff::Timestamp;
use serde_json::Value;

/// Why `person` may be an incident commander at `at` (recorded in the delivery's outcome), or
/// `None` when they may not.
pub fn commander_for(
    policy: &Policy,
    world: &WorldState,
    person: &str,
    at: Timestamp,
) -> Option<Value> {
    changegate_gate::emergency::commander_eligible(policy, world, person, at)
        .and_then(|basis| serde_json::to_value(basis).ok())
}

//! Who is on call at an instant (`[on_call.rotations]`): weekly turns handed over at a local day
//! and time, explicit shifts overriding them. DST-safe: handoffs are civil dates and local times
//! resolved in the rotation's zone (a handoff in a skipped hour moves to the first instant after
//! the gap, as every window does), and turns are counted in civil weeks, never in 168-hour steps.

use changegate_policy::Policy;
use jiff::Timestamp;
use serde::Serialize;

use crate::ivs::{add_days, date_of, instant};

/// One shift of a rotation: who is on call, from when until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnCallShift {
    /// Rotation name.
    pub rotation: String,
    /// The member on call (as listed, or as the team expanded it).
    pub person: String,
    /// The shift's start (a handoff).
    pub from: Timestamp,
    /// The shift's end, exclusive (the next handoff).
    pub until: Timestamp,
    /// An explicit `shifts` entry, not the weekly turn order.
    pub explicit: bool,
}

/// Who is on call in `rotation` at `at`. `members` are the rotation's members in turn order with
/// teams already expanded (the calendar does not know team memberships). `None` when the policy
/// has no such rotation, it has no members, or `at` is before its first handoff and no explicit
/// shift covers it.
pub fn on_call(
    policy: &Policy,
    rotation: &str,
    members: &[String],
    at: Timestamp,
) -> Option<OnCallShift> {
    let r = policy.on_call.rotations.get(rotation)?;
    let tz = r
        .timezone
        .as_ref()
        .unwrap_or(&policy.windows.timezone)
        .to_jiff();
    let time = r.handoff.time;
    for s in &r.shifts {
        let from = instant(&tz, s.from.0, time);
        let until = instant(&tz, s.to.0, time);
        if from <= at && at < until {
            return Some(OnCallShift {
                rotation: rotation.to_string(),
                person: s.member.clone(),
                from,
                until,
                explicit: true,
            });
        }
    }
    if members.is_empty() {
        return None;
    }
    let day = r.handoff.day.to_jiff();
    let starts = r.starts.0;
    let first = add_days(starts, i64::from(starts.weekday().until(day)));
    if at < instant(&tz, first, time) {
        return None;
    }
    let local = date_of(&tz, at);
    let mut handoff = add_days(local, -i64::from(day.until(local.weekday())));
    if instant(&tz, handoff, time) > at {
        handoff = add_days(handoff, -7);
    }
    let days = first.until((jiff::Unit::Day, handoff)).ok()?.get_days();
    let turn = usize::try_from(days / 7).ok()? % members.len();
    Some(OnCallShift {
        rotation: rotation.to_string(),
        person: members[turn].clone(),
        from: instant(&tz, handoff, time),
        until: instant(&tz, add_days(handoff, 7), time),
        explicit: false,
    })
}

//! Category 3: the planned (or fallback) maintenance occurrence, its maximum duration and its
//! announcement lead.

use jiff::{SignedDuration, Timestamp};

use crate::codes::Code;
use crate::modifiers::Ctx;
use crate::{Calendar, MaintenanceSlot, Reason, WindowRequest, ivs, reason, show};

impl Calendar<'_> {
    pub(crate) fn check_maintenance(
        &self,
        req: &WindowRequest,
        ctx: &Ctx,
        e: Timestamp,
        cal: &mut Vec<Reason>,
    ) {
        let m = &self.policy.windows.maintenance;
        let tz = &self.maintenance.tz;
        let s = req.start;
        let which = match req.maintenance {
            MaintenanceSlot::Primary => "planned maintenance window",
            MaintenanceSlot::Fallback => "fallback maintenance window",
        };
        let Some(nth) = ctx.nth else {
            cal.push(reason(
                Code::MaintenanceNoFallback,
                true,
                "the policy defines no fallback maintenance window",
            ));
            return;
        };
        if req.duration > m.max_duration.get() {
            cal.push(reason(
                Code::MaintenanceOverrun,
                true,
                format!(
                    "duration {:#} exceeds the maintenance maximum of {}",
                    req.duration, m.max_duration
                ),
            ));
        }
        let occurrences = self.maintenance.occurrences(nth, s, e);
        match occurrences.iter().find(|o| o.iv.s <= s && s < o.iv.e) {
            Some(o) => {
                if e <= o.iv.e {
                    cal.push(reason(
                        Code::MaintenanceOpen,
                        false,
                        format!(
                            "inside the {which} {} to {}",
                            show(tz, o.iv.s),
                            show(tz, o.iv.e)
                        ),
                    ));
                } else {
                    cal.push(reason(
                        Code::MaintenanceOverrun,
                        true,
                        format!(
                            "would run until {}, past the {which}'s end {}",
                            show(tz, e),
                            show(tz, o.iv.e)
                        ),
                    ));
                }
                match (req.announced_at, ctx.earliest_occurrence) {
                    (Some(at), Some(min)) if o.iv.s < min => cal.push(reason(
                        Code::MaintenanceNotAnnounced,
                        true,
                        format!(
                            "announced {}, less than {} before the window opens {}",
                            show(tz, at),
                            m.announce_lead,
                            show(tz, o.iv.s)
                        ),
                    )),
                    (Some(at), _) => cal.push(reason(
                        Code::MaintenanceAnnounced,
                        false,
                        format!(
                            "announced {}, at least {} ahead",
                            show(tz, at),
                            m.announce_lead
                        ),
                    )),
                    (None, _) => {}
                }
            }
            None => {
                let horizon = ivs::add(s, SignedDuration::from_hours(24 * 62));
                let next = self
                    .maintenance
                    .occurrences(nth, s, horizon)
                    .into_iter()
                    .find(|o| o.iv.s > s);
                let hint = next
                    .map(|o| format!("; the next one opens {}", show(tz, o.iv.s)))
                    .unwrap_or_default();
                cal.push(reason(
                    Code::MaintenanceClosed,
                    true,
                    format!("{} is outside the {which}{hint}", show(tz, s)),
                ));
            }
        }
        if req.announced_at.is_none() {
            cal.push(reason(
                Code::MaintenanceAnnouncementUnchecked,
                false,
                format!(
                    "the announcement ({} ahead) was not checked",
                    m.announce_lead
                ),
            ));
        }
    }
}

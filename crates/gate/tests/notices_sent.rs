//! Notices the policy requires as sent by changegate (`notifications.require_sent`): the
//! stakeholder notice and the maintenance announcement count only with the notification worker's
//! record of sending them, from when the receiver accepted them, never as an author declared them.

use changegate_gate::*;
use changegate_testkit::gate::*;

fn denies(d: &Decision) -> Vec<&'static str> {
    d.denying_codes()
}

fn sent(via: &str, channel: &str, at: &str) -> SentNotice {
    SentNotice {
        via: via.into(),
        channel: channel.into(),
        notification: 1,
        at: t(at),
    }
}

#[test]
fn a_declared_stakeholder_notice_does_not_count_when_it_must_be_sent() {
    let (mut p, mut s) = ready(3, vec![]);
    let w = world_with_announcement();
    assert!(decide(&p, &s, &w, t(MW)).allowed, "declared, as before");
    p.notifications.require_sent = vec!["stakeholder-notice".into()];
    let d = decide(&p, &s, &w, t(MW));
    assert_eq!(denies(&d), vec!["lead-time-notice"]);
    let r = d
        .reasons
        .iter()
        .find(|r| r.code == Code::LeadTimeNotice)
        .unwrap();
    assert!(
        r.message.contains("not sent by changegate"),
        "{}",
        r.message
    );
    // Sent, but too late: the sent time counts, not the declared one (26 Feb would be enough).
    let item = s.lead_items.get_mut("stakeholder-notice").unwrap();
    item.at = t("2026-02-20T09:00:00Z");
    item.sent = Some(sent("email", "all-teams", "2026-02-27T09:00:00Z"));
    assert_eq!(denies(&decide(&p, &s, &w, t(MW))), vec!["lead-time-notice"]);
    // Sent three business days ahead: allowed.
    s.lead_items.get_mut("stakeholder-notice").unwrap().sent =
        Some(sent("email", "all-teams", "2026-02-26T09:00:00Z"));
    assert!(decide(&p, &s, &w, t(MW)).allowed);
}

#[test]
fn a_declared_announcement_does_not_count_when_it_must_be_sent() {
    let (mut p, s) = ready(3, vec![]);
    let mut w = world_with_announcement();
    p.notifications.require_sent = vec!["maintenance-announcement".into()];
    assert_eq!(
        denies(&decide(&p, &s, &w, t(MW))),
        vec!["maintenance-announcement-incomplete"],
        "declared channels are not enough"
    );
    // E-mail sent in time, the status page not yet.
    w.announcements[0]
        .sent
        .push(sent("email", "all-teams", "2026-02-10T09:05:00Z"));
    assert_eq!(
        denies(&decide(&p, &s, &w, t(MW))),
        vec!["maintenance-announcement-incomplete"]
    );
    // The status page accepted it too late (the 14 days count from the last channel).
    w.announcements[0]
        .sent
        .push(sent("status-page", "status-page", "2026-02-25T09:00:00Z"));
    assert_eq!(
        denies(&decide(&p, &s, &w, t(MW))),
        vec!["maintenance-not-announced"]
    );
    w.announcements[0].sent[1].at = t("2026-02-12T09:00:00Z");
    assert!(decide(&p, &s, &w, t(MW)).allowed);
}

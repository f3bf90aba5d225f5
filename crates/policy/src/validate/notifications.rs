//! Checks of `[notifications]`: every route names declared channels, e-mail channels have
//! recipients that look like addresses, category levels exist, the base URL is http(s).

use super::{Ctx, i, k};
use crate::diag::DiagCode;
use crate::model::ChannelKind;
use crate::suggest::did_you_mean;

/// `[notifications]`.
pub(super) fn notifications(cx: &mut Ctx<'_>) {
    let policy: &crate::model::Policy = cx.policy;
    let n = &policy.notifications;
    let url_ok = n.base_url.is_empty()
        || n.base_url.starts_with("https://")
        || n.base_url.starts_with("http://");
    if !url_ok {
        cx.report(
            DiagCode::BadNotificationChannel,
            vec![k("notifications"), k("base_url")],
            format!("base_url `{}` is not an http(s) URL", n.base_url),
            Some("the dashboard's address, e.g. `https://changegate.example.com`".into()),
        );
    }
    for (name, ch) in &n.channels {
        let base = vec![k("notifications"), k("channels"), k(name)];
        if ch.kind == ChannelKind::Email {
            if ch.to.is_empty() {
                cx.report(
                    DiagCode::BadNotificationChannel,
                    base.clone(),
                    format!("e-mail channel `{name}` has no recipients"),
                    Some("set `to = [\"team@example.com\"]`".into()),
                );
            }
            for (idx, addr) in ch.to.iter().enumerate() {
                let ok = addr.split_once('@').is_some_and(|(l, d)| {
                    !l.is_empty() && !d.is_empty() && !addr.contains(char::is_whitespace)
                });
                if !ok {
                    cx.report(
                        DiagCode::BadNotificationChannel,
                        [base.clone(), vec![k("to"), i(idx)]].concat(),
                        format!("`{addr}` is not an e-mail address"),
                        Some("write `name@domain`".into()),
                    );
                }
            }
        } else if !ch.to.is_empty() {
            cx.report(
                DiagCode::BadNotificationChannel,
                [base.clone(), vec![k("to")]].concat(),
                format!(
                    "`to` is for e-mail channels; `{name}` is a {} channel",
                    ch.kind.as_str()
                ),
                None,
            );
        }
    }
    for (idx, notice) in n.require_sent.iter().enumerate() {
        let known = notice == crate::model::SENT_MAINTENANCE_ANNOUNCEMENT
            || policy.lead_times.contains_key(notice);
        if !known {
            cx.report(
                DiagCode::UnknownReference,
                vec![k("notifications"), k("require_sent"), i(idx)],
                format!("`{notice}` is neither a lead time nor `maintenance-announcement`"),
                Some(format!(
                    "lead times: {}",
                    policy
                        .lead_times
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    for (ri, r) in n.routes.iter().enumerate() {
        let base = vec![k("notifications"), k("routes"), i(ri)];
        cx.levels(
            &r.categories,
            [base.clone(), vec![k("categories")]].concat(),
        );
        for (ci, c) in r.channels.iter().enumerate() {
            if !n.channels.contains_key(c) {
                let names = n.channels.keys().map(String::as_str);
                let help = match did_you_mean(c, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "declare it under [notifications.channels]".to_string(),
                };
                cx.report(
                    DiagCode::BadNotificationChannel,
                    [base.clone(), vec![k("channels"), i(ci)]].concat(),
                    format!("unknown notification channel `{c}`"),
                    Some(help),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::NotifyEvent;

    #[test]
    fn the_seed_routes_what_the_policy_names() {
        let p = crate::load_default().policy;
        let n = &p.notifications;
        // Every change: Slack #deployments.
        for level in [1, 2, 3, 4] {
            assert!(
                n.channels_for(NotifyEvent::ChangeDeployed, Some(level))
                    .contains(&"deployments")
            );
        }
        // Category 2: e-mail to stakeholders too; category 1 not.
        assert!(
            n.channels_for(NotifyEvent::ChangeDeployed, Some(2))
                .contains(&"stakeholders")
        );
        assert!(
            !n.channels_for(NotifyEvent::ChangeDeployed, Some(1))
                .contains(&"stakeholders")
        );
        // Incidents: #incidents.
        assert_eq!(
            n.channels_for(NotifyEvent::IncidentOpened, None),
            vec!["incidents"]
        );
        // Maintenance: e-mail and the status page.
        let m = n.channels_for(NotifyEvent::MaintenanceAnnounced, None);
        assert!(
            m.contains(&"all-teams") && m.contains(&"status-page"),
            "{m:?}"
        );
    }

    #[test]
    fn an_unknown_channel_is_reported_with_its_path() {
        let text = "[[notifications.routes]]\nevents = [\"change-deployed\"]\nchannels = [\"deploymnts\"]\n";
        let err = crate::load(text, "p.toml").unwrap_err();
        let d = err
            .diagnostics()
            .iter()
            .find(|d| d.code == crate::diag::DiagCode::BadNotificationChannel)
            .expect("reported");
        assert!(d.path.contains("notifications.routes"), "{}", d.path);
        assert!(
            d.help.as_deref().unwrap_or("").contains("deployments"),
            "{:?}",
            d.help
        );
    }
}

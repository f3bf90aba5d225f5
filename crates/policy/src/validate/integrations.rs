//! Checks of `[integrations]`: every severity a table maps to is an incident severity.

use super::{Ctx, k};
use crate::diag::DiagCode;

/// `[integrations.pagerduty]` and `[integrations.alertmanager]`.
pub(super) fn integrations(cx: &mut Ctx<'_>) {
    let pd = &cx.policy.integrations.pagerduty;
    let am = &cx.policy.integrations.alertmanager;
    let mut targets: Vec<(Vec<super::Seg>, String)> = Vec::new();
    for (table, map) in [("severity", &pd.severity), ("urgency", &pd.urgency)] {
        for (key, sev) in map {
            targets.push((
                vec![k("integrations"), k("pagerduty"), k(table), k(key)],
                sev.clone(),
            ));
        }
    }
    targets.push((
        vec![k("integrations"), k("pagerduty"), k("unmapped")],
        pd.unmapped.clone(),
    ));
    for (key, sev) in &am.severity {
        targets.push((
            vec![k("integrations"), k("alertmanager"), k("severity"), k(key)],
            sev.clone(),
        ));
    }
    targets.push((
        vec![k("integrations"), k("alertmanager"), k("unmapped")],
        am.unmapped.clone(),
    ));
    for (path, sev) in targets {
        if !cx.policy.emergency.incident_severities.contains(&sev) {
            let known = cx.policy.emergency.incident_severities.join(", ");
            cx.report(
                DiagCode::UnknownSeverity,
                path,
                format!("unknown incident severity `{sev}`"),
                Some(format!("known (emergency.incident_severities): {known}")),
            );
        }
    }
    if am.severity_label.trim().is_empty() {
        cx.report(
            DiagCode::UnknownValue,
            vec![k("integrations"), k("alertmanager"), k("severity_label")],
            "the severity label is empty".into(),
            Some("name the alert label that carries the severity, e.g. `severity`".into()),
        );
    }
}

/// `[people]` GitHub logins and `[integrations.github]`.
pub(super) fn github(cx: &mut Ctx<'_>) {
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    for (person, ids) in &cx.policy.people {
        let Some(login) = &ids.github else { continue };
        let path = vec![k("people"), k(person), k("github")];
        if !crate::model::is_github_login(login) {
            cx.report(
                DiagCode::BadGithubLogin,
                path,
                format!("`{login}` is not a GitHub login"),
                Some("1-39 letters, digits and single hyphens, e.g. `alice-gh`".into()),
            );
        } else if let Some(other) = seen.insert(login.to_ascii_lowercase(), person.clone()) {
            cx.report(
                DiagCode::BadGithubLogin,
                path,
                format!("GitHub login `{login}` is given to `{other}` and `{person}`"),
                Some("a login is one person's: keep it on one [people] entry".into()),
            );
        }
    }
    let roles = cx.policy.integrations.github.review_roles.clone();
    cx.roles(
        &roles,
        vec![k("integrations"), k("github"), k("review_roles")],
    );
    let teams = cx.policy.integrations.github.teams.clone();
    for (name, target) in &teams {
        let path = vec![k("integrations"), k("github"), k("teams"), k(name)];
        let holder = format!("team:{name}");
        let held = cx
            .policy
            .roles
            .values()
            .any(|r| r.holders.contains(&holder));
        if !crate::model::is_github_team(target) {
            cx.report(
                DiagCode::BadGithubTeam,
                path,
                format!("`{target}` is not a GitHub team `org/team-slug`"),
                Some(
                    "the organization's login and the team's slug, e.g. `acme/backend-leads`"
                        .into(),
                ),
            );
        } else if !held {
            cx.report(
                DiagCode::BadGithubTeam,
                path,
                format!(
                    "team `{name}` is read from GitHub, but no role lists `{holder}` as a holder"
                ),
                Some(format!(
                    "add `{holder}` to a role's holders, or remove this entry"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_seed_states_the_built_in_defaults() {
        let p = crate::load_default().policy;
        assert_eq!(p.integrations, crate::model::Integrations::default());
        let pd = &p.integrations.pagerduty;
        assert_eq!(pd.severity_of(Some("P1"), Some("high")), "P0");
        assert_eq!(pd.severity_of(None, Some("low")), "P3");
        assert_eq!(pd.severity_of(Some("SEV-X"), None), "P1");
        let am = &p.integrations.alertmanager;
        assert_eq!(
            am.severity_of(|l| (l == "severity").then_some("critical")),
            "P1"
        );
        assert_eq!(am.severity_of(|_| None), "P1");
    }

    #[test]
    fn github_teams_are_org_slash_slug_and_held() {
        let ok = crate::load(
            "[roles.backend-lead]\nname = \"Backend lead\"\nholders = [\"team:backend\"]\n[integrations.github]\nteams = { backend = \"acme/backend-leads\" }\nteam_ttl_secs = 60\n",
            "p.toml",
        )
        .unwrap()
        .policy;
        assert_eq!(
            ok.integrations.github.teams["backend"],
            "acme/backend-leads"
        );
        assert_eq!(ok.integrations.github.team_ttl_secs, 60);
        let bad = "[roles.backend-lead]\nname = \"Backend lead\"\nholders = [\"team:backend\"]\n[integrations.github.teams]\nbackend = \"acme/Backend Leads\"\nqa = \"acme/qa\"\nother = \"acme\"\n";
        let text = format!("{:?}", crate::load(bad, "p.toml").unwrap_err());
        assert!(text.contains("BadGithubTeam"), "{text}");
        assert!(
            text.contains("`acme/Backend Leads` is not a GitHub team"),
            "{text}"
        );
        assert!(text.contains("no role lists `team:qa`"), "{text}");
        assert!(text.contains("`acme` is not a GitHub team"), "{text}");
    }

    #[test]
    fn github_logins_are_checked_and_unique() {
        let extra = "[people.alice]\ngithub = \"alice-gh\"\n[people.bob]\ngithub = \"Alice-GH\"\n[people.carl]\ngithub = \"-bad-\"\n[integrations.github]\napprovals = \"reviews\"\nreview_roles = [\"no-such-role\"]\n";
        let diags = crate::load(extra, "p.toml").unwrap_err();
        let text = format!("{diags:?}");
        assert!(text.contains("is given to `alice` and `bob`"), "{text}");
        assert!(text.contains("`-bad-` is not a GitHub login"), "{text}");
        assert!(text.contains("no-such-role"), "{text}");
        let ok = crate::load(
            "[people.alice]\ngithub = \"alice-gh\"\ngithub_id = 7\n",
            "p.toml",
        )
        .unwrap()
        .policy;
        assert_eq!(ok.person_of_github("ALICE-gh", Some(7)), Some("alice"));
        assert_eq!(
            ok.person_of_github("alice-gh", Some(8)),
            None,
            "another user id"
        );
        assert_eq!(ok.person_of_github("bob", None), None);
    }
}

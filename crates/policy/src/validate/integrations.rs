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
}

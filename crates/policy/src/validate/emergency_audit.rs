//! Checks of `[emergency]` eligibility and of the `[audit]` retention floor.

use super::{Ctx, i, k};
use crate::diag::DiagCode;
use crate::model::MINIMUM_RETENTION;

/// `[emergency] incident_kinds` and `[emergency.eligible.*]`.
pub(super) fn emergency(cx: &mut Ctx<'_>) {
    let e = &cx.policy.emergency;
    if e.eligible.is_empty() {
        cx.report(
            DiagCode::EligibilityUnrestricted,
            vec![k("emergency"), k("eligible")],
            "no incident is eligible for an emergency".into(),
            Some(
                "list the incidents category 4 covers, e.g. [emergency.eligible.p0-outage] with severities = [\"P0\"]"
                    .into(),
            ),
        );
    }
    for (key, el) in &e.eligible {
        let base = vec![k("emergency"), k("eligible"), k(key)];
        if el.is_unrestricted() {
            cx.report(
                DiagCode::EligibilityUnrestricted,
                base.clone(),
                format!("eligibility `{key}` matches every incident"),
                Some("give it kinds, severities or min_cvss".into()),
            );
        }
        for (n, kind) in el.kinds.iter().enumerate() {
            if !e.incident_kinds.contains(kind) {
                cx.report(
                    DiagCode::UnknownIncidentKind,
                    [base.clone(), vec![k("kinds"), i(n)]].concat(),
                    format!("unknown incident kind `{kind}`"),
                    Some(format!(
                        "known (emergency.incident_kinds): {}",
                        e.incident_kinds.join(", ")
                    )),
                );
            }
        }
        for (n, s) in el.severities.iter().enumerate() {
            if !e.incident_severities.contains(s) {
                cx.report(
                    DiagCode::UnknownSeverity,
                    [base.clone(), vec![k("severities"), i(n)]].concat(),
                    format!("unknown incident severity `{s}`"),
                    Some(format!("known: {}", e.incident_severities.join(", "))),
                );
            }
        }
        if let Some(c) = el.min_cvss
            && !(0.0..=10.0).contains(&c)
        {
            cx.report(
                DiagCode::BadThreshold,
                [base, vec![k("min_cvss")]].concat(),
                format!("min_cvss {c} is not a CVSS score"),
                Some("CVSS base scores run from 0.0 to 10.0".into()),
            );
        }
    }
}

/// `[audit] retention` is at least the compliance minimum, or acknowledged.
pub(super) fn retention(cx: &mut Ctx<'_>) {
    let a = &cx.policy.audit;
    let ack_path = vec![k("audit"), k("retention_below_minimum_acknowledged")];
    if let Some(ack) = &a.retention_below_minimum_acknowledged {
        for (field, value) in [("by", &ack.by), ("reason", &ack.reason)] {
            if value.trim().is_empty() {
                cx.report(
                    DiagCode::RetentionBelowMinimum,
                    [ack_path.clone(), vec![k(field)]].concat(),
                    format!("the retention acknowledgement has an empty `{field}`"),
                    Some("name who acknowledged the shorter retention and why".into()),
                );
            }
        }
    }
    if !a.below_minimum() {
        return;
    }
    match &a.retention_below_minimum_acknowledged {
        None => cx.report(
            DiagCode::RetentionBelowMinimum,
            vec![k("audit"), k("retention")],
            format!(
                "retention {} is shorter than the compliance minimum of {MINIMUM_RETENTION}",
                a.retention
            ),
            Some(format!(
                "use at least {MINIMUM_RETENTION} (`2y`, `24mo`, `731d`), or acknowledge the shorter period: retention_below_minimum_acknowledged = {{ retention = \"{}\", by = \"…\", reason = \"…\", date = \"YYYY-MM-DD\" }}",
                a.retention
            )),
        ),
        Some(ack) if ack.retention != a.retention => cx.report(
            DiagCode::RetentionBelowMinimum,
            [ack_path, vec![k("retention")]].concat(),
            format!(
                "the acknowledgement is for a retention of {}, but the retention is {}",
                ack.retention, a.retention
            ),
            Some("acknowledge exactly the configured retention period".into()),
        ),
        Some(_) => {}
    }
}

//! `window check` and `window next`: one change against the calendar.

use anyhow::Context;
use askama::Template;
use changegate_calendar::{Calendar, NEXT_SLOT_HORIZON, WindowDecision, WindowRequest};
use changegate_policy::Policy;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;

use super::{
    CheckArgs, NextArgs, category_name, local_rfc, parse_duration, parse_time, request, show, zone,
    zone_name,
};
use crate::common::{Format, Outcome};

pub(super) fn run_check(p: &Policy, a: CheckArgs) -> anyhow::Result<Outcome> {
    let tz = zone(p, a.mods.tz.as_deref())?;
    let start = match &a.at {
        Some(t) => parse_time(t, &tz).context("--at")?,
        None => Timestamp::now(),
    };
    let req = request(p, &a.mods, start, &tz)?;
    let d = Calendar::new(p).check(&req);
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&check_json(p, &req, &d, &tz))?
        ),
        Format::Text | Format::Markdown => print!(
            "{}",
            check_text(p, &req, &d, &tz, a.format == Format::Markdown)?
        ),
    }
    Ok(if d.allowed {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}

fn check_json(
    p: &Policy,
    req: &WindowRequest,
    d: &WindowDecision,
    tz: &TimeZone,
) -> serde_json::Value {
    let end = req.start + req.duration;
    json!({
        "allowed": d.allowed,
        "category": req.category,
        "category_name": category_name(p, req.category),
        "zone": zone_name(tz),
        "start": req.start,
        "start_local": local_rfc(tz, req.start),
        "end": end,
        "end_local": local_rfc(tz, end),
        "duration": format!("{:#}", req.duration),
        "preferred": d.preferred,
        "reasons": d.reasons,
        "next_slot": d.next_slot,
        "next_slot_local": d.next_slot.map(|t| local_rfc(tz, t)),
    })
}

/// The decision for people: `check.txt` (a terminal) or `check.md` (a PR comment).
fn check_text(
    p: &Policy,
    req: &WindowRequest,
    d: &WindowDecision,
    tz: &TimeZone,
    md: bool,
) -> anyhow::Result<String> {
    let width = d
        .reasons
        .iter()
        .map(|r| r.code.as_str().len())
        .max()
        .unwrap_or(0);
    let next = (!d.allowed).then(|| match d.next_slot {
        Some(t) => format!("{} ({t})", show(tz, t)),
        None if d
            .reasons
            .iter()
            .any(|r| r.denies && is_incident_freeze(p, &r.code)) =>
        {
            "none while the incident is active".to_string()
        }
        None => "none within a year".to_string(),
    });
    let view = CheckView {
        verdict: if d.allowed { "ALLOWED" } else { "DENIED" },
        category: req.category,
        category_name: category_name(p, req.category),
        start: show(tz, req.start),
        duration: format!("{:#}", req.duration),
        end: show(tz, req.start + req.duration),
        reasons: d
            .reasons
            .iter()
            .map(|r| ReasonLine {
                denies: r.denies,
                code: r.code.to_string(),
                padded: format!("{:<width$}", r.code),
                message: r.message.clone(),
            })
            .collect(),
        next,
    };
    Ok(if md {
        CheckMarkdown { view }.render()?
    } else {
        CheckText { view }.render()?
    })
}

/// What `window check` tells people.
struct CheckView {
    verdict: &'static str,
    category: u8,
    category_name: String,
    start: String,
    duration: String,
    end: String,
    reasons: Vec<ReasonLine>,
    /// When denied: the next slot, or why there is none.
    next: Option<String>,
}

struct ReasonLine {
    denies: bool,
    code: String,
    /// The code padded to the longest one (the text view aligns the messages).
    padded: String,
    message: String,
}

#[derive(Template)]
#[template(path = "window/check.txt")]
struct CheckText {
    view: CheckView,
}

#[derive(Template)]
#[template(path = "window/check.md")]
struct CheckMarkdown {
    view: CheckView,
}

fn is_incident_freeze(p: &Policy, code: &changegate_calendar::ReasonCode) -> bool {
    code.freeze_key()
        .and_then(|key| p.freezes.get(key))
        .is_some_and(|f| matches!(f, changegate_policy::Freeze::Incident { .. }))
}

pub(super) fn run_next(p: &Policy, a: NextArgs) -> anyhow::Result<Outcome> {
    let tz = zone(p, a.mods.tz.as_deref())?;
    let from = match &a.from {
        Some(t) => parse_time(t, &tz).context("--from")?,
        None => Timestamp::now(),
    };
    let horizon = if a.horizon == "366d" {
        NEXT_SLOT_HORIZON
    } else {
        parse_duration(&a.horizon, "horizon")?
    };
    let req = request(p, &a.mods, from, &tz)?;
    let cal = Calendar::new(p);
    let next = cal.next_slot(&req, horizon);
    match a.format {
        Format::Json => {
            let v = json!({
                "found": next.is_some(),
                "category": req.category,
                "zone": zone_name(&tz),
                "from": from,
                "duration": format!("{:#}", req.duration),
                "horizon": a.horizon,
                "next_slot": next,
                "next_slot_local": next.map(|t| local_rfc(&tz, t)),
                "end": next.map(|t| t + req.duration),
                "reasons": next.map(|t| cal.evaluate(&WindowRequest { start: t, ..req.clone() }).reasons),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text | Format::Markdown => match next {
            Some(t) => println!(
                "next slot for category {} ({:#}): {} ({t}) until {}",
                req.category,
                req.duration,
                show(&tz, t),
                show(&tz, t + req.duration)
            ),
            None => println!(
                "no slot for category {} ({:#}) within {} of {}",
                req.category,
                req.duration,
                a.horizon,
                show(&tz, from)
            ),
        },
    }
    Ok(if next.is_some() {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::window::Modifiers;

    fn mods(category: u8) -> Modifiers {
        Modifiers {
            category,
            duration: "30m".into(),
            tz: None,
            exception: None,
            exception_approved_by: Vec::new(),
            incident_active: None,
            remediation: false,
            fallback: false,
            announced_at: None,
        }
    }

    fn render(m: &Modifiers, at: &str, md: bool) -> String {
        let p = changegate_policy::load_default().policy;
        let tz = zone(&p, m.tz.as_deref()).unwrap();
        let req = request(&p, m, parse_time(at, &tz).unwrap(), &tz).unwrap();
        let d = Calendar::new(&p).check(&req);
        check_text(&p, &req, &d, &tz, md).unwrap()
    }

    #[test]
    fn decisions_render_as_before() {
        let allowed = mods(2);
        let mut incident = mods(2);
        incident.incident_active = Some("P1".into());
        for (name, m, at) in [
            ("allowed", &allowed, "2026-03-03T10:00:00Z"),
            ("weekend", &allowed, "2026-03-07T12:00:00Z"),
            ("incident", &incident, "2026-03-03T10:00:00Z"),
        ] {
            insta::assert_snapshot!(format!("check-{name}.txt"), render(m, at, false));
            insta::assert_snapshot!(format!("check-{name}.md"), render(m, at, true));
        }
    }
}

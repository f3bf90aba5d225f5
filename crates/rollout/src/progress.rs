//! Live progress on stderr: the step, the time left in its soak, and each trigger's value against
//! its limit. On a terminal the block is redrawn in place each evaluation; otherwise only notes
//! (steps, rollback, completion) and state changes are printed as plain lines, so logs stay
//! readable. `NO_COLOR` is honoured (colour is only used on a terminal anyway).

use std::io::{IsTerminal, Write};

use crate::codes::ReasonCode;
use crate::engine::{Decision, fmt_dur, fmt_val};
use crate::replay::is_state_change;
use crate::spec::GuardSpec;

/// Receives decisions as they are taken.
pub trait Progress {
    /// A new decision.
    fn update(&mut self, spec: &GuardSpec, d: &Decision);
    /// A one-off note (a step taken, a rollback).
    fn note(&mut self, msg: &str);
    /// The run ended.
    fn finish(&mut self);
}

/// Shows nothing.
#[derive(Debug, Default)]
pub struct Hidden;

impl Progress for Hidden {
    fn update(&mut self, _: &GuardSpec, _: &Decision) {}
    fn note(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// Progress on stderr.
#[derive(Debug)]
pub struct Stderr {
    tty: bool,
    color: bool,
    drawn: usize,
    last: Option<Decision>,
}

impl Default for Stderr {
    fn default() -> Self {
        Self::new()
    }
}

impl Stderr {
    /// Detect whether stderr is a terminal.
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        Stderr {
            tty,
            color: tty && std::env::var_os("NO_COLOR").is_none(),
            drawn: 0,
            last: None,
        }
    }

    fn paint(&self, code: ReasonCode, s: &str) -> String {
        if !self.color {
            return s.to_string();
        }
        let c = match code {
            ReasonCode::Healthy | ReasonCode::BaselineMeasured => "32",
            ReasonCode::NotStarted | ReasonCode::Soaking => "2",
            ReasonCode::BreachPending
            | ReasonCode::InsufficientTraffic
            | ReasonCode::ShadowBreach => "33",
            ReasonCode::NoData | ReasonCode::QueryFailed | ReasonCode::BaselineMissing => "35",
            _ => "31;1",
        };
        format!("\x1b[{c}m{s}\x1b[0m")
    }
}

/// The status block for a decision (also used by `rollout replay --format text`).
pub fn render(spec: &GuardSpec, d: &Decision) -> Vec<(ReasonCode, String)> {
    let mut lines = Vec::new();
    let head = match (d.step, d.weight) {
        (Some(i), Some(w)) => format!(
            "plan {} · step {}/{} · {}% {} · {} left · {:?}",
            spec.plan.name,
            i + 1,
            spec.plan.steps.len(),
            w,
            d.environment.as_deref().unwrap_or(""),
            d.soak_left.map_or("-".into(), fmt_dur),
            d.verdict
        )
        .to_lowercase(),
        _ => format!("plan {} · {:?} · {:?}", spec.plan.name, d.phase, d.verdict).to_lowercase(),
    };
    lines.push((ReasonCode::Healthy, head));
    for t in &d.triggers {
        let v = t.value.map_or("n/a".to_string(), |v| fmt_val(v, t.unit));
        let l = t.limit.map_or("n/a".to_string(), |l| fmt_val(l, t.unit));
        let shadow = if t.mode == changegate_policy::TriggerMode::Shadow {
            " [shadow]"
        } else {
            ""
        };
        let detail = if t.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.detail)
        };
        lines.push((
            t.state,
            format!(
                "  {:<24} {:>12} / {:<12} {}{shadow}{detail}",
                t.name, v, l, t.state
            ),
        ));
    }
    if d.reasons
        .iter()
        .any(|r| matches!(r.code, ReasonCode::NoData | ReasonCode::QueryFailed))
    {
        lines.push((
            ReasonCode::NoData,
            "  not promoting: missing data never counts as healthy".into(),
        ));
    }
    lines
}

impl Progress for Stderr {
    fn update(&mut self, spec: &GuardSpec, d: &Decision) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            if self.drawn > 0 {
                let _ = write!(err, "\x1b[{}A\x1b[J", self.drawn);
            }
            let lines = render(spec, d);
            // One terminal row per line, or the redraw above would miscount.
            let width = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(120);
            for (code, line) in &lines {
                let line: String = line.chars().take(width.saturating_sub(1).max(20)).collect();
                let _ = writeln!(err, "{}", self.paint(*code, &line));
            }
            self.drawn = lines.len();
        } else if is_state_change(self.last.as_ref(), d) {
            let _ = writeln!(
                err,
                "[{}] {:?} step {} weight {}: {}",
                d.at,
                d.verdict,
                d.step.map_or("-".into(), |s| (s + 1).to_string()),
                d.weight.map_or("-".into(), |w| format!("{w}%")),
                d.reasons
                    .iter()
                    .map(|r| format!("{} {}", r.code, r.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        self.last = Some(d.clone());
    }

    fn note(&mut self, msg: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && self.drawn > 0 {
            let _ = write!(err, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
        let _ = writeln!(err, "{msg}");
        if let (true, Some(_)) = (self.tty, &self.last) {
            // The block is redrawn below the note at the next update.
        }
    }

    fn finish(&mut self) {
        self.drawn = 0;
    }
}

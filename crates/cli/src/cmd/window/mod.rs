//! `changegate window check | next | calendar`: the change-window calendar from the command line.
//!
//! Argument parsing does no IO; the policy is loaded once, times are parsed against `--tz` (or the
//! policy's window zone), and the pure calendar crate decides. This is the only place the wall
//! clock is read: the default of `--at` / `--from` is "now". Exit codes: 0 allowed / slot found,
//! 1 denied / no slot, 2 bad input.//!
//! `check.rs` holds `check` and `next`; `calendar.rs` the month view and its layouts.

mod calendar;
mod check;

use anyhow::{Context, anyhow, bail};
use changegate_calendar::{ActiveIncident, ExceptionGrant, MaintenanceSlot, WindowRequest};
use changegate_policy::{Dur, Level, Policy};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};

use crate::common::{Format, Global, Outcome, policy};

/// Change-window commands.
#[derive(Debug, clap::Subcommand)]
pub enum WindowCmd {
    /// Is a change of category N allowed to start at TIME and run for DURATION? Prints every rule
    /// that applied and, when denied, the next allowed slot. Exit 0 allowed, 1 denied, 2 bad input.
    Check(CheckArgs),
    /// The earliest start at which a change of category N fits entirely inside allowed time.
    /// Exit 0 found, 1 none within the horizon.
    Next(NextArgs),
    /// A month view: standard and preferred windows, maintenance windows and freezes per day.
    Calendar(CalendarArgs),
}

/// What the change carries besides its category and time.
#[derive(Debug, clap::Args)]
pub struct Modifiers {
    /// Category level of the change (1-4 in the seed policy).
    #[arg(long, value_name = "N")]
    pub category: Level,
    /// How long the deployment runs; all of it must be inside allowed time (`30m`, `1h 30m`, `4h`).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub duration: String,
    /// Zone for local times given without an offset, and for output [default: the policy's
    /// windows.timezone].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// An out-of-window exception carried by the change, by reason id (`security-patch`,
    /// `critical-bugfix`, `performance` in the seed).
    #[arg(long, value_name = "KIND")]
    pub exception: Option<String>,
    /// A role that approved the exception; repeat or comma-separate for several.
    #[arg(
        long = "exception-approved-by",
        value_name = "ROLE",
        value_delimiter = ',',
        requires = "exception"
    )]
    pub exception_approved_by: Vec<String>,
    /// An incident is active, of this severity (`P0`..`P4`); without a value, P0 (fail closed).
    #[arg(long, value_name = "SEVERITY", num_args = 0..=1, default_missing_value = "P0")]
    pub incident_active: Option<String>,
    /// The change is the active incident's remediation.
    #[arg(long, requires = "incident_active")]
    pub remediation: bool,
    /// Category 3: target the fallback maintenance window (the first one failed).
    #[arg(long)]
    pub fallback: bool,
    /// Category 3: when the maintenance window was announced (checked against the lead time).
    #[arg(long, value_name = "TIME")]
    pub announced_at: Option<String>,
}

/// `window check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub mods: Modifiers,
    /// Start time: RFC 3339 (`2026-03-03T10:00:00Z`), or local (`2026-03-03T10:00`) in --tz
    /// [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `window next`.
#[derive(Debug, clap::Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub mods: Modifiers,
    /// Search from this time: RFC 3339 or local in --tz [default: now].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// How far ahead to search.
    #[arg(long, value_name = "DURATION", default_value = "366d")]
    pub horizon: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Month view formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum CalendarFormat {
    /// One line per day with a 24-hour bar (half-hour cells) and the times.
    #[default]
    Text,
    /// A standalone HTML page.
    Html,
    /// An SVG image.
    Svg,
    /// The month view as JSON.
    Json,
}

/// `window calendar`.
#[derive(Debug, clap::Args)]
pub struct CalendarArgs {
    /// The month, `YYYY-MM`.
    #[arg(long, value_name = "YYYY-MM")]
    pub month: String,
    /// Also show the allowed time of this category, and only the freezes that apply to it.
    #[arg(long, value_name = "N")]
    pub category: Option<Level>,
    /// Zone the days are shown in [default: the policy's windows.timezone].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: CalendarFormat,
}

/// Run a window command.
pub fn run(global: &Global, cmd: WindowCmd) -> anyhow::Result<Outcome> {
    let p = policy(global)?;
    match cmd {
        WindowCmd::Check(a) => check::run_check(&p, a),
        WindowCmd::Next(a) => check::run_next(&p, a),
        WindowCmd::Calendar(a) => calendar::run(&p, a),
    }
}

fn zone(p: &Policy, tz: Option<&str>) -> anyhow::Result<TimeZone> {
    match tz {
        None => Ok(p.windows.timezone.to_jiff()),
        Some(name) => TimeZone::get(name).map_err(|_| {
            anyhow!(
                "unknown time zone `{name}`: expected an IANA name such as `UTC` or `Europe/Berlin`"
            )
        }),
    }
}

fn zone_name(tz: &TimeZone) -> &str {
    tz.iana_name().unwrap_or("UTC")
}

/// RFC 3339 with an offset, an RFC 9557 zoned time (`...[Europe/Berlin]`), or a local date-time
/// taken in `tz` (rejected when the local time is skipped or repeated by a DST change).
pub fn parse_time(text: &str, tz: &TimeZone) -> anyhow::Result<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(z) = text.parse::<ZonedDateTime>() {
        return Ok(z.timestamp());
    }
    let dt: DateTime = text.parse().map_err(|_| {
        anyhow!("invalid time `{text}`: expected RFC 3339 (`2026-03-03T10:00:00Z`) or a local time (`2026-03-03T10:00`) with --tz")
    })?;
    tz.to_ambiguous_timestamp(dt).unambiguous().map_err(|_| {
        anyhow!(
            "local time `{text}` is skipped or repeated in {} by a DST change: give an offset, e.g. `{text}+01:00`",
            zone_name(tz)
        )
    })
}

fn parse_duration(text: &str, what: &str) -> anyhow::Result<SignedDuration> {
    text.parse::<Dur>()
        .map(|d| d.get())
        .map_err(|e| anyhow!("--{what}: {e}"))
}

fn show(tz: &TimeZone, ts: Timestamp) -> String {
    let z = ts.to_zoned_datetime(tz.clone());
    format!("{} {}", z.strftime("%a %Y-%m-%d %H:%M %:z"), zone_name(tz))
}

fn local_rfc(tz: &TimeZone, ts: Timestamp) -> String {
    ts.to_zoned_datetime(tz.clone()).to_string()
}

/// Build the request from the arguments (no IO).
fn request(
    p: &Policy,
    m: &Modifiers,
    start: Timestamp,
    tz: &TimeZone,
) -> anyhow::Result<WindowRequest> {
    if p.category(m.category).is_none() {
        let levels: Vec<String> = p.levels().iter().map(u8::to_string).collect();
        bail!(
            "--category {}: the policy has no such category (levels: {})",
            m.category,
            levels.join(", ")
        );
    }
    let announced_at = m
        .announced_at
        .as_deref()
        .map(|t| parse_time(t, tz))
        .transpose()
        .context("--announced-at")?;
    Ok(WindowRequest {
        category: m.category,
        start,
        duration: parse_duration(&m.duration, "duration")?,
        exception: m.exception.as_ref().map(|reason| ExceptionGrant {
            reason: reason.clone(),
            approved_roles: m.exception_approved_by.clone(),
        }),
        incidents: m
            .incident_active
            .as_ref()
            .map(|sev| {
                vec![ActiveIncident {
                    id: "cli".into(),
                    severity: sev.to_ascii_uppercase(),
                    remediated_by_this_change: m.remediation,
                }]
            })
            .unwrap_or_default(),
        maintenance: if m.fallback {
            MaintenanceSlot::Fallback
        } else {
            MaintenanceSlot::Primary
        },
        announced_at,
    })
}

fn category_name(p: &Policy, level: Level) -> String {
    p.category(level)
        .map(|(_, c)| c.name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_offsets_zones_and_local() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let want: Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
        assert_eq!(parse_time("2026-03-03T09:00:00Z", &berlin).unwrap(), want);
        assert_eq!(
            parse_time("2026-03-03T10:00:00+01:00", &berlin).unwrap(),
            want
        );
        assert_eq!(
            parse_time("2026-03-03T10:00[Europe/Berlin]", &TimeZone::UTC).unwrap(),
            want
        );
        assert_eq!(parse_time("2026-03-03T10:00", &berlin).unwrap(), want);
        assert_eq!(parse_time("2026-03-03 10:00", &berlin).unwrap(), want);
        // 02:30 on the spring-forward day does not exist in Berlin.
        assert!(parse_time("2026-03-29T02:30", &berlin).is_err());
        assert!(parse_time("tomorrow", &berlin).is_err());
    }
}

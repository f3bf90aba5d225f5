//! `changegate window check | next | calendar`: the change-window calendar from the command line.
//!
//! Argument parsing does no IO; the policy is loaded once, times are parsed against `--tz` (or the
//! policy's window zone), and the pure calendar crate decides. This is the only place the wall
//! clock is read: the default of `--at` / `--from` is "now". Exit codes: 0 allowed / slot found,
//! 1 denied / no slot, 2 bad input.

use std::fmt::Write as _;

use anyhow::{Context, anyhow, bail};
use changegate_calendar::month::{Band, BandKind, MonthView, month_view};
use changegate_calendar::{
    ActiveIncident, Calendar, ExceptionGrant, MaintenanceSlot, NEXT_SLOT_HORIZON, WindowDecision,
    WindowRequest,
};
use changegate_policy::{Dur, Level, Policy};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use serde_json::json;

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
        WindowCmd::Check(a) => run_check(&p, a),
        WindowCmd::Next(a) => run_next(&p, a),
        WindowCmd::Calendar(a) => run_calendar(&p, a),
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

fn run_check(p: &Policy, a: CheckArgs) -> anyhow::Result<Outcome> {
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
            check_text(p, &req, &d, &tz, a.format == Format::Markdown)
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

fn check_text(
    p: &Policy,
    req: &WindowRequest,
    d: &WindowDecision,
    tz: &TimeZone,
    md: bool,
) -> String {
    let mut out = String::new();
    let verdict = if d.allowed { "ALLOWED" } else { "DENIED" };
    let _ = writeln!(
        out,
        "{}{verdict}: category {} ({}) from {} for {:#} (until {})",
        if md { "**" } else { "" },
        req.category,
        category_name(p, req.category),
        show(tz, req.start),
        req.duration,
        show(tz, req.start + req.duration),
    );
    if md {
        out.insert_str(out.find(':').unwrap_or(0), "**");
        out.push('\n');
    }
    let width = d
        .reasons
        .iter()
        .map(|r| r.code.as_str().len())
        .max()
        .unwrap_or(0);
    for r in &d.reasons {
        let mark = if r.denies { "x" } else { "-" };
        if md {
            let _ = writeln!(
                out,
                "- {} `{}` {}",
                if r.denies { "❌" } else { "•" },
                r.code,
                r.message
            );
        } else {
            let _ = writeln!(out, "  {mark} {:<width$}  {}", r.code, r.message);
        }
    }
    if !d.allowed {
        let _ = match d.next_slot {
            Some(t) => writeln!(
                out,
                "{}next slot: {} ({t})",
                if md { "\n" } else { "" },
                show(tz, t)
            ),
            None if d
                .reasons
                .iter()
                .any(|r| r.denies && is_incident_freeze(p, &r.code)) =>
            {
                writeln!(
                    out,
                    "{}next slot: none while the incident is active",
                    if md { "\n" } else { "" }
                )
            }
            None => writeln!(
                out,
                "{}next slot: none within a year",
                if md { "\n" } else { "" }
            ),
        };
    }
    out
}

fn is_incident_freeze(p: &Policy, code: &changegate_calendar::ReasonCode) -> bool {
    code.freeze_key()
        .and_then(|key| p.freezes.get(key))
        .is_some_and(|f| matches!(f, changegate_policy::Freeze::Incident { .. }))
}

fn run_next(p: &Policy, a: NextArgs) -> anyhow::Result<Outcome> {
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

fn run_calendar(p: &Policy, a: CalendarArgs) -> anyhow::Result<Outcome> {
    let tz = zone(p, a.tz.as_deref())?;
    let bad = || anyhow!("--month `{}`: expected YYYY-MM, e.g. 2026-03", a.month);
    let (y, m) = a.month.split_once('-').ok_or_else(bad)?;
    let (year, month): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let view = month_view(p, year, month, &tz, a.category).map_err(|e| anyhow!("{e}"))?;
    let title = title(p, &view);
    match a.format {
        CalendarFormat::Text => print!("{}", render_text(&view, &tz, &title)),
        CalendarFormat::Html => print!("{}", render_html(&view, &tz, &title)),
        CalendarFormat::Svg => print!("{}", render_svg(&view, &tz, &title)),
        CalendarFormat::Json => println!("{}", serde_json::to_string_pretty(&view)?),
    }
    Ok(Outcome::Ok)
}

fn title(p: &Policy, v: &MonthView) -> String {
    let month = jiff::civil::date(v.year, v.month, 1)
        .strftime("%B %Y")
        .to_string();
    match v.category {
        Some(l) => format!(
            "Change windows, {month} ({}), category {l}: {}",
            v.zone,
            category_name(p, l)
        ),
        None => format!("Change windows, {month} ({})", v.zone),
    }
}

/// Half-hour cells of a day, by local wall-clock time; each cell's character is that of the
/// highest-priority band covering the cell's middle.
const CELLS: usize = 48;

fn cell_kinds(
    day: &changegate_calendar::month::DayView,
    tz: &TimeZone,
) -> Vec<Option<&'static str>> {
    (0..CELLS)
        .map(|i| {
            let minutes = i as i64 * 30 + 15;
            let dt = day
                .date
                .at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
            let t = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            let has = |k: BandKind| {
                day.bands
                    .iter()
                    .any(|b| b.kind == k && b.start <= t && t < b.end)
            };
            [
                (BandKind::Freeze, "freeze"),
                (BandKind::Maintenance, "maintenance"),
                (BandKind::MaintenanceFallback, "fallback"),
                (BandKind::Preferred, "preferred"),
                (BandKind::Standard, "standard"),
                (BandKind::Allowed, "allowed"),
            ]
            .into_iter()
            .find(|(k, _)| has(*k))
            .map(|(_, name)| name)
        })
        .collect()
}

fn cell_char(kind: Option<&str>) -> char {
    match kind {
        Some("freeze") => 'x',
        Some("maintenance") => 'M',
        Some("fallback") => 'm',
        Some("preferred") => '*',
        Some("standard") => '#',
        Some("allowed") => '+',
        _ => '.',
    }
}

fn hhmm(tz: &TimeZone, day: &changegate_calendar::month::DayView, t: Timestamp) -> String {
    if t >= day.end {
        "24:00".into()
    } else {
        tz.to_datetime(t).strftime("%H:%M").to_string()
    }
}

fn band_text(tz: &TimeZone, day: &changegate_calendar::month::DayView, b: &Band) -> String {
    let span = if b.start == day.start && b.end == day.end {
        "all day".to_string()
    } else {
        format!("{}-{}", hhmm(tz, day, b.start), hhmm(tz, day, b.end))
    };
    match b.kind {
        BandKind::Freeze => format!("{} {span}", b.code),
        BandKind::MaintenanceFallback => format!("fallback maintenance {span}"),
        _ => format!("{} {span}", b.code),
    }
}

fn day_notes(v: &MonthView, tz: &TimeZone, day: &changegate_calendar::month::DayView) -> String {
    day.bands
        .iter()
        .filter(|b| !(v.category.is_some() && b.kind == BandKind::Standard))
        .map(|b| band_text(tz, day, b))
        .collect::<Vec<_>>()
        .join(", ")
}

fn legend(v: &MonthView) -> String {
    let mut s =
        String::from("x frozen  M maintenance  m fallback maintenance  * preferred  # standard");
    if v.category.is_some() {
        s.push_str("  + allowed (other)");
    }
    s.push_str("  . closed");
    s
}

fn render_text(v: &MonthView, tz: &TimeZone, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "{}\n", legend(v));
    let mut ruler = String::new();
    for h in (0..24).step_by(3) {
        let _ = write!(ruler, "{:<6}", h);
    }
    let _ = writeln!(out, "{:<10}{ruler}", "");
    for day in &v.days {
        let bar: String = cell_kinds(day, tz).into_iter().map(cell_char).collect();
        let _ = writeln!(
            out,
            "{:<10}{bar}  {}",
            day.date.strftime("%a %d").to_string(),
            day_notes(v, tz, day)
        );
    }
    for (code, name) in &v.conditional_freezes {
        let _ = writeln!(
            out,
            "\nalso: {code} ({name}) applies whenever such an incident is active"
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [(&str, &str); 6] = [
    ("freeze", "#e57373"),
    ("maintenance", "#7e57c2"),
    ("fallback", "#b39ddb"),
    ("preferred", "#43a047"),
    ("standard", "#a5d6a7"),
    ("allowed", "#90caf9"),
];

fn render_html(v: &MonthView, tz: &TimeZone, title: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse}}\n\
         td,th{{padding:0;height:1.4em;font-size:12px}} td.c{{width:9px;border-left:1px solid #fff}}\n\
         th.h{{text-align:left;font-weight:normal}} td.d{{padding-right:.6em;white-space:nowrap}}\n\
         td.n{{padding-left:.8em;white-space:nowrap;color:#333}} .legend span{{display:inline-block;padding:0 .5em;margin-right:.3em}}\n",
        t = esc(title)
    );
    for (k, c) in COLOURS {
        let _ = writeln!(out, ".{k}{{background:{c}}}");
    }
    let _ = write!(
        out,
        ".closed{{background:#eee}}\n</style></head><body>\n<h1>{}</h1>\n<p class=\"legend\">",
        esc(title)
    );
    for (k, _) in COLOURS {
        if k != "allowed" || v.category.is_some() {
            let _ = write!(out, "<span class=\"{k}\">{k}</span>");
        }
    }
    let _ = writeln!(
        out,
        "<span class=\"closed\">closed</span> (half-hour cells, {})</p>",
        esc(&v.zone)
    );
    let _ = write!(out, "<table>\n<tr><th></th>");
    for h in 0..24 {
        let _ = write!(out, "<th class=\"h\" colspan=\"2\">{h:02}</th>");
    }
    let _ = writeln!(out, "<th></th></tr>");
    for day in &v.days {
        let _ = write!(
            out,
            "<tr><td class=\"d\">{}</td>",
            day.date.strftime("%a %d")
        );
        for k in cell_kinds(day, tz) {
            let _ = write!(out, "<td class=\"c {}\"></td>", k.unwrap_or("closed"));
        }
        let _ = writeln!(
            out,
            "<td class=\"n\">{}</td></tr>",
            esc(&day_notes(v, tz, day))
        );
    }
    let _ = writeln!(out, "</table>");
    for (code, name) in &v.conditional_freezes {
        let _ = writeln!(
            out,
            "<p>Also: <code>{}</code> ({}) applies whenever such an incident is active.</p>",
            esc(&code.as_str()),
            esc(name)
        );
    }
    let _ = writeln!(out, "</body></html>");
    out
}

fn render_svg(v: &MonthView, tz: &TimeZone, title: &str) -> String {
    const LEFT: f64 = 70.0;
    const TOP: f64 = 60.0;
    const WIDTH: f64 = 720.0;
    const ROW: f64 = 18.0;
    let height = TOP + ROW * v.days.len() as f64 + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">",
        w = LEFT + WIDTH + 20.0
    );
    let _ = writeln!(out, "<title>{}</title>", esc(title));
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"18\" font-size=\"14\">{}</text>",
        esc(title)
    );
    let mut lx = LEFT;
    for (k, c) in COLOURS {
        if k == "allowed" && v.category.is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "<rect x=\"{lx}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{}\" y=\"35\">{k}</text>",
            lx + 13.0
        );
        lx += 95.0;
    }
    for h in (0..=24).step_by(3) {
        let x = LEFT + WIDTH * h as f64 / 24.0;
        let _ = writeln!(
            out,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{h:02}</text><line x1=\"{x}\" y1=\"{TOP}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ccc\"/>",
            TOP - 4.0,
            TOP + ROW * v.days.len() as f64
        );
    }
    let order = [
        BandKind::Standard,
        BandKind::Allowed,
        BandKind::Preferred,
        BandKind::MaintenanceFallback,
        BandKind::Maintenance,
        BandKind::Freeze,
    ];
    for (i, day) in v.days.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{}\">{}</text>",
            y + 13.0,
            day.date.strftime("%a %d")
        );
        let _ = writeln!(
            out,
            "<rect x=\"{LEFT}\" y=\"{}\" width=\"{WIDTH}\" height=\"{}\" fill=\"#eee\"/>",
            y + 1.0,
            ROW - 2.0
        );
        let span = day.end.duration_since(day.start).as_secs_f64().max(1.0);
        for kind in order {
            for b in day.bands.iter().filter(|b| b.kind == kind) {
                let x = LEFT + WIDTH * b.start.duration_since(day.start).as_secs_f64() / span;
                let w = WIDTH * b.end.duration_since(b.start).as_secs_f64() / span;
                let colour = COLOURS
                    .iter()
                    .find(|(k, _)| *k == kind_class(kind))
                    .map_or("#999", |(_, c)| c);
                let opacity = if kind == BandKind::Freeze {
                    " fill-opacity=\"0.85\""
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"{opacity}><title>{}</title></rect>",
                    y + 1.0,
                    ROW - 2.0,
                    esc(&band_text(tz, day, b))
                );
            }
        }
    }
    let _ = writeln!(out, "</svg>");
    out
}

fn kind_class(k: BandKind) -> &'static str {
    match k {
        BandKind::Freeze => "freeze",
        BandKind::Maintenance => "maintenance",
        BandKind::MaintenanceFallback => "fallback",
        BandKind::Preferred => "preferred",
        BandKind::Standard => "standard",
        BandKind::Allowed => "allowed",
    }
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

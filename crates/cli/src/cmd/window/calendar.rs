//! `window calendar`: a month view of the change windows, as text, HTML, SVG or JSON.
//!
//! The month view itself comes from the pure calendar crate; this file only lays it out. The
//! layouts are templates (`crates/cli/templates/window/calendar.{txt,html,svg}`) over the small
//! view model built here, and their output is pinned by snapshots (`snapshots/`).

use anyhow::anyhow;
use askama::Template;
use changegate_calendar::month::{Band, BandKind, DayView, MonthView, month_view};
use changegate_policy::Policy;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{CalendarArgs, CalendarFormat, category_name, zone};
use crate::common::Outcome;

pub(super) fn run(p: &Policy, a: CalendarArgs) -> anyhow::Result<Outcome> {
    let tz = zone(p, a.tz.as_deref())?;
    let bad = || anyhow!("--month `{}`: expected YYYY-MM, e.g. 2026-03", a.month);
    let (y, m) = a.month.split_once('-').ok_or_else(bad)?;
    let (year, month): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let view = month_view(p, year, month, &tz, a.category).map_err(|e| anyhow!("{e}"))?;
    print!("{}", render(p, &view, &tz, a.format)?);
    Ok(Outcome::Ok)
}

/// The month view in `format`.
pub(crate) fn render(
    p: &Policy,
    view: &MonthView,
    tz: &TimeZone,
    format: CalendarFormat,
) -> anyhow::Result<String> {
    let page = Page::new(p, view, tz);
    Ok(match format {
        CalendarFormat::Text => Text { page }.render()?,
        CalendarFormat::Html => Html { page }.render()?,
        CalendarFormat::Svg => Svg::new(page, view, tz).render()?,
        CalendarFormat::Json => format!("{}\n", serde_json::to_string_pretty(view)?),
    })
}

/// Half-hour cells of a day, by local wall-clock time; each cell shows the highest-priority band
/// covering the cell's middle.
const CELLS: usize = 48;

/// Band classes from the highest priority down, with their colours (HTML and SVG) and their
/// character in the text bar.
const KINDS: [(BandKind, &str, &str, char); 6] = [
    (BandKind::Freeze, "freeze", "#e57373", 'x'),
    (BandKind::Maintenance, "maintenance", "#7e57c2", 'M'),
    (BandKind::MaintenanceFallback, "fallback", "#b39ddb", 'm'),
    (BandKind::Preferred, "preferred", "#43a047", '*'),
    (BandKind::Standard, "standard", "#a5d6a7", '#'),
    (BandKind::Allowed, "allowed", "#90caf9", '+'),
];

/// What every layout shows.
struct Page {
    title: String,
    zone: String,
    /// A category was asked for: `allowed` bands exist, `standard` ones are not listed in notes.
    per_category: bool,
    days: Vec<Day>,
    conditional: Vec<(String, String)>,
}

/// One day of the month.
struct Day {
    /// `Tue 03`.
    label: String,
    /// The class of each half-hour cell (`closed` when nothing covers it).
    cells: Vec<&'static str>,
    /// The day's bands in words (`window-standard 09:00-17:00, freeze-… all day`).
    notes: String,
}

impl Page {
    fn new(p: &Policy, v: &MonthView, tz: &TimeZone) -> Page {
        Page {
            title: title(p, v),
            zone: v.zone.clone(),
            per_category: v.category.is_some(),
            days: v.days.iter().map(|d| Day::new(v, tz, d)).collect(),
            conditional: v
                .conditional_freezes
                .iter()
                .map(|(code, name)| (code.to_string(), name.clone()))
                .collect(),
        }
    }

    /// The band classes shown in the legends, with their colours.
    fn legend(&self) -> Vec<(&'static str, &'static str)> {
        KINDS
            .iter()
            .filter(|k| self.per_category || k.0 != BandKind::Allowed)
            .map(|k| (k.1, k.2))
            .collect()
    }

    fn colours(&self) -> Vec<(&'static str, &'static str)> {
        KINDS.iter().map(|k| (k.1, k.2)).collect()
    }
}

impl Day {
    fn new(v: &MonthView, tz: &TimeZone, day: &DayView) -> Day {
        Day {
            label: day.date.strftime("%a %d").to_string(),
            cells: cell_kinds(day, tz)
                .into_iter()
                .map(|k| k.map_or("closed", |k| k.1))
                .collect(),
            notes: day
                .bands
                .iter()
                .filter(|b| !(v.category.is_some() && b.kind == BandKind::Standard))
                .map(|b| band_text(tz, day, b))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The 24-hour bar of the text view, one character per cell.
    fn bar(&self) -> String {
        self.cells
            .iter()
            .map(|c| KINDS.iter().find(|k| k.1 == *c).map_or('.', |k| k.3))
            .collect()
    }
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

fn cell_kinds(
    day: &DayView,
    tz: &TimeZone,
) -> Vec<Option<&'static (BandKind, &'static str, &'static str, char)>> {
    (0..CELLS)
        .map(|i| {
            let minutes = i as i64 * 30 + 15;
            let dt = day
                .date
                .at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
            let t = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            KINDS.iter().find(|k| {
                day.bands
                    .iter()
                    .any(|b| b.kind == k.0 && b.start <= t && t < b.end)
            })
        })
        .collect()
}

fn hhmm(tz: &TimeZone, day: &DayView, t: Timestamp) -> String {
    if t >= day.end {
        "24:00".into()
    } else {
        tz.to_datetime(t).strftime("%H:%M").to_string()
    }
}

fn band_text(tz: &TimeZone, day: &DayView, b: &Band) -> String {
    let span = if b.start == day.start && b.end == day.end {
        "all day".to_string()
    } else {
        format!("{}-{}", hhmm(tz, day, b.start), hhmm(tz, day, b.end))
    };
    match b.kind {
        BandKind::MaintenanceFallback => format!("fallback maintenance {span}"),
        _ => format!("{} {span}", b.code),
    }
}

/// One line per day with a 24-hour bar (half-hour cells) and the times.
#[derive(Template)]
#[template(path = "window/calendar.txt")]
struct Text {
    page: Page,
}

/// A standalone HTML page.
#[derive(Template)]
#[template(path = "window/calendar.html", config = "templates/askama.toml")]
struct Html {
    page: Page,
}

/// Geometry of the SVG, in pixels.
const SVG_LEFT: f64 = 70.0;
const SVG_TOP: f64 = 60.0;
const SVG_WIDTH: f64 = 720.0;
const SVG_ROW: f64 = 18.0;

/// The SVG draws bands in this order, so the ones that matter most are on top.
const SVG_ORDER: [BandKind; 6] = [
    BandKind::Standard,
    BandKind::Allowed,
    BandKind::Preferred,
    BandKind::MaintenanceFallback,
    BandKind::Maintenance,
    BandKind::Freeze,
];

/// An SVG image.
#[derive(Template)]
#[template(path = "window/calendar.svg", config = "templates/askama.toml")]
struct Svg {
    page: Page,
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    bar_width: f64,
    /// Baseline of the hour labels.
    hour_y: f64,
    /// Bottom of the last row (hour lines end there).
    bottom: f64,
    /// The legend: class, colour and x of each entry.
    legend: Vec<(&'static str, &'static str, f64)>,
    /// (x, hour) of the hour marks, every 3 hours.
    hours: Vec<(f64, u8)>,
    rows: Vec<SvgRow>,
}

/// One day's row of the SVG.
struct SvgRow {
    label: String,
    /// Baseline of the label.
    text_y: f64,
    /// Top of the bar.
    bar_y: f64,
    bar_height: f64,
    bands: Vec<SvgBand>,
}

/// One band of a day's bar.
struct SvgBand {
    /// Left edge and width, in pixels.
    x: f64,
    w: f64,
    colour: &'static str,
    freeze: bool,
    /// The tooltip.
    text: String,
}

impl Svg {
    fn new(page: Page, v: &MonthView, tz: &TimeZone) -> Svg {
        let n = v.days.len() as f64;
        let legend = page
            .legend()
            .into_iter()
            .enumerate()
            .map(|(i, (class, colour))| (class, colour, SVG_LEFT + 95.0 * i as f64))
            .collect();
        let hours = (0..=24u8)
            .step_by(3)
            .map(|h| (SVG_LEFT + SVG_WIDTH * f64::from(h) / 24.0, h))
            .collect();
        let rows = v
            .days
            .iter()
            .enumerate()
            .map(|(i, day)| {
                let y = SVG_TOP + SVG_ROW * i as f64;
                let span = day.end.duration_since(day.start).as_secs_f64().max(1.0);
                let bands = SVG_ORDER
                    .iter()
                    .flat_map(|&kind| day.bands.iter().filter(move |b| b.kind == kind))
                    .map(|b| SvgBand {
                        x: SVG_LEFT
                            + SVG_WIDTH * b.start.duration_since(day.start).as_secs_f64() / span,
                        w: SVG_WIDTH * b.end.duration_since(b.start).as_secs_f64() / span,
                        colour: KINDS.iter().find(|k| k.0 == b.kind).map_or("#999", |k| k.2),
                        freeze: b.kind == BandKind::Freeze,
                        text: band_text(tz, day, b),
                    })
                    .collect();
                SvgRow {
                    label: day.date.strftime("%a %d").to_string(),
                    text_y: y + 13.0,
                    bar_y: y + 1.0,
                    bar_height: SVG_ROW - 2.0,
                    bands,
                }
            })
            .collect();
        Svg {
            width: SVG_LEFT + SVG_WIDTH + 20.0,
            height: SVG_TOP + SVG_ROW * n + 40.0,
            left: SVG_LEFT,
            top: SVG_TOP,
            bar_width: SVG_WIDTH,
            hour_y: SVG_TOP - 4.0,
            bottom: SVG_TOP + SVG_ROW * n,
            legend,
            hours,
            rows,
            page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(month: i8, category: Option<u8>) -> (Policy, MonthView, TimeZone) {
        let p = changegate_policy::load_default().policy;
        let tz = p.windows.timezone.to_jiff();
        let v = month_view(&p, 2026, month, &tz, category).unwrap();
        (p, v, tz)
    }

    #[test]
    fn month_views_render_as_before() {
        for (name, month, category) in [("march", 3, None), ("october-category-2", 10, Some(2))] {
            let (p, v, tz) = view(month, category);
            for (ext, format) in [
                ("txt", CalendarFormat::Text),
                ("html", CalendarFormat::Html),
                ("svg", CalendarFormat::Svg),
            ] {
                insta::assert_snapshot!(
                    format!("calendar-{name}.{ext}"),
                    render(&p, &v, &tz, format).unwrap()
                );
            }
        }
    }

    #[test]
    fn html_and_svg_escape_what_the_policy_names() {
        let (p, mut v, tz) = view(3, None);
        v.zone = "<Zone & \"Co\">".into();
        let html = render(&p, &v, &tz, CalendarFormat::Html).unwrap();
        assert!(html.contains("(half-hour cells, &lt;Zone &amp; &quot;Co&quot;&gt;)"));
        let svg = render(&p, &v, &tz, CalendarFormat::Svg).unwrap();
        assert!(svg.contains(
            "<title>Change windows, March 2026 (&lt;Zone &amp; &quot;Co&quot;&gt;)</title>"
        ));
    }
}

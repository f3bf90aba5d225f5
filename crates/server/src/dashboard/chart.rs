//! Small server-rendered SVG charts: a trigger's values over the last hour against its limit.

use std::fmt::Write as _;

use jiff::Timestamp;

/// Width and height of a chart, in CSS pixels.
pub const WIDTH: f64 = 320.0;
/// Height.
pub const HEIGHT: f64 = 90.0;
const PAD: f64 = 6.0;

/// Escape text for XML.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A line chart of `points` (time, value) between `from` and `to`, with the `limit` as a dashed
/// line; `title` names it for screen readers. Values above the limit are drawn as red dots.
pub fn trigger_chart(
    title: &str,
    points: &[(Timestamp, f64)],
    limit: Option<f64>,
    from: Timestamp,
    to: Timestamp,
) -> String {
    let span = (to.as_microsecond() - from.as_microsecond()).max(1) as f64;
    let top = points
        .iter()
        .map(|p| p.1)
        .chain(limit)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.15;
    let x = |t: Timestamp| {
        PAD + (t.as_microsecond() - from.as_microsecond()) as f64 / span * (WIDTH - 2.0 * PAD)
    };
    let y = |v: f64| HEIGHT - PAD - (v / top).clamp(0.0, 1.0) * (HEIGHT - 2.0 * PAD);
    let mut svg = String::with_capacity(1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{t}"><title>{t}</title><rect class="chart-bg" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>"#,
        t = xml(title)
    );
    if let Some(l) = limit {
        let ly = y(l);
        let _ = write!(
            svg,
            r#"<line class="chart-limit" x1="{PAD}" x2="{x2}" y1="{ly:.1}" y2="{ly:.1}"/><text class="chart-label" x="{x2}" y="{ty:.1}" text-anchor="end">limit {l}</text>"#,
            x2 = WIDTH - PAD,
            ty = (ly - 3.0).max(10.0),
        );
    }
    if points.len() > 1 {
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="chart-line" points="{}"/>"#,
            path.join(" ")
        );
    }
    for (t, v) in points {
        let over = limit.is_some_and(|l| *v > l);
        let _ = write!(
            svg,
            r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{v} at {t}</title></circle>"#,
            if over { "chart-dot over" } else { "chart-dot" },
            x(*t),
            y(*v),
        );
    }
    if points.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="chart-label" x="{}" y="{}" text-anchor="middle">no readings in the last hour</text>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_mark_values_over_the_limit_and_escape_titles() {
        let t0: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-03-10T10:30:00Z".parse().unwrap();
        let t2: Timestamp = "2026-03-10T11:00:00Z".parse().unwrap();
        let svg = trigger_chart("error<rate>", &[(t0, 0.01), (t1, 0.2)], Some(0.05), t0, t2);
        assert!(svg.contains("error&lt;rate&gt;"), "{svg}");
        assert_eq!(svg.matches("chart-dot over").count(), 1, "{svg}");
        assert!(svg.contains("chart-limit"));
        assert!(svg.contains("<polyline"));
        let empty = trigger_chart("x", &[], None, t0, t2);
        assert!(empty.contains("no readings"));
    }
}

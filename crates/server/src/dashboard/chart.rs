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

/// A line chart of a trigger over `[from, to]` against its `limit` (a dashed line); `title`
/// names it for screen readers.
///
/// - `line`: the metric's values as Prometheus has them (a range query of the guard's own
///   PromQL), drawn as a line;
/// - `readings`: the values the guard itself read and recorded (its evaluations), drawn as dots,
///   red above the limit. Without a `line`, the readings are joined into one.
///
/// The `<svg>` says how many of each it drew (`data-line-points`, `data-readings`), so a test
/// or a script can tell where the chart's data came from.
pub fn trigger_chart(
    title: &str,
    line: &[(Timestamp, f64)],
    readings: &[(Timestamp, f64)],
    limit: Option<f64>,
    from: Timestamp,
    to: Timestamp,
) -> String {
    let finite = |p: &&(Timestamp, f64)| p.1.is_finite() && p.0 >= from && p.0 <= to;
    let line: Vec<(Timestamp, f64)> = line.iter().filter(finite).copied().collect();
    let readings: Vec<(Timestamp, f64)> = readings.iter().filter(finite).copied().collect();
    let span = (to.as_microsecond() - from.as_microsecond()).max(1) as f64;
    let top = line
        .iter()
        .chain(&readings)
        .map(|p| p.1)
        .chain(limit.filter(|l| l.is_finite()))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.15;
    let x = |t: Timestamp| {
        PAD + (t.as_microsecond() - from.as_microsecond()) as f64 / span * (WIDTH - 2.0 * PAD)
    };
    let y = |v: f64| HEIGHT - PAD - (v / top).clamp(0.0, 1.0) * (HEIGHT - 2.0 * PAD);
    let mut svg = String::with_capacity(1024 + 16 * line.len());
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{t}" data-line-points="{lp}" data-readings="{rd}"><title>{t}</title><rect class="chart-bg" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>"#,
        t = xml(title),
        lp = line.len(),
        rd = readings.len(),
    );
    if let Some(l) = limit.filter(|l| l.is_finite()) {
        let ly = y(l);
        let _ = write!(
            svg,
            r#"<line class="chart-limit" x1="{PAD}" x2="{x2}" y1="{ly:.1}" y2="{ly:.1}"/><text class="chart-label" x="{x2}" y="{ty:.1}" text-anchor="end">limit {l}</text>"#,
            x2 = WIDTH - PAD,
            ty = (ly - 3.0).max(10.0),
        );
    }
    let joined = if line.is_empty() { &readings } else { &line };
    if joined.len() > 1 {
        let path: Vec<String> = joined
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="chart-line" points="{}"/>"#,
            path.join(" ")
        );
    }
    for (t, v) in &readings {
        let over = limit.is_some_and(|l| *v > l);
        let _ = write!(
            svg,
            r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{v} at {t}</title></circle>"#,
            if over { "chart-dot over" } else { "chart-dot" },
            x(*t),
            y(*v),
        );
    }
    if line.is_empty() && readings.is_empty() {
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
        let svg = trigger_chart(
            "error<rate>",
            &[],
            &[(t0, 0.01), (t1, 0.2)],
            Some(0.05),
            t0,
            t2,
        );
        assert!(svg.contains("error&lt;rate&gt;"), "{svg}");
        assert_eq!(svg.matches("chart-dot over").count(), 1, "{svg}");
        assert!(svg.contains("chart-limit"));
        // Readings alone are joined into a line.
        assert!(svg.contains("<polyline"));
        assert!(svg.contains(r#"data-line-points="0" data-readings="2""#));
        let empty = trigger_chart("x", &[], &[], None, t0, t2);
        assert!(empty.contains("no readings"));
    }

    #[test]
    fn prometheus_values_are_the_line_and_the_guard_readings_the_dots() {
        let t0: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let at = |m: i64| t0 + jiff::SignedDuration::from_mins(m);
        let line: Vec<(Timestamp, f64)> = (0..=60).map(|m| (at(m), m as f64 / 100.0)).collect();
        let mut with_gaps = line.clone();
        // NaN (no series had a value) and points outside the window are not drawn.
        with_gaps.push((at(61), f64::NAN));
        with_gaps.push((at(-5), 0.3));
        let svg = trigger_chart(
            "p95",
            &with_gaps,
            &[(at(30), 0.9)],
            Some(0.5),
            at(0),
            at(60),
        );
        assert!(
            svg.contains(r#"data-line-points="61" data-readings="1""#),
            "{svg}"
        );
        let points = svg
            .split("class=\"chart-line\" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 61);
        assert!(!svg.contains("NaN"));
        assert_eq!(svg.matches("chart-dot over").count(), 1);
    }
}

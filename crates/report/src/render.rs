//! Renderings of a report: JSON (the file `report verify` reads), Markdown, HTML with
//! server-rendered SVG charts, CSV and XLSX (the population, one row per production deployment).

use askama::Template;

use crate::facts::Deployment;
use crate::metrics::{Metric, category_name};
use crate::{Report, ReportError, ReportKind};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Pretty JSON.
    Json,
    /// Markdown.
    Markdown,
    /// HTML with SVG charts.
    Html,
    /// CSV of the population.
    Csv,
    /// XLSX: metrics and population sheets.
    Xlsx,
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "json" => Format::Json,
            "markdown" | "md" => Format::Markdown,
            "html" => Format::Html,
            "csv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            other => {
                return Err(ReportError::Render(format!(
                    "unknown format `{other}` (json, markdown, html, csv, xlsx)"
                )));
            }
        })
    }
}

impl Format {
    /// MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// Render `report` in `format`.
pub fn render(report: &Report, format: Format) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Json => serde_json::to_vec_pretty(report)
            .map(|mut v| {
                v.push(b'\n');
                v
            })
            .map_err(|e| ReportError::Render(e.to_string())),
        Format::Markdown => Ok(markdown(report).into_bytes()),
        Format::Html => html(report).map(String::into_bytes),
        Format::Csv => csv(report),
        Format::Xlsx => xlsx(report),
    }
}

fn title(r: &Report) -> String {
    match r.kind {
        ReportKind::Monthly => format!("Monthly change-control audit report {}", r.period),
        ReportKind::Quarterly => format!("Quarterly change-control review {}", r.period),
    }
}

fn value(m: &Metric) -> String {
    match m.value {
        None => "n/a".into(),
        Some(v) if m.unit == "count" => format!("{v}"),
        Some(v) => format!("{v:.2} {}", m.unit),
    }
}

fn status(m: &Metric) -> (&'static str, &'static str) {
    match (&m.target, m.missed) {
        (None, _) => ("", ""),
        (Some(_), true) => ("missed", "MISSED"),
        (Some(_), false) => ("met", "met"),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Columns of the population (CSV, XLSX, HTML).
pub const CHANGE_COLUMNS: [&str; 32] = [
    "change_id",
    "category",
    "repository",
    "commit_sha",
    "artifact_version",
    "environment",
    "changed_files",
    "deployer",
    "approvers",
    "deployed_at_utc",
    "finished_at_utc",
    "duration_s",
    "pr_link",
    "ticket",
    "incident",
    "outcome",
    "rolled_back_at_utc",
    "error_rate",
    "latency_impact",
    "error_rate_before",
    "error_rate_after",
    "latency_p95_before_ms",
    "latency_p95_after_ms",
    "emergency",
    "security_patch",
    "exception",
    "decision",
    "approval_bypass",
    "window_violation",
    "window_override",
    "window_delay_s",
    "log_position",
];

/// The HTML shows the first columns (up to the outcome); CSV and XLSX have them all.
const HTML_COLUMNS: usize = 16;

/// One population row, as text cells in [`CHANGE_COLUMNS`] order.
pub fn change_row(d: &Deployment) -> Vec<String> {
    let approvers = d
        .approvals
        .iter()
        .map(|a| format!("{} ({}) {}", a.person, a.role, a.at))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        d.change_id.clone(),
        d.category
            .map(|c| format!("{c} {}", category_name(c)))
            .unwrap_or_default(),
        opt(&d.repository),
        opt(&d.commit),
        opt(&d.artifact_version),
        opt(&d.environment),
        d.changed_files.join(" "),
        d.deployer.clone(),
        approvers,
        d.started_at.to_string(),
        opt(&d.finished_at),
        opt(&d.duration_s),
        opt(&d.pr_link),
        opt(&d.ticket),
        opt(&d.incident),
        d.outcome.as_str().into(),
        opt(&d.rolled_back_at),
        opt(&d.error_rate),
        opt(&d.latency_impact),
        opt(&d.error_rate_before),
        opt(&d.error_rate_after),
        opt(&d.latency_before_ms),
        opt(&d.latency_after_ms),
        d.emergency.to_string(),
        d.security_patch.to_string(),
        opt(&d.exception),
        format!("{:?}", d.decision).to_lowercase(),
        opt(&d.bypass),
        d.window_violation.to_string(),
        opt(&d.window_override),
        opt(&d.window_delay_s),
        d.seq.to_string(),
    ]
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
}

fn metric_rows(r: &Report) -> Vec<Vec<String>> {
    r.body
        .metrics
        .iter()
        .map(|m| {
            vec![
                m.label.clone(),
                value(m),
                m.target.clone().unwrap_or_default(),
                status(m).1.to_string(),
                m.basis.clone(),
                m.reviewer.clone(),
            ]
        })
        .collect()
}

fn category_rows(r: &Report) -> Vec<Vec<String>> {
    r.body
        .by_category
        .iter()
        .map(|c| {
            vec![
                format!("{} {}", c.category, c.name),
                c.deployments.to_string(),
                c.rollbacks.to_string(),
                c.rollback_rate_pct
                    .map(|v| format!("{v:.2} %"))
                    .unwrap_or_else(|| "n/a".into()),
                c.followed_by_incident.to_string(),
            ]
        })
        .collect()
}

type Section = (String, Vec<String>, Vec<Vec<String>>);

fn hours(v: Option<f64>) -> String {
    v.map(|h| format!("{h:.2} h"))
        .unwrap_or_else(|| "n/a".into())
}

fn sections(r: &Report) -> Vec<Section> {
    let b = &r.body;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut s: Vec<Section> = vec![(
        "Findings".into(),
        vec!["Finding".into(), "Changes".into()],
        vec![
            vec!["Emergency changes".into(), list(&b.emergency_changes)],
            vec!["Security patches".into(), list(&b.security_patches)],
            vec![
                "Approval bypasses".into(),
                if b.approval_bypasses.is_empty() {
                    "none".into()
                } else {
                    b.approval_bypasses
                        .iter()
                        .map(|(c, code)| format!("{c} ({code})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ],
            vec!["Window violations".into(), list(&b.window_violations)],
        ],
    )];
    if let Some(q) = &b.quarterly {
        let lat = |rows: &[crate::metrics::LatencyRow]| {
            rows.iter()
                .map(|l| {
                    vec![
                        l.role.clone(),
                        l.person.clone(),
                        l.approvals.to_string(),
                        format!("{:.2} h", l.p50_h),
                        format!("{:.2} h", l.p90_h),
                    ]
                })
                .collect::<Vec<_>>()
        };
        let head = || {
            ["Role", "Person", "Approvals", "p50", "p90"]
                .map(String::from)
                .to_vec()
        };
        s.push((
            "Approval bottlenecks: submission to approval, per role".into(),
            head(),
            lat(&q.approval_by_role),
        ));
        s.push((
            "Approval bottlenecks: per role and person".into(),
            head(),
            lat(&q.approval_by_person),
        ));
        s.push((
            "Change-window utilisation".into(),
            vec!["Measure".into(), "Value".into()],
            vec![
                vec![
                    "Gate decisions denied by a closed window".into(),
                    q.window_denials.to_string(),
                ],
                vec![
                    "Deployments delayed by a window".into(),
                    q.window_delayed.to_string(),
                ],
                vec!["Delay p50".into(), hours(q.window_delay_p50_h)],
                vec!["Delay p90".into(), hours(q.window_delay_p90_h)],
                vec!["Longest delay".into(), hours(q.window_delay_max_h)],
                vec![
                    "Busiest slots (UTC)".into(),
                    q.window_slots
                        .iter()
                        .take(8)
                        .map(|s| format!("{} ×{}", s.slot, s.deployments))
                        .collect::<Vec<_>>()
                        .join(", "),
                ],
            ],
        ));
        let mut em: Vec<Vec<String>> = q
            .emergencies_by_month
            .iter()
            .map(|(m, n)| vec![m.clone(), n.to_string()])
            .collect();
        em.push(vec![
            "previous quarter".into(),
            q.emergencies_previous_quarter.to_string(),
        ]);
        em.push(vec!["trend".into(), q.emergency_trend.clone()]);
        s.push((
            "Emergency change frequency".into(),
            vec!["Month".into(), "Emergencies declared".into()],
            em,
        ));
    }
    s
}

fn signoff_rows(r: &Report) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = r
        .signoffs
        .signed
        .iter()
        .map(|s| vec![s.role.clone(), s.person.clone(), s.at.to_string()])
        .collect();
    for m in &r.signoffs.missing {
        rows.push(vec![m.clone(), "MISSING".into(), String::new()]);
    }
    rows
}

fn proof_rows(r: &Report) -> Vec<(String, String)> {
    let Some(p) = &r.proof else {
        return vec![("checkpoint".into(), "none".into())];
    };
    let mut v = vec![
        ("origin".into(), p.origin.clone()),
        (
            "checkpoint".into(),
            format!("size {} root {}", p.checkpoint.size, p.checkpoint.root),
        ),
        (
            "period end".into(),
            format!("size {} root {}", p.period_end.size, p.period_end.root),
        ),
    ];
    if let Some(prev) = &p.previous {
        v.push((
            "previous report".into(),
            format!("size {} root {} ({})", prev.size, prev.root, prev.note),
        ));
    }
    if let Some(c) = &p.consistency {
        v.push((
            "consistency proof".into(),
            format!(
                "{} → {}: {} hash(es)",
                c.old_size,
                c.new_size,
                c.proof.len()
            ),
        ));
    }
    v.push(("verifier key".into(), p.verifier_key.clone()));
    v
}

/// Markdown rendering.
pub fn markdown(r: &Report) -> String {
    let mut out = format!("# {}\n\n", title(r));
    out.push_str(&format!(
        "Period {} to {} (UTC, end exclusive). Generated {}. Digest `{}`.\n\n## Metrics\n\n",
        r.body.from, r.body.to, r.generated_at, r.digest
    ));
    md_table(
        &mut out,
        &["Metric", "Value", "Target", "Status", "Basis", "Reviewer"],
        &metric_rows(r),
    );
    out.push_str("## By category\n\n");
    md_table(
        &mut out,
        &[
            "Category",
            "Deployments",
            "Rollbacks",
            "Rollback rate",
            "Followed by an incident",
        ],
        &category_rows(r),
    );
    for (t, h, rows) in sections(r) {
        out.push_str(&format!("## {t}\n\n"));
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        md_table(&mut out, &h, &rows);
    }
    out.push_str("## Sign-off\n\n");
    md_table(&mut out, &["Role", "Signed by", "At"], &signoff_rows(r));
    out.push_str("## Proof of completeness\n\n");
    let rows: Vec<Vec<String>> = proof_rows(r)
        .into_iter()
        .map(|(k, v)| vec![k, format!("`{v}`")])
        .collect();
    md_table(&mut out, &["", ""], &rows);
    out.push_str(&format!(
        "## Population ({} production deployment(s))\n\n",
        r.body.changes.len()
    ));
    let rows: Vec<Vec<String>> = r
        .body
        .changes
        .iter()
        .map(|d| {
            let c = change_row(d);
            vec![
                c[0].clone(),
                c[1].clone(),
                c[3].chars().take(12).collect(),
                c[6].clone(),
                c[8].clone(),
                c[14].clone(),
                d.approvals.len().to_string(),
                c[22].clone(),
            ]
        })
        .collect();
    md_table(
        &mut out,
        &[
            "Change",
            "Category",
            "Commit",
            "Deployer",
            "Deployed at",
            "Outcome",
            "Approvals",
            "Bypass",
        ],
        &rows,
    );
    out
}

/// A horizontal bar chart as an SVG element (no script, no external resource).
pub fn bar_chart(title: &str, bars: &[(String, f64)], colour: &str) -> String {
    let w = 420.0;
    let row = 26.0;
    let left = 130.0;
    let h = 40.0 + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1.0);
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-family="DejaVu Sans, Arial, sans-serif" font-size="14" font-weight="bold">{t}</text>"#,
        t = esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let bw = (w - left - 50.0) * v / max;
        s.push_str(&format!(
            r#"<text x="10" y="{ty}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">{l}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="18" fill="{colour}"/><text x="{tx:.1}" y="{ty}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">{v}</text>"#,
            ty = y + 13.0,
            l = esc(label),
            tx = left + bw + 5.0,
        ));
    }
    s.push_str("</svg>");
    s
}

/// The report's charts (deployments and rollbacks by category; emergencies by month).
pub fn charts(r: &Report) -> Vec<String> {
    let b = &r.body;
    let mut v = vec![
        bar_chart(
            "Deployments by category",
            &b.by_category
                .iter()
                .map(|c| (format!("{} {}", c.category, c.name), c.deployments as f64))
                .collect::<Vec<_>>(),
            "#3b6fb6",
        ),
        bar_chart(
            "Rollbacks by category",
            &b.by_category
                .iter()
                .map(|c| (format!("{} {}", c.category, c.name), c.rollbacks as f64))
                .collect::<Vec<_>>(),
            "#c0392b",
        ),
    ];
    if let Some(q) = &b.quarterly {
        let mut bars: Vec<(String, f64)> = vec![(
            "previous quarter".into(),
            q.emergencies_previous_quarter as f64,
        )];
        bars.extend(
            q.emergencies_by_month
                .iter()
                .map(|(m, n)| (m.clone(), *n as f64)),
        );
        v.push(bar_chart("Emergency declarations", &bars, "#d68910"));
    }
    v
}

#[derive(Template)]
#[template(path = "report.html")]
struct HtmlReport {
    title: String,
    from: String,
    to: String,
    generated_at: String,
    digest: String,
    metrics: Vec<(String, String, String, String, String, String, String)>,
    charts: String,
    categories: Vec<Vec<String>>,
    sections: Vec<Section>,
    signoffs: Vec<(String, String, String)>,
    proof: Vec<(String, String)>,
    change_header: Vec<&'static str>,
    changes: Vec<Vec<String>>,
}

/// HTML rendering (self-contained: inline CSS and SVG).
pub fn html(r: &Report) -> Result<String, ReportError> {
    let t = HtmlReport {
        title: title(r),
        from: r.body.from.to_string(),
        to: r.body.to.to_string(),
        generated_at: r.generated_at.to_string(),
        digest: r.digest.clone(),
        metrics: r
            .body
            .metrics
            .iter()
            .map(|m| {
                let (class, st) = status(m);
                (
                    m.label.clone(),
                    value(m),
                    m.target.clone().unwrap_or_default(),
                    class.to_string(),
                    st.to_string(),
                    m.basis.clone(),
                    m.reviewer.clone(),
                )
            })
            .collect(),
        charts: charts(r).join("\n"),
        categories: category_rows(r),
        sections: sections(r),
        signoffs: signoff_rows(r)
            .into_iter()
            .map(|v| (v[0].clone(), v[1].clone(), v[2].clone()))
            .collect(),
        proof: proof_rows(r),
        change_header: CHANGE_COLUMNS[..HTML_COLUMNS].to_vec(),
        changes: r
            .body
            .changes
            .iter()
            .map(|d| change_row(d).into_iter().take(HTML_COLUMNS).collect())
            .collect(),
    };
    t.render().map_err(|e| ReportError::Render(e.to_string()))
}

/// CSV of the population: a header and one row per production deployment.
pub fn csv(r: &Report) -> Result<Vec<u8>, ReportError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let err = |e: ::csv::Error| ReportError::Render(e.to_string());
    w.write_record(CHANGE_COLUMNS).map_err(err)?;
    for d in &r.body.changes {
        w.write_record(change_row(d)).map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| ReportError::Render(e.to_string()))
}

/// XLSX workbook: sheet `Metrics` (with targets and missed flags) and sheet `Population`.
pub fn xlsx(r: &Report) -> Result<Vec<u8>, ReportError> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| ReportError::Render(e.to_string());
    let mut wb = Workbook::new();
    let bold = XFormat::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name("Metrics").map_err(err)?;
    ws.write_string(0, 0, title(r)).map_err(err)?;
    ws.write_string(1, 0, format!("digest {}", r.digest))
        .map_err(err)?;
    for (c, h) in ["id", "metric", "value", "unit", "target", "status", "basis"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(3, c as u16, *h, &bold)
            .map_err(err)?;
    }
    for (i, m) in r.body.metrics.iter().enumerate() {
        let row = 4 + i as u32;
        ws.write_string(row, 0, &m.id).map_err(err)?;
        ws.write_string(row, 1, &m.label).map_err(err)?;
        match m.value {
            Some(v) => ws.write_number(row, 2, v).map_err(err)?,
            None => ws.write_string(row, 2, "n/a").map_err(err)?,
        };
        ws.write_string(row, 3, &m.unit).map_err(err)?;
        ws.write_string(row, 4, m.target.clone().unwrap_or_default())
            .map_err(err)?;
        ws.write_string(row, 5, status(m).1).map_err(err)?;
        ws.write_string(row, 6, &m.basis).map_err(err)?;
    }
    ws.set_column_width(1, 48).map_err(err)?;
    let ws = wb.add_worksheet();
    ws.set_name("Population").map_err(err)?;
    for (c, h) in CHANGE_COLUMNS.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)
            .map_err(err)?;
    }
    for (i, d) in r.body.changes.iter().enumerate() {
        for (c, cell) in change_row(d).into_iter().enumerate() {
            ws.write_string(1 + i as u32, c as u16, cell).map_err(err)?;
        }
    }
    wb.save_to_buffer().map_err(err)
}

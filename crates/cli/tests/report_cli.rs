//! `changegate report …` end to end on a SQLite log seeded with a year of history
//! (crates/report/tests/history): monthly and quarterly reports in every format, `report
//! verify` against `audit export --format jsonl` (passes honest, exit 1 with an event dropped or
//! altered), the HTML rendered in headless Chromium (screenshot and PDF checked), the XLSX read
//! back with calamine.

#[path = "../../report/tests/history/mod.rs"]
mod history;

use std::path::Path;

use assert_cmd::Command;
use changegate_store::{Store, StoreConfig};
use predicates::prelude::*;

fn cg(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env("CHANGEGATE_DATA", dir)
        .env_remove("CHANGEGATE_DATABASE_URL")
        .env_remove("CHANGEGATE_POLICY");
    c
}

fn seed(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(dir)).await.unwrap();
        let h = history::generate(41, 2);
        for chunk in h.events.chunks(500) {
            let mut tx = store.begin().await.unwrap();
            for (at, ev) in chunk {
                tx.append_audit_at(ev.clone(), *at).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        store.close().await;
    });
}

fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.matches("/Type /Page").count() - text.matches("/Type /Pages").count()
        + text.matches("/Type/Page").count()
        - text.matches("/Type/Pages").count()
}

#[test]
fn monthly_report_formats_verify_and_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(d);
    let json = d.join("r.json");
    cg(d)
        .args([
            "report", "monthly", "--month", "2026-11", "--format", "json", "-o",
        ])
        .arg(&json)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["period"], "2026-11");
    assert!(r["proof"]["checkpoint"]["size"].as_u64().unwrap() > 100);
    assert_eq!(
        r["signoffs"]["missing"],
        serde_json::json!(["engineering-manager", "security-lead", "compliance-officer"])
    );
    let export = d.join("e.jsonl");
    cg(d)
        .args(["audit", "export", "--format", "jsonl", "-o"])
        .arg(&export)
        .assert()
        .success();
    let key = String::from_utf8(
        cg(d)
            .args(["audit", "key"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    cg(d)
        .args(["report", "verify"])
        .arg(&json)
        .arg("--events")
        .arg(&export)
        .args(["--key", key.trim()])
        .assert()
        .success()
        .stdout(predicate::str::contains("exactly the log's population"));
    // One event dropped: exit 1.
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("deployment.start") && l.contains("2026-11-1"))
        .unwrap();
    lines.remove(i);
    let dropped = d.join("dropped.jsonl");
    std::fs::write(&dropped, lines.join("\n")).unwrap();
    cg(d)
        .args(["report", "verify"])
        .arg(&json)
        .arg("--events")
        .arg(&dropped)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("report-export-incomplete"));
    // One event altered: exit 1.
    let altered = d.join("altered.jsonl");
    let i = text
        .lines()
        .position(|l| l.contains("deployment.finish") && l.contains("2026-11-1"))
        .unwrap();
    let changed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(j, l)| {
            if j == i {
                l.replace("\"complete\"", "\"abort\"")
                    .replace("deployment.finish", "rollback.triggered")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&altered, changed.join("\n")).unwrap();
    cg(d)
        .args(["report", "verify"])
        .arg(&json)
        .arg("--events")
        .arg(&altered)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("report-export-record-altered"));
    // A bad period is a usage error naming the input.
    cg(d)
        .args(["report", "monthly", "--month", "2026-13"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("report-period-invalid"));

    // Markdown, CSV, XLSX.
    cg(d)
        .args(["report", "monthly", "--month", "2026-11"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| Rollback rate |"));
    let csv = cg(d)
        .args(["report", "monthly", "--month", "2026-11", "--format", "csv"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let deployments = r["body"]["changes"].as_array().unwrap().len();
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count(),
        1 + deployments
    );
    let xlsx = d.join("r.xlsx");
    cg(d)
        .args([
            "report",
            "quarterly",
            "--quarter",
            "2026-Q4",
            "--format",
            "xlsx",
            "-o",
        ])
        .arg(&xlsx)
        .assert()
        .success();
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let pop = wb.worksheet_range("Population").unwrap();
    assert!(
        pop.height() > deployments,
        "a quarter has more deployments than a month"
    );
    assert_eq!(pop.get((0, 0)).unwrap().to_string(), "change_id");
    cg(d)
        .args([
            "report", "monthly", "--month", "2026-11", "--format", "xlsx",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--output"));

    // HTML in headless Chromium: a screenshot and a PDF.
    let html = d.join("r.html");
    cg(d)
        .args([
            "report",
            "quarterly",
            "--quarter",
            "2026-Q4",
            "--format",
            "html",
            "-o",
        ])
        .arg(&html)
        .assert()
        .success();
    let png = d.join("r.png");
    let pdf = d.join("r.pdf");
    let profile = d.join("chromium-profile");
    let url = format!("file://{}", html.display());
    for arg in [
        format!("--screenshot={}", png.display()),
        format!("--print-to-pdf={}", pdf.display()),
    ] {
        let out = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--window-size=1280,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(&arg)
            .arg(&url)
            .output()
            .expect("chromium runs (scripts/services.sh installs it)");
        assert!(
            out.status.success(),
            "chromium {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png_bytes.len() > 20_000,
        "screenshot is {} bytes",
        png_bytes.len()
    );
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF-"));
    assert!(pdf_bytes.len() > 20_000, "pdf is {} bytes", pdf_bytes.len());
    let pages = pdf_pages(&pdf_bytes);
    assert!(pages >= 2, "a quarter's population spans pages: {pages}");
    if std::env::var_os("CHANGEGATE_WRITE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::copy(&png, docs.join("report-quarterly.png")).unwrap();
        let h = std::fs::read_to_string(&html).unwrap();
        let s = h.find("<svg").unwrap();
        let e = h[s..].find("</svg>").unwrap() + s + 6;
        std::fs::write(docs.join("report-deployments-by-category.svg"), &h[s..e]).unwrap();
    }
}

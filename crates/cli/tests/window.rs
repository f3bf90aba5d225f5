//! `changegate window ...`: exit codes, JSON shape, zones, and the month views.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY").env("NO_COLOR", "1");
    c
}

fn json(args: &[&str]) -> (i32, Value) {
    let out = cg().args(args).args(["--format", "json"]).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn allowed_exits_0_and_names_the_zone() {
    cg().args([
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T10:00:00Z",
    ])
    .assert()
    .code(0)
    .stdout(predicate::str::contains("ALLOWED"))
    .stdout(predicate::str::contains("window-preferred"))
    .stdout(predicate::str::contains("UTC"));
}

#[test]
fn weekend_is_denied_with_reasons_and_next_slot() {
    let (code, v) = json(&[
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-07T12:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["allowed"], false);
    assert!(codes(&v).contains(&"freeze-weekend".to_string()));
    assert_eq!(v["next_slot"], "2026-03-09T10:00:00Z");
    assert_eq!(v["zone"], "UTC");
    assert_eq!(v["duration"], "30m");
}

#[test]
fn local_time_with_tz_and_output_in_that_zone() {
    // 11:00 in Berlin (CET) is 10:00 UTC: inside the UTC window.
    let (code, v) = json(&[
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T11:00",
        "--tz",
        "Europe/Berlin",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["start"], "2026-03-03T10:00:00Z");
    assert_eq!(v["start_local"], "2026-03-03T11:00:00+01:00[Europe/Berlin]");
    assert_eq!(v["zone"], "Europe/Berlin");
}

#[test]
fn exception_needs_every_approver() {
    let base = [
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-07T12:00:00Z",
        "--exception",
        "security-patch",
    ];
    let (code, v) = json(
        &[
            &base[..],
            &["--exception-approved-by", "backend-lead,sre-lead"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{v}");
    assert!(codes(&v).contains(&"exception-applied".to_string()));
    let (code, v) = json(&[&base[..], &["--exception-approved-by", "backend-lead"]].concat());
    assert_eq!(code, 1);
    assert!(codes(&v).contains(&"exception-missing-approval".to_string()));
}

#[test]
fn incident_freeze_and_remediation() {
    let base = [
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T12:00:00Z",
        "--incident-active",
        "P1",
    ];
    let (code, v) = json(&base);
    assert_eq!(code, 1);
    assert!(codes(&v).contains(&"freeze-incident".to_string()));
    assert_eq!(v["next_slot"], Value::Null);
    let (code, v) = json(&[&base[..], &["--remediation"]].concat());
    assert_eq!(code, 0);
    assert!(codes(&v).contains(&"incident-remediation".to_string()));
}

#[test]
fn maintenance_announcement_and_fallback() {
    let (code, v) = json(&[
        "window",
        "check",
        "--category",
        "3",
        "--at",
        "2026-04-07T02:00:00Z",
    ]);
    assert_eq!(code, 0);
    assert!(codes(&v).contains(&"maintenance-announcement-unchecked".to_string()));
    let (code, v) = json(&[
        "window",
        "check",
        "--category",
        "3",
        "--at",
        "2026-04-07T02:00:00Z",
        "--announced-at",
        "2026-03-30T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(codes(&v).contains(&"maintenance-not-announced".to_string()));
    let (code, _) = json(&[
        "window",
        "check",
        "--category",
        "3",
        "--at",
        "2026-04-14T02:00:00Z",
        "--fallback",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn emergency_overrides_everything() {
    let (code, v) = json(&[
        "window",
        "check",
        "--category",
        "4",
        "--at",
        "2026-12-26T03:00:00Z",
        "--incident-active",
        "P0",
    ]);
    assert_eq!(code, 0);
    assert!(codes(&v).contains(&"emergency-override".to_string()));
}

#[test]
fn bad_input_exits_2() {
    for args in [
        &[
            "window",
            "check",
            "--category",
            "2",
            "--at",
            "yesterday-ish",
        ][..],
        &[
            "window",
            "check",
            "--category",
            "9",
            "--at",
            "2026-03-03T10:00:00Z",
        ],
        &[
            "window",
            "check",
            "--category",
            "2",
            "--at",
            "2026-03-03T10:00:00Z",
            "--duration",
            "soon",
        ],
        &[
            "window",
            "check",
            "--category",
            "2",
            "--at",
            "2026-03-03T10:00",
            "--tz",
            "Mars/Olympus",
        ],
        &[
            "window",
            "check",
            "--category",
            "2",
            "--at",
            "2026-03-29T02:30",
            "--tz",
            "Europe/Berlin",
        ],
        &["window", "calendar", "--month", "2026-13"],
        &["window", "calendar", "--month", "march"],
    ] {
        cg().args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("error"));
    }
}

#[test]
fn next_finds_the_earliest_slot() {
    let (code, v) = json(&[
        "window",
        "next",
        "--category",
        "2",
        "--from",
        "2026-03-06T13:31:00Z",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["next_slot"], "2026-03-09T10:00:00Z");
    let (code, v) = json(&[
        "window",
        "next",
        "--category",
        "3",
        "--from",
        "2026-03-04T00:00:00Z",
        "--duration",
        "4h",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["next_slot"], "2026-04-07T02:00:00Z");
    let (code, v) = json(&[
        "window",
        "next",
        "--category",
        "3",
        "--from",
        "2026-03-04T00:00:00Z",
        "--duration",
        "5h",
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["found"], false);
    cg().args([
        "window",
        "next",
        "--category",
        "2",
        "--from",
        "2026-12-24T18:00:00Z",
    ])
    .assert()
    .code(0)
    .stdout(predicate::str::contains("Fri 2027-01-01 10:00 +00:00 UTC"));
}

#[test]
fn policy_file_moves_the_windows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "[windows]\ntimezone = \"Europe/Berlin\"\n").unwrap();
    // 10:00 UTC is 11:00 in Berlin, inside; 09:30 UTC is 10:30 CET, also inside; 08:30 UTC is not.
    let p = file.to_str().unwrap();
    cg().args([
        "--policy",
        p,
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T09:30:00Z",
    ])
    .assert()
    .code(0);
    cg().args([
        "--policy",
        p,
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T08:30:00Z",
    ])
    .assert()
    .code(1);
}

#[test]
fn calendar_text_shows_windows_freezes_and_maintenance() {
    cg().args(["window", "calendar", "--month", "2026-03", "--category", "2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Change windows, March 2026 (UTC), category 2"))
        .stdout(predicate::str::contains(
            "Tue 03    ....MMMMMMMM........************####............  allowed 10:00-18:00, preferred 10:00-16:00, maintenance 02:00-06:00",
        ))
        .stdout(predicate::str::contains("Sat 07    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx  freeze-weekend all day"))
        .stdout(predicate::str::contains("freeze-incident"));
    cg().args(["window", "calendar", "--month", "2026-12"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("freeze-holiday all day"));
}

#[test]
fn calendar_html_and_svg_are_well_formed() {
    let out = cg()
        .args([
            "window", "calendar", "--month", "2026-03", "--format", "html",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<tr>").count(), 32, "header + 31 days");
    let out = cg()
        .args([
            "window", "calendar", "--month", "2026-03", "--format", "svg",
        ])
        .output()
        .unwrap();
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("freeze-weekend all day"));
    let (_, v) = json(&["window", "calendar", "--month", "2026-03"]);
    assert_eq!(v["days"].as_array().unwrap().len(), 31);
}

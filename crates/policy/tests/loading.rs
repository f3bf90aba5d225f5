//! Loader behaviour: round trip, partial overrides, located errors, no panics on any input.

use changegate_policy::{DEFAULT_POLICY_TOML, DiagCode, Diagnostic, Severity, load, load_default};
use proptest::prelude::*;

fn diagnostics(name: &str) -> Vec<Diagnostic> {
    let path = format!("{}/tests/invalid/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let err = load(&text, &format!("tests/invalid/{name}")).expect_err("must be invalid");
    err.diagnostics().to_vec()
}

fn render_all(name: &str) -> String {
    diagnostics(name)
        .iter()
        .map(|d| d.render())
        .collect::<Vec<_>>()
        .join("\n")
}

macro_rules! snapshot_invalid {
    ($($test:ident => $file:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(render_all($file));
        }
    )*};
}

snapshot_invalid! {
    invalid_syntax => "syntax.toml",
    invalid_unknown_key => "unknown-key.toml",
    invalid_unknown_role => "unknown-role.toml",
    invalid_facet_mapped_twice => "facet-twice.toml",
    invalid_unknown_facet => "unknown-facet.toml",
    invalid_window_end_before_start => "window-end-before-start.toml",
    invalid_bad_duration => "bad-duration.toml",
    invalid_bad_timezone => "bad-timezone.toml",
    invalid_bad_time => "bad-time.toml",
    invalid_many_errors => "many-errors.toml",
    invalid_standalone_incomplete => "standalone-incomplete.toml",
    invalid_missing_key => "missing-key.toml",
    invalid_wrong_type => "wrong-type.toml",
    invalid_unknown_value => "unknown-value.toml",
    invalid_bad_date => "bad-date.toml",
    invalid_many_type_errors => "many-type-errors.toml",
    invalid_retention_below_minimum => "retention-below-minimum.toml",
    invalid_retention_acknowledgement_mismatch => "retention-acknowledgement-mismatch.toml",
    invalid_emergency_eligibility => "emergency-eligibility.toml",
    invalid_exception_plan_unknown => "exception-plan-unknown.toml",
}

/// Each code of the raw pass has a file that shows it, first, with a location and help (the
/// snapshots above show the rendering).
#[test]
fn each_raw_pass_code_has_a_file_that_shows_it() {
    for (code, file) in [
        (DiagCode::UnknownKey, "unknown-key.toml"),
        (DiagCode::MissingKey, "missing-key.toml"),
        (DiagCode::WrongType, "wrong-type.toml"),
        (DiagCode::UnknownValue, "unknown-value.toml"),
        (DiagCode::BadDuration, "bad-duration.toml"),
        (DiagCode::BadTime, "bad-time.toml"),
        (DiagCode::BadDate, "bad-date.toml"),
        (DiagCode::BadTimezone, "bad-timezone.toml"),
        (DiagCode::TomlSyntax, "syntax.toml"),
    ] {
        let d = &diagnostics(file)[0];
        assert_eq!(d.code, code, "{file}: {}", d.render());
        let loc = d.location.as_ref().expect("located");
        assert!(loc.file.ends_with(file) && loc.line >= 1 && loc.column >= 1);
        assert!(d.help.is_some(), "{file}");
    }
}

/// Type errors in different tables are all reported in one run, in file order.
#[test]
fn type_errors_in_several_tables_are_reported_together() {
    let mut got: Vec<(String, usize, &str)> = diagnostics("many-type-errors.toml")
        .iter()
        .map(|d| {
            let loc = d.location.as_ref().unwrap();
            (d.path.clone(), loc.line, d.code.as_str())
        })
        .collect();
    let expected = [
        ("meta.version", 3, "wrong-type"),
        ("roles.backend-lead.holderz", 6, "unknown-key"),
        ("categories.high-risk.level", 9, "wrong-type"),
        ("categories.high-risk.window", 10, "unknown-value"),
        ("windows.timezone", 13, "bad-timezone"),
        ("windows.maintenance.start", 16, "bad-time"),
        ("windows.maintenance.max_duration", 17, "bad-duration"),
        ("freezes.offsite.kind", 20, "unknown-value"),
        ("rollout.plans.fast.steps[0].weight", 24, "wrong-type"),
        ("rollout.plans.fast", 23, "missing-key"),
    ];
    got.sort();
    let mut want: Vec<(String, usize, &str)> = expected
        .iter()
        .map(|(p, l, c)| (p.to_string(), *l, *c))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn did_you_mean_comes_from_the_schema() {
    // The help of the diagnostic at `path`.
    let help = |text: &str, path: &str| {
        let err = load(text, "t.toml").unwrap_err();
        let d = err.diagnostics().iter().find(|d| d.path == path);
        d.and_then(|d| d.help.clone())
            .unwrap_or_else(|| panic!("nothing at {path}: {:#?}", err.diagnostics()))
    };
    let dates = "[freezes.x]\nkind = \"dates\"\nname = \"x\"\nstart = \"2026-01-01\"\nend = \"2026-01-02\"\napplies_to = [2]\n";
    // A top-level table; keys of a tagged enum's variant (one close to a field, one not).
    assert!(help("[windowz]\n", "windowz").contains("did you mean `windows`?"));
    assert!(
        help(&format!("{dates}timezon = \"UTC\"\n"), "freezes.x.timezon")
            .contains("did you mean `timezone`?")
    );
    assert!(
        help(
            &format!("{dates}except_remediation = true\n"),
            "freezes.x.except_remediation"
        )
        .starts_with("remove the key")
    );
    // A unit-enum value, a weekday, a time zone.
    assert!(
        help(
            "[rollback.triggers.error-rate-high]\nmetric = \"error-rat\"\n",
            "rollback.triggers.error-rate-high.metric"
        )
        .contains("did you mean `error-rate`?")
    );
    assert!(
        help(
            "[business_days]\ndays = [\"mon\", \"tues\"]\n",
            "business_days.days[1]"
        )
        .contains("did you mean `tue`?")
    );
    assert!(
        help(
            "[business_days]\ntimezone = \"America/New_Yrok\"\n",
            "business_days.timezone"
        )
        .contains("did you mean `America/New_York`?")
    );
}

#[test]
fn every_error_has_file_line_and_column() {
    let dir = format!("{}/tests/invalid", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let err = load(&text, &path.display().to_string()).expect_err("invalid");
        for d in err
            .diagnostics()
            .iter()
            .filter(|d| d.severity == Severity::Error)
        {
            let loc = d
                .location
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no location for {}", path.display(), d.message));
            assert!(loc.line >= 1 && loc.column >= 1);
            assert!(
                d.help.is_some(),
                "{}: {} has no help",
                path.display(),
                d.code
            );
        }
    }
}

#[test]
fn many_errors_are_reported_together() {
    let path = format!(
        "{}/tests/invalid/many-errors.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let err = load(&std::fs::read_to_string(path).unwrap(), "many-errors.toml").unwrap_err();
    let codes: Vec<&str> = err
        .diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.code.as_str())
        .collect();
    for code in [
        "unknown-role",
        "unknown-plan",
        "unknown-category",
        "freeze-end-before-start",
        "bad-threshold",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn a_cost_threshold_must_be_an_amount() {
    for bad in ["nan", "inf", "-1.0"] {
        let text = format!(
            "[[matrices.infrastructure.rows]]\nchange = \"Cost\"\nfacets = [\"cost-increase\"]\nroles = [\"sre-lead\", \"cfo\"]\ncategory = 2\nthreshold_usd_per_month = {bad}\n"
        );
        let err = load(&text, "cost.toml").unwrap_err();
        let d = err
            .diagnostics()
            .iter()
            .find(|d| d.code == "bad-threshold")
            .unwrap_or_else(|| panic!("{bad}: {:?}", err.diagnostics()));
        assert!(d.path.ends_with("threshold_usd_per_month"), "{}", d.path);
    }
    let ok = "[[matrices.infrastructure.rows]]\nchange = \"Cost\"\nfacets = [\"cost-increase\"]\nroles = [\"sre-lead\", \"cfo\"]\ncategory = 2\nthreshold_usd_per_month = 750.0\n";
    assert!(load(ok, "cost.toml").is_ok());
}

#[test]
fn show_then_load_gives_the_same_policy() {
    let policy = load_default().policy;
    let shown = toml::to_string_pretty(&policy).unwrap();
    let again = load(&shown, "shown.toml").unwrap();
    assert_eq!(again.policy, policy);
    assert!(again.warnings.is_empty());
    // And again through a user file that overrides something.
    let over = load(
        "[roles.backend-lead]\nname = \"Backend Lead\"\nholders = [\"alice\"]\n",
        "o.toml",
    )
    .unwrap();
    let shown = toml::to_string_pretty(&over.policy).unwrap();
    assert_eq!(load(&shown, "shown.toml").unwrap().policy, over.policy);
}

#[test]
fn partial_override_changes_only_what_it_names() {
    let text = r#"
[roles.backend-lead]
holders = ["alice", "team:backend"]

[windows]
timezone = "Europe/Berlin"

[freezes.holiday]
start = "12-20"
"#;
    let over = load(text, "mine.toml").unwrap().policy;
    let base = load_default().policy;
    assert_eq!(
        over.roles["backend-lead"].holders,
        ["alice", "team:backend"]
    );
    assert_eq!(over.roles["backend-lead"].name, "Backend Lead");
    assert_eq!(over.windows.timezone.name(), "Europe/Berlin");
    assert_eq!(over.windows.standard, base.windows.standard);
    match &over.freezes["holiday"] {
        changegate_policy::Freeze::Annual { start, end, .. } => {
            assert_eq!(
                (start.to_string(), end.to_string()),
                ("12-20".into(), "12-31".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(over.matrices, base.matrices);
}

#[test]
fn a_standalone_file_replaces_the_default() {
    let err = load("extends = \"none\"\n", "empty.toml").unwrap_err();
    assert!(err.diagnostics()[0].message.contains("missing field"));
}

#[test]
fn the_json_schema_names_every_top_level_table() {
    let schema: serde_json::Value =
        serde_json::from_str(&changegate_policy::json_schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    let table: toml::Table = toml::from_str(DEFAULT_POLICY_TOML).unwrap();
    for key in table.keys() {
        assert!(props.contains_key(key), "schema lacks {key}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Arbitrary text never panics the loader.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = load(&text, "fuzz.toml");
    }

    /// Mutating the default policy (deleting a span or splicing in a value) never panics, and every
    /// resulting error points into the file.
    #[test]
    fn mutated_default_never_panics(start in 0usize..DEFAULT_POLICY_TOML.len(), len in 0usize..40, insert in "[ -~]{0,12}") {
        let mut text = DEFAULT_POLICY_TOML.to_string();
        let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap();
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap();
        text.replace_range(start..end, &insert);
        if let Err(err) = load(&text, "mutated.toml") {
            for d in err.diagnostics() {
                if let Some(loc) = &d.location {
                    prop_assert!(loc.line >= 1);
                }
            }
        }
    }
}

/// Issue 13: `[audit] retention = "60s"` used to validate. The retention is a floor now: below
/// two years it is an error located at the value, unless acknowledged for exactly that period.
#[test]
fn retention_below_the_compliance_minimum_is_refused_unless_acknowledged() {
    let codes = |d: &[Diagnostic]| -> Vec<DiagCode> { d.iter().map(|d| d.code).collect() };
    let d = diagnostics("retention-below-minimum.toml");
    assert_eq!(codes(&d), [DiagCode::RetentionBelowMinimum]);
    let loc = d[0].location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (3, 13));
    assert_eq!(d[0].path, "audit.retention");
    assert!(d[0].help.as_ref().unwrap().contains("2y"));
    for short in ["1y", "730d", "23mo", "104w"] {
        let err = load(&format!("[audit]\nretention = \"{short}\"\n"), "p.toml").unwrap_err();
        assert_eq!(
            codes(err.diagnostics()),
            [DiagCode::RetentionBelowMinimum],
            "{short}"
        );
    }
    for long in ["2y", "24mo", "731d", "7y"] {
        assert!(
            load(&format!("[audit]\nretention = \"{long}\"\n"), "p.toml").is_ok(),
            "{long}"
        );
    }
    let acked = "[audit]\nretention = \"60s\"\nretention_below_minimum_acknowledged = { retention = \"60s\", by = \"carol\", reason = \"test system\", date = \"2026-11-30\" }\n";
    let policy = load(acked, "p.toml").unwrap().policy;
    let ack = policy.audit.acknowledgement().expect("acknowledged");
    assert_eq!(
        (ack.by.as_str(), ack.date.to_string().as_str()),
        ("carol", "2026-11-30")
    );
    let anonymous = acked.replace("\"carol\"", "\" \"");
    let err = load(&anonymous, "p.toml").unwrap_err();
    assert_eq!(
        err.diagnostics()[0].path,
        "audit.retention_below_minimum_acknowledged.by"
    );
    let d = diagnostics("retention-acknowledgement-mismatch.toml");
    assert_eq!(codes(&d), [DiagCode::RetentionBelowMinimum]);
    assert_eq!(
        d[0].path,
        "audit.retention_below_minimum_acknowledged.retention"
    );
}

#[test]
fn emergency_eligibility_names_known_kinds_and_severities() {
    let d = diagnostics("emergency-eligibility.toml");
    let got: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.code.as_str(), d.path.as_str()))
        .collect();
    for want in [
        ("unknown-incident-kind", "emergency.eligible.typo.kinds[0]"),
        ("unknown-severity", "emergency.eligible.typo.severities[0]"),
        ("eligibility-unrestricted", "emergency.eligible.anything"),
        (
            "bad-threshold",
            "emergency.eligible.critical-vulnerability.min_cvss",
        ),
    ] {
        assert!(got.contains(&want), "{want:?} not in {got:?}");
    }
}

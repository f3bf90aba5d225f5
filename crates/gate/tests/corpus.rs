//! The decision corpus: every `tests/cases/*.toml` file is a scenario — a policy override (merged
//! over the built-in default and `_people.toml`), an initial change state and world, then steps
//! that apply commands at given times and check decisions (format: `changegate_gate::corpus`).
//! One test runs them all, reports every failing case at once, and checks that the corpus as a
//! whole makes every reason code appear and every code that can deny actually deny.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use changegate_gate::Code;
use changegate_gate::corpus::{Case, run};
use changegate_testkit::gate::PEOPLE;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.file_name().unwrap().to_string_lossy().starts_with('_')
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus() {
    let files = cases();
    let mut denying = BTreeSet::new();
    let mut all = BTreeSet::new();
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let result = toml::from_str::<Case>(&text)
            .map_err(|e| format!("parse: {e}"))
            .and_then(|case| {
                run(&case, PEOPLE, |d| {
                    for r in &d.reasons {
                        all.insert(r.code.as_str());
                        if r.denies {
                            denying.insert(r.code.as_str());
                        }
                    }
                })
            });
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    assert!(files.len() >= 10, "corpus has only {} cases", files.len());

    let never_denied: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.denies() != "never" && !denying.contains(c.as_str()))
        .map(|c| c.as_str())
        .collect();
    assert!(
        never_denied.is_empty(),
        "no corpus case denies with: {never_denied:?}"
    );
    let never_seen: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !all.contains(c.as_str()))
        .map(|c| c.as_str())
        .collect();
    assert!(
        never_seen.is_empty(),
        "no corpus case produces: {never_seen:?}"
    );
}

//! Loading, the one entry point that runs every step in order:
//! TOML text → merged table ([`crate::source`] keeps each file's spans) → raw pass over the merged
//! table ([`crate::raw`]: unknown and missing keys, types, scalars, all at once) → typed
//! [`Policy`] (serde) → cross-reference checks ([`crate::validate`]).
//!
//! The dependencies run one way: `load` → `raw`, `validate` → `source`, `diag`.

use crate::diag::{DiagCode, Diagnostic, Severity};
use crate::model::{Extends, Policy};
use crate::source::{Locator, Seg, Source, first_line, location, path_string};
use crate::{raw, validate};

/// The built-in default policy (the seed), as TOML.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../default-policy.toml");
/// The name under which the default policy appears in diagnostics.
pub const DEFAULT_POLICY_NAME: &str = "<built-in default policy>";

/// A policy that loaded, with the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective policy.
    pub policy: Policy,
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
}

/// Why a policy did not load.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The policy has errors; every one found is listed (warnings may follow them).
    #[error("policy {file} is invalid ({} error(s))", .diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid {
        /// File name.
        file: String,
        /// Errors, then warnings.
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// All diagnostics.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Merge `over` into `base`: tables merge recursively, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Load the built-in default policy.
pub fn load_default() -> Loaded {
    load(DEFAULT_POLICY_TOML, DEFAULT_POLICY_NAME).expect("the built-in default policy is valid")
}

/// Load a policy from TOML text. `name` is used in diagnostics (usually the file path).
///
/// Unless the text sets `extends = "none"`, it is merged over the built-in default policy.
pub fn load(text: &str, name: &str) -> Result<Loaded, LoadError> {
    let invalid = |diagnostics| LoadError::Invalid {
        file: name.to_string(),
        diagnostics,
    };
    let user = Source::parse(name, text).map_err(|d| invalid(vec![*d]))?;
    let user_table: toml::Table = toml::from_str(text).map_err(|e| {
        invalid(vec![Diagnostic {
            severity: Severity::Error,
            code: DiagCode::TomlSyntax,
            message: first_line(e.message()).to_string(),
            path: String::new(),
            location: e.span().map(|s| location(name, text, s)),
            help: Some("fix the TOML syntax; see https://toml.io".into()),
        }])
    })?;
    let standalone =
        matches!(user_table.get("extends"), Some(toml::Value::String(s)) if s == "none");
    let mut sources = vec![user];
    let merged = if standalone || name == DEFAULT_POLICY_NAME {
        user_table
    } else {
        let mut base: toml::Table =
            toml::from_str(DEFAULT_POLICY_TOML).expect("default policy parses");
        sources
            .push(Source::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TOML).expect("default parses"));
        merge(&mut base, user_table);
        base
    };
    let locator = Locator::new(sources);

    // Raw pass: every structural and scalar problem at once.
    let raw = raw::check(&merged, standalone, &locator);
    if !raw.is_empty() {
        return Err(invalid(raw));
    }
    let de = toml::Value::Table(merged);
    let mut policy: Policy = match serde_path_to_error::deserialize(de) {
        Ok(p) => p,
        // The raw pass checks what serde checks (a test holds them together), so this is only a
        // safety net: reported, never a panic.
        Err(err) => return Err(invalid(vec![deserialise_error(&err, &locator)])),
    };
    policy.extends = Extends::None;
    let diagnostics = validate::validate(&policy, &locator);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        let mut sorted = diagnostics;
        sorted.sort_by_key(|d| d.severity != Severity::Error);
        return Err(invalid(sorted));
    }
    Ok(Loaded {
        policy,
        warnings: diagnostics,
    })
}

/// A serde error the raw pass did not foresee, located by its path.
fn deserialise_error(
    err: &serde_path_to_error::Error<toml::de::Error>,
    locator: &Locator<'_>,
) -> Diagnostic {
    let path: Vec<Seg> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        })
        .collect();
    let message = err.inner().to_string();
    Diagnostic {
        severity: Severity::Error,
        code: DiagCode::WrongType,
        message: first_line(&message).to_string(),
        path: path_string(&path),
        location: locator
            .locate(&path, false)
            .or_else(|| locator.locate_file_start()),
        help: Some("see `changegate policy schema` for the expected type".into()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Values of every TOML type and of every scalar format the policy uses, right and wrong.
    const VALUES: &[&str] = &[
        "1",
        "-1",
        "300",
        "5000000000",
        "1.5",
        "nan",
        "true",
        "\"x\"",
        "\"\"",
        "\"15m\"",
        "\"2y\"",
        "\"10:00\"",
        "\"24:00\"",
        "\"mon\"",
        "\"MON\"",
        "\"UTC\"",
        "\"2026-01-01\"",
        "\"12-25\"",
        "\"emergency\"",
        "\"<\"",
        "2026-01-01",
        "[]",
        "[1]",
        "[\"a\"]",
        "{}",
        "{ x = 1 }",
    ];

    /// The default policy with one `key = value` line changed: the value replaced, the key
    /// renamed, or the line deleted.
    fn mutate(line: usize, how: usize) -> Option<String> {
        let lines: Vec<&str> = DEFAULT_POLICY_TOML.lines().collect();
        let target = lines[line % lines.len()];
        let (key, _) = target.split_once(" = ")?;
        if key.trim_start().starts_with('#') || key.contains('[') {
            return None;
        }
        let new = match how % (VALUES.len() + 2) {
            0 => String::new(),
            1 => format!("{key}x = 1"),
            n => format!("{key} = {}", VALUES[n - 2]),
        };
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[line % lines.len()] = new;
        Some(out.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

        /// The raw pass rejects exactly what serde rejects: it neither lets through a value that
        /// would stop deserialisation (so the fallback above is never reached), nor rejects one
        /// that serde takes (no valid file refused).
        #[test]
        fn the_raw_pass_and_serde_agree(line in 0usize..2000, how in 0usize..100) {
            let Some(text) = mutate(line, how) else { return Ok(()) };
            let (Ok(source), Ok(table)) = (
                Source::parse("m.toml", &text),
                toml::from_str::<toml::Table>(&text),
            ) else {
                return Ok(());
            };
            let raw = raw::check(&table, true, &Locator::new(vec![source]));
            let typed = toml::Value::Table(table).try_into::<Policy>();
            prop_assert_eq!(
                raw.is_empty(),
                typed.is_ok(),
                "raw: {:?}\nserde: {:?}",
                raw.iter().map(|d| d.render()).collect::<Vec<_>>(),
                typed.err()
            );
        }
    }

    #[test]
    fn the_default_passes_the_raw_pass() {
        let table: toml::Table = toml::from_str(DEFAULT_POLICY_TOML).unwrap();
        let source = Source::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TOML).unwrap();
        assert!(raw::check(&table, true, &Locator::new(vec![source])).is_empty());
    }
}

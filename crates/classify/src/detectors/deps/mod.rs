//! Shared dependency logic for the npm and Cargo detectors: version grading by semver
//! compatibility, license comparison by SPDX expression, and turning version changes into facets.
//!
//! Grading follows compatibility, not the position of the changed number: `0.3 → 0.4` and
//! `0.0.3 → 0.0.4` are breaking (`dep-major`), as Cargo and npm's caret ranges treat them. A
//! version that is not semver (git URL, tag, alias) cannot be graded and counts as major (fail
//! closed).
//!
//! The detectors: [`npm`] (`deps-npm`) and [`cargo`] (`deps-cargo`).

pub mod cargo;
pub mod npm;

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use semver::Version;

use crate::facet::facet;
pub(crate) use crate::parse::lockfile::LockIndex;
use crate::{Evidence, Facet, Side};

/// How big a version change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grade {
    Patch,
    Minor,
    Major,
}

impl Grade {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Grade::Patch => "patch",
            Grade::Minor => "minor",
            Grade::Major => "major",
        }
    }
    fn facet(self) -> FacetCode {
        match self {
            Grade::Patch => FacetCode::DepPatch,
            Grade::Minor => FacetCode::DepMinor,
            Grade::Major => FacetCode::DepMajor,
        }
    }
}

/// A version from a lockfile or the lowest version a manifest range allows (`^4.19` → 4.19.0).
pub(crate) fn lenient_version(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s.split('(').next().unwrap_or(s); // pnpm peer suffix
    let s = s.trim_start_matches(['^', '~', '=', '>', '<', 'v', ' ']);
    let first = s.split([' ', ',', '|']).next().unwrap_or(s);
    if let Ok(v) = Version::parse(first) {
        return Some(v);
    }
    let parts: Vec<&str> = first.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let n = |i: usize| parts.get(i).and_then(|p| p.parse().ok()).unwrap_or(0);
    Some(Version::new(n(0), n(1), n(2)))
}

/// Grade a version change; `None` when either side is not semver.
pub(crate) fn grade(a: &str, b: &str) -> Option<Grade> {
    let (a, b) = (lenient_version(a)?, lenient_version(b)?);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    if lo.major != hi.major {
        return Some(Grade::Major);
    }
    if lo.major == 0 {
        if lo.minor != hi.minor {
            return Some(Grade::Major);
        }
        if lo.minor == 0 && lo.patch != hi.patch {
            return Some(Grade::Major);
        }
    }
    if lo.minor != hi.minor {
        return Some(Grade::Minor);
    }
    if lo.patch != hi.patch {
        return Some(Grade::Patch);
    }
    // Same triple: pre-release or build metadata moved.
    if lo.pre != hi.pre {
        Some(Grade::Minor)
    } else {
        Some(Grade::Patch)
    }
}

/// Whether two license strings denote the same SPDX expression (lax parsing: `MIT` = `mit`,
/// `Apache 2.0` = `Apache-2.0`). Unparseable strings compare as trimmed text.
pub(crate) fn same_license(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        match spdx::Expression::parse_mode(s, spdx::ParseMode::LAX) {
            Ok(e) => e.to_string(),
            Err(_) => s.trim().to_string(),
        }
    };
    a.trim() == b.trim() || norm(a) == norm(b)
}

/// One dependency as a lockfile or manifest resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dep {
    pub version: String,
    pub dev: bool,
}

/// A direct dependency change.
pub(crate) struct DirectChange<'a> {
    pub name: &'a str,
    pub base: Option<&'a Dep>,
    pub head: Option<&'a Dep>,
    pub evidence: Evidence,
}

/// The facet for a direct dependency change, `None` when nothing changed.
pub(crate) fn direct_facet(detector: &str, c: DirectChange<'_>) -> Option<Facet> {
    let kind_of = |d: &Dep| if d.dev { "dev" } else { "prod" };
    let (kind, details) = match (c.base, c.head) {
        (None, Some(h)) => (
            if h.dev {
                FacetCode::DepAddedDev
            } else {
                FacetCode::DepAddedProd
            },
            format!("{} {} added ({})", c.name, h.version, kind_of(h)),
        ),
        (Some(b), None) => (
            if b.dev {
                FacetCode::DepDevChanged
            } else {
                FacetCode::DepRemoved
            },
            format!("{} {} removed ({})", c.name, b.version, kind_of(b)),
        ),
        (Some(b), Some(h)) if b == h => return None,
        (Some(b), Some(h)) if b.dev && !h.dev => (
            FacetCode::DepAddedProd,
            format!(
                "{} {} → {} moved from dev to prod",
                c.name, b.version, h.version
            ),
        ),
        (Some(b), Some(h)) if !b.dev && h.dev => (
            FacetCode::DepRemoved,
            format!(
                "{} {} → {} moved from prod to dev",
                c.name, b.version, h.version
            ),
        ),
        (Some(b), Some(h)) if b.version == h.version => return None,
        (Some(b), Some(h)) => match grade(&b.version, &h.version) {
            Some(g) if h.dev => (
                FacetCode::DepDevChanged,
                format!("{} {} → {} {}, dev", c.name, b.version, h.version, g.word()),
            ),
            Some(g) => (
                g.facet(),
                format!(
                    "{} {} → {} {}, prod",
                    c.name,
                    b.version,
                    h.version,
                    g.word()
                ),
            ),
            None if h.dev => (
                FacetCode::DepDevChanged,
                format!("{} {} → {} (not semver), dev", c.name, b.version, h.version),
            ),
            None => (
                FacetCode::DepMajor,
                format!(
                    "{} {} → {} (not semver: cannot grade, counted as major), prod",
                    c.name, b.version, h.version
                ),
            ),
        },
        (None, None) => return None,
    };
    Some(facet(detector, kind, details, vec![c.evidence]))
}

/// Facets for lockfile changes of packages that are not direct dependencies of a changed
/// manifest, aggregated into one facet per kind; plus one `dep-license-changed` per package.
pub(crate) fn transitive_facets(
    detector: &str,
    lock_path: &str,
    base: &LockIndex,
    head: &LockIndex,
    direct: &BTreeSet<String>,
) -> Vec<Facet> {
    // Keyed by the code string: facets come out in the order they always have.
    #[allow(clippy::type_complexity)]
    let mut groups: BTreeMap<&'static str, (FacetCode, Vec<(String, Evidence)>)> = BTreeMap::new();
    let names: BTreeSet<&String> = base.versions.keys().chain(head.versions.keys()).collect();
    let empty = BTreeMap::new();
    let ev = |idx: &LockIndex, side: Side, name: &str, note: String| Evidence {
        path: lock_path.to_string(),
        line: idx.lines.get(name).copied(),
        side,
        snippet: Some(note),
    };
    for name in names {
        if direct.contains(name.as_str()) {
            continue;
        }
        let b = base.versions.get(name).unwrap_or(&empty);
        let h = head.versions.get(name).unwrap_or(&empty);
        if b.keys().eq(h.keys()) {
            continue;
        }
        let removed: Vec<(&String, &bool)> =
            b.iter().filter(|(v, _)| !h.contains_key(*v)).collect();
        let added: Vec<(&String, &bool)> = h.iter().filter(|(v, _)| !b.contains_key(*v)).collect();
        if removed.len() == 1 && added.len() == 1 {
            let (bv, _) = removed[0];
            let (hv, dev) = added[0];
            let text = format!("{name} {bv} → {hv}");
            let kind = match grade(bv, hv) {
                _ if *dev => FacetCode::DepDevChanged,
                Some(g) => g.facet(),
                None => FacetCode::DepMajor,
            };
            groups
                .entry(kind.as_str())
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push((text.clone(), ev(head, Side::Head, name, text)));
            continue;
        }
        // A copy removed while another version of the package stays installed (npm deduped
        // it): its dependants now get the remaining version, so the move is graded against it,
        // not as a production package removed.
        let removed: Vec<(&String, &bool)> = if added.is_empty() && !h.is_empty() {
            for (v, dev) in &removed {
                let to = lenient_version(v).and_then(|target| {
                    h.keys()
                        .filter_map(|k| Some((lenient_version(k)?, k)))
                        .min_by_key(|(x, _)| {
                            (
                                x.major.abs_diff(target.major),
                                x.minor.abs_diff(target.minor),
                                x.patch.abs_diff(target.patch),
                            )
                        })
                        .map(|(_, k)| k.clone())
                });
                let Some(to) = to else {
                    continue;
                };
                let text = format!("{name} {v} → {to} (deduplicated)");
                let kind = match grade(v, &to) {
                    _ if **dev => FacetCode::DepDevChanged,
                    Some(g) => g.facet(),
                    None => FacetCode::DepMajor,
                };
                groups
                    .entry(kind.as_str())
                    .or_insert_with(|| (kind, Vec::new()))
                    .1
                    .push((text.clone(), ev(base, Side::Base, name, text)));
            }
            Vec::new()
        } else {
            removed
        };
        for (v, dev) in added {
            let text = format!("{name} {v} added");
            let kind = if *dev {
                FacetCode::DepAddedDev
            } else {
                FacetCode::DepAddedProd
            };
            groups
                .entry(kind.as_str())
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push((text.clone(), ev(head, Side::Head, name, text)));
        }
        for (v, dev) in removed {
            let text = format!("{name} {v} removed");
            let kind = if *dev {
                FacetCode::DepDevChanged
            } else {
                FacetCode::DepRemoved
            };
            groups
                .entry(kind.as_str())
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push((text.clone(), ev(base, Side::Base, name, text)));
        }
    }
    let mut out = Vec::new();
    for (kind, items) in groups.into_values() {
        let n = items.len();
        let sample: Vec<&str> = items.iter().take(5).map(|(t, _)| t.as_str()).collect();
        let more = if n > 5 {
            format!(", … {} more", n - 5)
        } else {
            String::new()
        };
        out.push(facet(
            detector,
            kind,
            format!(
                "{n} transitive package change(s) in {lock_path}: {}{more}",
                sample.join(", ")
            ),
            items.into_iter().map(|(_, e)| e).collect(),
        ));
    }
    for (name, bl) in &base.licenses {
        if let Some(hl) = head.licenses.get(name)
            && !same_license(bl, hl)
        {
            out.push(facet(
                detector,
                FacetCode::DepLicenseChanged,
                format!("{name}: license {bl} → {hl}"),
                vec![ev(head, Side::Head, name, format!("license {hl}"))],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_follows_compatibility() {
        assert_eq!(grade("5.0.1", "5.0.2"), Some(Grade::Patch));
        assert_eq!(grade("5.0.0", "5.1.0"), Some(Grade::Minor));
        assert_eq!(grade("4.19.2", "5.0.0"), Some(Grade::Major));
        assert_eq!(grade("0.3.1", "0.4.0"), Some(Grade::Major));
        assert_eq!(grade("0.3.1", "0.3.2"), Some(Grade::Patch));
        assert_eq!(grade("0.0.3", "0.0.4"), Some(Grade::Major));
        assert_eq!(grade("^4.19", "^4.20.1"), Some(Grade::Minor));
        assert_eq!(grade("2.0.0", "1.9.0"), Some(Grade::Major));
        assert_eq!(grade("latest", "1.0.0"), None);
        assert_eq!(grade("1.0.0-beta.1", "1.0.0-beta.2"), Some(Grade::Minor));
    }

    #[test]
    fn licenses_compare_as_spdx() {
        assert!(same_license("MIT", "MIT"));
        assert!(same_license("MIT OR Apache-2.0", "MIT OR Apache-2.0"));
        assert!(!same_license("MIT", "GPL-3.0"));
        assert!(!same_license("MIT", "GPL-3.0-only"));
    }

    #[test]
    fn dev_and_prod_facets() {
        let ev = Evidence {
            path: "p".into(),
            line: None,
            side: Side::Head,
            snippet: None,
        };
        let d = |v: &str, dev| Dep {
            version: v.into(),
            dev,
        };
        let f = |b: Option<Dep>, h: Option<Dep>| {
            direct_facet(
                "t",
                DirectChange {
                    name: "x",
                    base: b.as_ref(),
                    head: h.as_ref(),
                    evidence: ev.clone(),
                },
            )
            .map(|f| f.kind.as_str())
        };
        assert_eq!(f(None, Some(d("1.0.0", false))), Some("dep-added-prod"));
        assert_eq!(f(None, Some(d("1.0.0", true))), Some("dep-added-dev"));
        assert_eq!(f(Some(d("1.0.0", false)), None), Some("dep-removed"));
        assert_eq!(
            f(Some(d("1.0.0", true)), Some(d("2.0.0", true))),
            Some("dep-dev-changed")
        );
        assert_eq!(f(Some(d("1.0.0", false)), Some(d("1.0.0", false))), None);
        assert_eq!(
            f(Some(d("git#abc", false)), Some(d("git#def", false))),
            Some("dep-major")
        );
    }
}

//! One classification pass: run every detector (fail closed on panics, on files that could not be
//! inspected and on facets a detector did not declare), then account for every changed file.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use changegate_policy::Policy;
use changegate_policy::facets::FacetCode;

use super::code::code_facet;
use super::requirements::build;
use super::watched::Watched;
use super::{Classification, ClassifyInput, FileSummary, Options};
use crate::facet::facet;
use crate::util::ext;
use crate::{Change, ChangedFile, Evidence, Facet, FileStatus, Side};

/// One classification pass, with the files of `aside` (path → why) set aside.
pub(super) fn classify_once(
    input: &ClassifyInput<'_>,
    aside: &BTreeMap<String, String>,
    policy: &Policy,
    options: &Options,
    all: &[&dyn crate::Detector],
) -> Classification {
    let mut notes = Vec::new();
    let inspectable: Vec<ChangedFile> = input
        .files
        .iter()
        .filter(|f| !f.submodule && !aside.contains_key(&f.path))
        .cloned()
        .collect();
    // The cost detector compares against the threshold of the matrix row for `cost-increase`
    // (the lowest, should several rows list it; none when a row has no threshold: then any
    // increase counts).
    let thresholds: Option<Vec<f64>> = policy
        .matrices
        .values()
        .flat_map(|m| &m.rows)
        .filter(|r| {
            r.facets
                .iter()
                .any(|f| f == FacetCode::CostIncrease.as_str())
        })
        .map(|r| r.threshold_usd_per_month)
        .collect();
    // Declared migration downtime is compared against the `downtime_threshold` of the row for
    // `schema-downtime` ("Migration requiring downtime (>5 min)"); the lowest, should several
    // rows list it.
    let downtime_threshold = policy
        .matrices
        .values()
        .flat_map(|m| &m.rows)
        .filter(|r| {
            r.facets
                .iter()
                .any(|f| f == FacetCode::SchemaDowntime.as_str())
        })
        .filter_map(|r| r.downtime_threshold.clone())
        .min_by_key(|d| d.get());
    let settings = changegate_policy::ClassifySettings {
        cost_threshold_usd_per_month: thresholds.and_then(|t| t.into_iter().reduce(f64::min)),
        downtime_threshold,
        ..policy.classify.clone()
    };
    let mut facets: Vec<Facet> = Vec::new();
    // Looked up for every changed file (a hash set: the ordered set's string comparisons were
    // most of the accounting of a 10,000-file change).
    let mut explained: rustc_hash::FxHashSet<String> = Default::default();
    // Detectors are independent and `Sync`: they run on rayon's work-stealing pool (the heavy
    // ones split their files over it too), then merge in registry order so the output does not
    // depend on scheduling.
    // One parse of each modified TypeScript source for the detectors that both parse it.
    let parses = crate::TsParses::new(&inspectable);
    let run = |d: &dyn crate::Detector| -> crate::Finding {
        let watched = Watched {
            inner: input.contents,
            needed: Default::default(),
        };
        let change = Change {
            files: &inspectable,
            contents: &watched,
            settings: &settings,
            parses: Some(&parses),
        };
        match catch_unwind(AssertUnwindSafe(|| d.detect(&change))) {
            // Conclusions drawn from a file that read as absent because it could not be
            // inspected are void: the detector's files are not understood.
            Ok(_)
                if !watched
                    .needed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty() =>
            {
                let needed = watched
                    .needed
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner());
                let why = input.contents.not_inspected();
                crate::Finding {
                    facets: vec![facet(
                        d.id(),
                        FacetCode::Unparseable,
                        format!(
                            "detector `{}` needed {} that could not be inspected; its files \
                             are treated as not understood",
                            d.id(),
                            needed.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        needed
                            .iter()
                            .map(|p| Evidence {
                                path: p.clone(),
                                line: None,
                                side: Side::Head,
                                snippet: why.get(p).cloned(),
                            })
                            .collect(),
                    )],
                    explained: BTreeSet::new(),
                }
            }
            Ok(found) => undeclared(d, found),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                crate::Finding {
                    facets: vec![facet(
                        d.id(),
                        FacetCode::Unparseable,
                        format!(
                            "detector `{}` failed; its files are treated as not understood",
                            d.id()
                        ),
                        vec![Evidence {
                            path: String::new(),
                            line: None,
                            side: Side::Head,
                            snippet: Some(msg),
                        }],
                    )],
                    explained: BTreeSet::new(),
                }
            }
        }
    };
    // Detectors that work through their files on one thread start first, in registry order;
    // those that spread their files over the pool come last and fill the idle workers, so a
    // long single-threaded detector does not start late and leave one core idle at the end.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| all[i].splits_files());
    let slots: Vec<std::sync::Mutex<Option<crate::Finding>>> =
        all.iter().map(|_| std::sync::Mutex::new(None)).collect();
    // A detector that runs after another (`Detector::after`) is started by that one's task
    // when it returns; every other detector is started here.
    // One level only: a detector followed must itself start here, so every detector starts
    // (a chain or a cycle of `after` could otherwise leave one never run).
    let follows = |i: usize| {
        all[i]
            .after()
            .and_then(|id| all.iter().position(|d| d.id() == id))
            .filter(|&j| j != i && all[j].after().is_none())
    };
    let pass = Pass {
        all,
        run: &run,
        slots: &slots,
        followers: (0..all.len())
            .map(|i| (0..all.len()).filter(|&j| follows(j) == Some(i)).collect())
            .collect(),
    };
    rayon::scope(|s| {
        for &i in &order {
            if follows(i).is_none() {
                pass.start(s, i);
            }
        }
    });
    let results = slots.into_iter().map(|m| {
        m.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_default()
    });
    for found in results {
        facets.extend(found.facets);
        explained.extend(found.explained);
    }
    // An input reported as unparseable is accounted for by that facet.
    for f in facets.iter().filter(|f| f.kind == FacetCode::Unparseable) {
        explained.extend(
            f.evidence
                .iter()
                .map(|e| e.path.clone())
                .filter(|p| !p.is_empty()),
        );
    }

    let mut summary = FileSummary {
        changed: input.files.len(),
        ..Default::default()
    };
    let mut source_files = Vec::new();
    for f in input.files {
        let key_paths = [f.path.as_str(), f.base_path()];
        if let Some(why) = aside.get(&f.path) {
            summary.unclassified += 1;
            facets.push(unclassified(f, why.clone()));
        } else if f.submodule {
            summary.unclassified += 1;
            facets.push(unclassified(
                f,
                "submodule pointer changed (contents not inspected)".into(),
            ));
        } else if key_paths.iter().any(|p| explained.contains(*p)) {
            summary.explained += 1;
        } else if options.source_extensions.contains(&ext(&f.path)) && !input.contents.is_binary(f)
        {
            summary.source += 1;
            source_files.push(f);
        } else {
            summary.unclassified += 1;
            // Only source files are read here (to tell text from binary); any other file no
            // detector explains is unclassified whatever it holds, and is not read at all.
            let what = if options.source_extensions.contains(&ext(&f.path)) {
                "binary file"
            } else {
                "file"
            };
            facets.push(unclassified(
                f,
                format!("{what} {} that no detector explains", status_word(f.status)),
            ));
        }
    }
    if !source_files.is_empty() {
        facets.push(code_facet(&source_files, input, policy, &mut notes));
    }
    if facets.is_empty() && !input.files.is_empty() {
        // Explained files with no facet: the detectors understood nothing risky, but nothing
        // proves it either. Fail closed.
        for f in input.files {
            facets.push(unclassified(
                f,
                "explained by a detector that reported no facet".into(),
            ));
        }
    }
    build(facets, policy, summary, notes)
}

/// The detectors of one pass on the pool: each result in its slot (registry order).
struct Pass<'a> {
    all: &'a [&'a dyn crate::Detector],
    run: &'a (dyn Fn(&dyn crate::Detector) -> crate::Finding + Sync),
    slots: &'a [std::sync::Mutex<Option<crate::Finding>>],
    /// For each detector, those that start once it has returned.
    followers: Vec<Vec<usize>>,
}

impl<'a> Pass<'a> {
    fn start<'s>(&'s self, s: &rayon::Scope<'s>, i: usize)
    where
        'a: 's,
    {
        s.spawn(move |s| {
            let found = (self.run)(self.all[i]);
            *self.slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
            for &j in &self.followers[i] {
                self.start(s, j);
            }
        });
    }
}

/// A detector's finding, or, when it emitted a facet it does not declare, an `unparseable` facet
/// instead: a detector that says what it does not claim to know is not trusted (fail closed), so
/// a wrong code never passes as a right one.
pub(super) fn undeclared(d: &dyn crate::Detector, found: crate::Finding) -> crate::Finding {
    let declared = d.facets();
    let wrong: Vec<&Facet> = found
        .facets
        .iter()
        .filter(|f| !declared.contains(&f.kind))
        .collect();
    if wrong.is_empty() {
        return found;
    }
    let codes: BTreeSet<&str> = wrong.iter().map(|f| f.kind.as_str()).collect();
    let paths: BTreeSet<&str> = wrong
        .iter()
        .flat_map(|f| f.evidence.iter().map(|e| e.path.as_str()))
        .collect();
    let codes = codes.into_iter().collect::<Vec<_>>().join(", ");
    crate::Finding {
        facets: vec![facet(
            d.id(),
            FacetCode::Unparseable,
            format!(
                "detector `{}` emitted facet {codes}, which it does not declare; its files are \
                 treated as not understood",
                d.id()
            ),
            paths
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(|p| Evidence {
                    path: p.to_string(),
                    line: None,
                    side: Side::Head,
                    snippet: Some(format!("undeclared facet {codes}")),
                })
                .collect(),
        )],
        explained: BTreeSet::new(),
    }
}

fn status_word(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Added => "added",
        FileStatus::Deleted => "deleted",
        FileStatus::Modified => "modified",
        FileStatus::Renamed => "renamed",
        FileStatus::TypeChanged => "changed kind",
    }
}

pub(super) fn unclassified(f: &ChangedFile, why: String) -> Facet {
    let side = if f.status == FileStatus::Deleted {
        Side::Base
    } else {
        Side::Head
    };
    let details = match &f.old_path {
        Some(old) => format!("{old} → {}: {why}", f.path),
        None => format!("{}: {why}", f.path),
    };
    facet(
        "classifier",
        FacetCode::Unclassified,
        details,
        vec![Evidence {
            path: f.path.clone(),
            line: None,
            side,
            snippet: None,
        }],
    )
}

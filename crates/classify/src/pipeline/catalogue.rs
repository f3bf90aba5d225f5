//! The detector catalogue as `changegate detectors list` shows it: the registry plus the
//! pipeline's own fail-closed steps.

use changegate_policy::facets::FacetCode;
use serde::Serialize;

use crate::detectors;

/// A detector as `changegate detectors list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectorInfo {
    /// Stable id (the `detector` field of facets).
    pub id: &'static str,
    /// One line.
    pub description: &'static str,
    /// Facet codes it may emit.
    pub facets: Vec<FacetCode>,
}

/// Every detector of the registry, plus the pipeline's own fail-closed steps (`classifier`,
/// `coverage`), in run order.
pub fn detector_catalogue() -> Vec<DetectorInfo> {
    let mut out: Vec<DetectorInfo> = detectors::all()
        .into_iter()
        .map(|d| DetectorInfo {
            id: d.id(),
            description: d.description(),
            facets: d.facets().to_vec(),
        })
        .collect();
    out.push(DetectorInfo {
        id: "coverage",
        description: "Source files no detector explains: bugfix-covered when the coverage report covers more than \
                      rules.bugfix-covered.min_changed_line_coverage of the changed lines, else code-changed",
        facets: vec![FacetCode::BugfixCovered, FacetCode::CodeChanged],
    });
    out.push(DetectorInfo {
        id: "classifier",
        description: "Fail closed: any other file no detector explains, oversized files, submodules; detectors that panic",
        facets: vec![FacetCode::Unclassified, FacetCode::Unparseable],
    });
    out
}

//! Test support for detector unit tests: run one detector over files held in memory.

use changegate_policy::ClassifySettings;

use crate::{Change, ChangedFile, Detector, FileStatus, Finding, MapContents};

/// The classify settings of the built-in default policy.
pub(crate) fn default_settings() -> ClassifySettings {
    changegate_policy::load_default().policy.classify
}

/// Run `detector` on files given as `(path, base, head)`; `None` means absent on that side.
pub(crate) fn run_with(
    detector: &dyn Detector,
    settings: &ClassifySettings,
    files: &[(&str, Option<&str>, Option<&str>)],
) -> Finding {
    let mut contents = MapContents::default();
    let mut changed = Vec::new();
    for (path, base, head) in files {
        if let Some(b) = base {
            contents
                .base
                .insert((*path).to_string(), b.as_bytes().to_vec());
        }
        if let Some(h) = head {
            contents
                .head
                .insert((*path).to_string(), h.as_bytes().to_vec());
        }
        let status = match (base, head) {
            (None, Some(_)) => FileStatus::Added,
            (Some(_), None) => FileStatus::Deleted,
            (Some(b), Some(h)) if b == h => continue,
            _ => FileStatus::Modified,
        };
        changed.push(ChangedFile {
            path: (*path).to_string(),
            old_path: None,
            status,
            submodule: false,
        });
    }
    let change = Change {
        files: &changed,
        contents: &contents,
        settings,
        parses: None,
    };
    detect(detector, &change)
}

/// `detector.detect(change)`, checking that it emits only the facet codes it declares (the
/// pipeline would turn any other into `unparseable`): every detector unit test checks it.
pub(crate) fn detect(detector: &dyn Detector, change: &Change<'_>) -> Finding {
    let found = detector.detect(change);
    for f in &found.facets {
        assert!(
            detector.facets().contains(&f.kind),
            "detector `{}` emitted `{}`, which it does not declare in `facets()`",
            detector.id(),
            f.kind
        );
    }
    found
}

/// [`run_with`] under the default policy's settings.
pub(crate) fn run(
    detector: &dyn Detector,
    files: &[(&str, Option<&str>, Option<&str>)],
) -> Finding {
    run_with(detector, &default_settings(), files)
}

/// The facet kinds of a finding, in order.
pub(crate) fn kinds(f: &Finding) -> Vec<&str> {
    f.facets.iter().map(|f| f.kind.as_str()).collect()
}

//! A detector's view of the contents, noting the files it needed that could not be inspected.

use std::collections::{BTreeMap, BTreeSet};

use crate::{ChangedFile, Contents};

/// [`Contents`] as one detector sees it: notes every file it needed that could not be
/// inspected, so its conclusions (drawn from an "absent" file) are not trusted.
pub(super) struct Watched<'a> {
    pub(super) inner: &'a dyn Contents,
    pub(super) needed: std::sync::Mutex<BTreeSet<String>>,
}

impl Watched<'_> {
    /// Notes `path` when it could not be inspected.
    fn note(&self, path: &str) {
        if self.inner.is_not_inspected(path) {
            self.needed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_string());
        }
    }
    /// A read that answered "absent" may be a file that could not be inspected.
    fn check<T>(&self, path: &str, r: Option<T>) -> Option<T> {
        if r.is_none() {
            self.note(path);
        }
        r
    }
}

impl Contents for Watched<'_> {
    fn base(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.check(path, self.inner.base(path))
    }
    fn head(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.check(path, self.inner.head(path))
    }
    fn inspectable(&self, path: &str, side: crate::Side) -> bool {
        let r = self.inner.inspectable(path, side);
        if !r {
            self.note(path);
        }
        r
    }
    fn is_binary(&self, f: &ChangedFile) -> bool {
        let b = self.inner.is_binary(f);
        self.note(&f.path);
        self.note(f.base_path());
        b
    }
    fn not_inspected(&self) -> BTreeMap<String, String> {
        self.inner.not_inspected()
    }
    fn is_not_inspected(&self, path: &str) -> bool {
        self.inner.is_not_inspected(path)
    }
}

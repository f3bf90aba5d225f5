//! What a lockfile says, whatever its format: the resolved versions per package.

use std::collections::BTreeMap;

/// Versions per package name on one side of a lockfile, with dev flags and licenses.
#[derive(Debug, Default, Clone)]
pub(crate) struct LockIndex {
    /// name → version → dev.
    pub versions: BTreeMap<String, BTreeMap<String, bool>>,
    /// name → license of its top-level (first seen) entry.
    pub licenses: BTreeMap<String, String>,
    /// name → line of its first entry in the lockfile text.
    pub lines: BTreeMap<String, u32>,
}

impl LockIndex {
    pub(crate) fn add(&mut self, name: &str, version: &str, dev: bool, license: Option<&str>) {
        // Keys are copied only when new (thousands of entries per lockfile).
        if !self.versions.contains_key(name) {
            self.versions.insert(name.to_string(), BTreeMap::new());
        }
        let e = self.versions.get_mut(name).expect("inserted above");
        match e.get_mut(version) {
            Some(d) => *d = *d && dev, // prod wins when both
            None => {
                e.insert(version.to_string(), dev);
            }
        }
        if let Some(l) = license
            && !self.licenses.contains_key(name)
        {
            self.licenses.insert(name.to_string(), l.to_string());
        }
    }
}

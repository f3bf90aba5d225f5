//! The bootstrap (`main.ts`): global prefix and URI versioning, found for each controller by
//! walking up from its file, and a change to it that moves every route.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Mutex;

use changegate_policy::facets::FacetCode;

use super::{FileCtx, ID};
use crate::facet::facet;
use crate::parse::nest_ts::{self as ts, NestFile, Route};
use crate::util::as_text;
use crate::{Contents, Facet, Side};

/// Route-shaping settings of an application's bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Bootstrap {
    pub(super) prefix: Option<String>,
    pub(super) uri_versioning: bool,
    pub(super) default_version: Option<String>,
}

impl Bootstrap {
    pub(super) fn of(f: &NestFile) -> Self {
        let (uri_versioning, default_version) = match &f.versioning {
            // URI is Nest's default versioning type.
            Some((s, d)) => (s.value.is_empty() || s.value.ends_with("URI"), d.clone()),
            None => (false, None),
        };
        Bootstrap {
            prefix: f.global_prefix.as_ref().map(|s| s.value.clone()),
            uri_versioning,
            default_version,
        }
    }

    /// The route keys (`METHOD /path`) a declaration serves: one per version when several.
    pub(super) fn routes(&self, r: &Route) -> Vec<String> {
        let versions: Vec<Option<String>> =
            match r.version.as_ref().or(self.default_version.as_ref()) {
                Some(v) if self.uri_versioning && !v.contains("VERSION_NEUTRAL") => {
                    v.split('|').map(|v| Some(format!("v{v}"))).collect()
                }
                _ => vec![None],
            };
        versions
            .into_iter()
            .map(|v| {
                let segs = [
                    self.prefix.clone(),
                    v,
                    Some(r.controller_path.clone()),
                    Some(r.path.clone()),
                ];
                let parts: Vec<&str> = segs
                    .iter()
                    .flatten()
                    .flat_map(|s| s.split('/'))
                    .filter(|s| !s.is_empty())
                    .collect();
                format!("{} /{}", r.method, parts.join("/"))
            })
            .collect()
    }
}

/// The directories from `path`'s own up to the root: the order [`Bootstraps::find`] walks (kept
/// for the test that checks the memoised walk against the plain loop).
#[cfg(test)]
pub(super) fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = path;
    while let Some(i) = cur.rfind('/') {
        cur = &cur[..i];
        out.push(cur.to_string());
    }
    out.push(String::new());
    out
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The bootstrap that applies to `path` on `side`, cached per `main.ts`.
pub(super) struct Bootstraps<'c> {
    pub(super) contents: &'c dyn Contents,
    pub(super) cache: Mutex<HashMap<(bool, String), Option<Bootstrap>>>,
    /// The outcome of the walk up from each directory (the nearest bootstrap at or above it), so
    /// the controllers of one application share one walk instead of re-probing every parent.
    pub(super) walks: Mutex<HashMap<(bool, String), Option<Bootstrap>>>,
}

impl Bootstraps<'_> {
    /// The nearest bootstrap: `<dir>/main.ts`, then `<dir>/src/main.ts`, for each directory from
    /// the file's own up to the root ([`parents`] order).
    pub(super) fn find(&self, side: Side, path: &str) -> Bootstrap {
        let dir = path.rfind('/').map_or("", |i| &path[..i]);
        self.walk(side, dir).unwrap_or_default()
    }

    fn walk(&self, side: Side, dir: &str) -> Option<Bootstrap> {
        let key = (side == Side::Head, dir.to_string());
        if let Some(v) = self.walks.lock().ok().and_then(|w| w.get(&key).cloned()) {
            return v;
        }
        let found = [join(dir, "main.ts"), join(dir, "src/main.ts")]
            .iter()
            .find_map(|cand| self.load(side, cand))
            .or_else(|| {
                if dir.is_empty() {
                    None
                } else {
                    self.walk(side, dir.rfind('/').map_or("", |i| &dir[..i]))
                }
            });
        if let Ok(mut w) = self.walks.lock() {
            w.insert(key, found.clone());
        }
        found
    }

    pub(super) fn load(&self, side: Side, path: &str) -> Option<Bootstrap> {
        let key = (side == Side::Head, path.to_string());
        if let Ok(cache) = self.cache.lock()
            && let Some(v) = cache.get(&key)
        {
            return v.clone();
        }
        let bytes = match side {
            Side::Base => self.contents.base(path),
            Side::Head => self.contents.head(path),
        };
        let v = bytes
            .and_then(|b| as_text(&b).ok().and_then(|t| ts::read(t).ok()))
            .map(|f| Bootstrap::of(&f));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, v.clone());
        }
        v
    }
}

impl FileCtx<'_> {
    /// `main.ts` itself: a changed global prefix or versioning moves every route of the app.
    pub(super) fn bootstrap(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
        let (bb, hb) = (Bootstrap::of(base), Bootstrap::of(head));
        if bb == hb || (base.global_prefix.is_none() && base.versioning.is_none()) {
            return;
        }
        let line = base
            .global_prefix
            .as_ref()
            .map(|s| s.line)
            .or(base.versioning.as_ref().map(|v| v.0.line))
            .unwrap_or(1);
        let show = |b: &Bootstrap| {
            let v = if b.uri_versioning {
                format!(
                    ", URI versioning default {}",
                    b.default_version.as_deref().unwrap_or("none")
                )
            } else {
                String::new()
            };
            format!("prefix {}{v}", b.prefix.as_deref().unwrap_or("(none)"))
        };
        out.push(facet(
            ID,
            FacetCode::ApiEndpointRemoved,
            format!(
                "route base changed: {} → {}: every route of the application moves",
                show(&bb),
                show(&hb)
            ),
            vec![self.at(Side::Base, line)],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;
    use super::{Bootstrap, Bootstraps, join, parents};
    use crate::detectors::testing::{kinds, run};

    /// The memoised walk finds what the plain loop over [`parents`] finds, whatever is asked
    /// first.
    #[test]
    fn walk_matches_the_loop_over_parents() {
        let boot = |p: &str| MAIN_TS.replace("'api'", &format!("'{p}'"));
        let c = crate::MapContents::default()
            .with_head("apps/a/src/main.ts", boot("a"))
            .with_head("apps/b/main.ts", boot("b"))
            .with_head("main.ts", boot("root"))
            .with_head("apps/c/src/main.ts", "not typescript (")
            .with_head("libs/x/y/src/main.ts", boot("x"));
        let fresh = || Bootstraps {
            contents: &c,
            cache: Mutex::new(Default::default()),
            walks: Mutex::new(Default::default()),
        };
        let old = |b: &Bootstraps<'_>, path: &str| {
            for dir in parents(path) {
                for cand in [join(&dir, "main.ts"), join(&dir, "src/main.ts")] {
                    if let Some(b) = b.load(Side::Head, &cand) {
                        return b;
                    }
                }
            }
            Bootstrap::default()
        };
        let paths = [
            "apps/a/src/x/y.controller.ts",
            "apps/a/src/y.controller.ts",
            "apps/a/y.controller.ts",
            "apps/b/src/deep/er/y.ts",
            "apps/c/src/y.ts",
            "apps/d/y.ts",
            "libs/x/y/src/z/w.ts",
            "libs/x/w.ts",
            "top.ts",
            "/abs.ts",
            "a//b.ts",
        ];
        let shared = fresh();
        for order in [paths.to_vec(), paths.iter().rev().copied().collect()] {
            for p in order {
                let want = old(&fresh(), p);
                assert_eq!(shared.find(Side::Head, p), want, "{p}");
                assert_eq!(fresh().find(Side::Head, p), want, "{p}");
            }
        }
        assert_eq!(
            shared
                .find(Side::Head, "apps/a/src/x/y.ts")
                .prefix
                .as_deref(),
            Some("a")
        );
    }

    #[test]
    fn without_bootstrap_routes_have_no_prefix() {
        let head = CTRL_TS.replace("  @Get()\n  list", "  @Get('all')\n  list");
        let f = run(&NestJs, &[(CTRL, Some(CTRL_TS), Some(&head))]);
        let d: Vec<_> = f.facets.iter().map(|f| f.details.as_str()).collect();
        assert_eq!(
            d,
            vec![
                "GET /messages/all (MessagesController.list)",
                "GET /messages (MessagesController.list)"
            ]
        );
    }

    #[test]
    fn global_prefix_change_in_main_moves_every_route() {
        let f = run(
            &NestJs,
            &[(
                MAIN,
                Some(MAIN_TS),
                Some(&MAIN_TS.replace("'api'", "'api/v2'")),
            )],
        );
        assert_eq!(kinds(&f), vec!["api-endpoint-removed"]);
        assert!(
            f.facets[0]
                .details
                .contains("prefix api, URI versioning default 1 → prefix api/v2")
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(6));
    }
}

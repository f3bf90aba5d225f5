//! NestJS API surface: REST routes and Socket.IO events added or removed, rate limits and
//! Socket.IO transports changed.
//!
//! Why read the source: a NestJS service declares its API in decorators (`@Controller`,
//! `@Get`, `@WebSocketGateway`, `@SubscribeMessage`), and the full route also depends on the
//! bootstrap (`app.setGlobalPrefix`, `app.enableVersioning` with URI versioning and a
//! `defaultVersion`). Each changed TypeScript file that mentions those is parsed on both sides
//! with oxc ([`crate::parse::nest_ts`]); routes are assembled with the bootstrap found in the nearest
//! `main.ts` (`<dir>/main.ts` or `<dir>/src/main.ts`, walking up from the file) of the same side,
//! then compared as `METHOD /path` (and `namespace event`) multisets.
//!
//! This detector never marks files as explained: a controller change is also a code change, left
//! to the code/coverage detectors. A Socket.IO *major* upgrade is the dependency detector's job;
//! here only a gateway's `transports` option counts as `protocol-changed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::facet::{evidence_line, facet, unparseable_at};
use crate::parse::nest_ts::{self as ts, NestFile, Route, Setting};
use crate::util::as_text;
use crate::{Change, Contents, Detector, Facet, FileStatus, Finding, Side};
use changegate_policy::facets::FacetCode;

/// The NestJS detector.
pub struct NestJs;

const ID: &str = "api-nestjs";

const FACETS: &[FacetCode] = &[
    FacetCode::ApiEndpointAdded,
    FacetCode::ApiEndpointRemoved,
    FacetCode::ApiEventAdded,
    FacetCode::ApiEventRemoved,
    FacetCode::ApiRateLimitChanged,
    FacetCode::ProtocolChanged,
    FacetCode::Unparseable,
];

fn is_ts_source(path: &str) -> bool {
    path.ends_with(".ts")
        && !path.ends_with(".d.ts")
        && !path.ends_with(".spec.ts")
        && !path.ends_with(".test.ts")
        && !path.contains("node_modules/")
}

/// Route-shaping settings of an application's bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bootstrap {
    prefix: Option<String>,
    uri_versioning: bool,
    default_version: Option<String>,
}

impl Bootstrap {
    fn of(f: &NestFile) -> Self {
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
    fn routes(&self, r: &Route) -> Vec<String> {
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

fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = path;
    while let Some(i) = cur.rfind('/') {
        cur = &cur[..i];
        out.push(cur.to_string());
    }
    out.push(String::new());
    out
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The bootstrap that applies to `path` on `side`, cached per `main.ts`.
struct Bootstraps<'c> {
    contents: &'c dyn Contents,
    cache: Mutex<HashMap<(bool, String), Option<Bootstrap>>>,
}

impl Bootstraps<'_> {
    fn find(&self, side: Side, path: &str) -> Bootstrap {
        for dir in parents(path) {
            for cand in [join(&dir, "main.ts"), join(&dir, "src/main.ts")] {
                if let Some(b) = self.load(side, &cand) {
                    return b;
                }
            }
        }
        Bootstrap::default()
    }

    fn load(&self, side: Side, path: &str) -> Option<Bootstrap> {
        let key = (side == Side::Head, path.to_string());
        if let Ok(cache) = self.cache.lock() {
            if let Some(v) = cache.get(&key) {
                return v.clone();
            }
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

impl Detector for NestJs {
    fn id(&self) -> &'static str {
        ID
    }

    fn description(&self) -> &'static str {
        "NestJS source (oxc): routes and Socket.IO events added/removed, @Throttle and transports changes"
    }

    fn facets(&self) -> &'static [FacetCode] {
        FACETS
    }

    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut finding = Finding::default();
        let boots = Bootstraps {
            contents: change.contents,
            cache: Mutex::new(HashMap::new()),
        };
        for f in change.files {
            if f.submodule
                || !(is_ts_source(&f.path) || is_ts_source(f.base_path()))
                || change.is_binary(f)
            {
                continue;
            }
            let get = |side: Side| match side {
                Side::Base if f.status != FileStatus::Added => change.contents.base(f.base_path()),
                Side::Head if f.status != FileStatus::Deleted => change.contents.head(&f.path),
                _ => None,
            };
            let (bbytes, hbytes) = (get(Side::Base), get(Side::Head));
            // Cheap relevance check on the borrowed bytes: most sources are not NestJS modules,
            // and copying them first was most of this detector's time on big changes.
            let relevant = [&bbytes, &hbytes]
                .iter()
                .any(|b| matches!(b.as_deref().map(as_text), Some(Ok(s)) if ts::interesting(s)));
            if !relevant {
                continue;
            }
            let text = |b: Option<std::borrow::Cow<'_, [u8]>>| -> Option<Result<String, String>> {
                b.map(|b| as_text(&b).map(str::to_string))
            };
            let (btext, htext) = (text(bbytes), text(hbytes));
            let mut sides: Vec<(Side, NestFile, String)> = Vec::new();
            let mut broken = false;
            for (side, t) in [(Side::Base, btext), (Side::Head, htext)] {
                let path = if side == Side::Base {
                    f.base_path()
                } else {
                    f.path.as_str()
                };
                match t {
                    None => sides.push((side, NestFile::default(), String::new())),
                    Some(Err(e)) => {
                        broken = true;
                        finding.facets.push(unparseable_at(
                            ID,
                            path,
                            side,
                            None,
                            "TypeScript source",
                            &e,
                        ));
                    }
                    Some(Ok(text)) => match ts::read(&text) {
                        Ok(n) => sides.push((side, n, text)),
                        Err(e) => {
                            broken = true;
                            finding.facets.push(unparseable_at(
                                ID,
                                path,
                                side,
                                e.line,
                                "TypeScript source",
                                &e.message,
                            ));
                        }
                    },
                }
            }
            if broken || sides.len() != 2 {
                continue;
            }
            let (base, btext) = (&sides[0].1, sides[0].2.as_str());
            let (head, htext) = (&sides[1].1, sides[1].2.as_str());
            let bboot = if base.global_prefix.is_some() || base.versioning.is_some() {
                Bootstrap::of(base)
            } else {
                boots.find(Side::Base, f.base_path())
            };
            let hboot = if head.global_prefix.is_some() || head.versioning.is_some() {
                Bootstrap::of(head)
            } else {
                boots.find(Side::Head, &f.path)
            };
            let ctx = FileCtx {
                bpath: f.base_path(),
                hpath: &f.path,
                btext,
                htext,
            };
            ctx.routes(base, head, &bboot, &hboot, &mut finding.facets);
            ctx.events(base, head, &mut finding.facets);
            ctx.settings(
                &base.transports,
                &head.transports,
                FacetCode::ProtocolChanged,
                "Socket.IO transports",
                &mut finding.facets,
            );
            ctx.settings(
                &base.rate_limits,
                &head.rate_limits,
                FacetCode::ApiRateLimitChanged,
                "rate limit",
                &mut finding.facets,
            );
            ctx.bootstrap(base, head, &mut finding.facets);
        }
        finding
    }
}

struct FileCtx<'a> {
    bpath: &'a str,
    hpath: &'a str,
    btext: &'a str,
    htext: &'a str,
}

impl FileCtx<'_> {
    fn at(&self, side: Side, line: u32) -> crate::Evidence {
        match side {
            Side::Base => evidence_line(self.bpath, side, Some(self.btext), Some(line)),
            Side::Head => evidence_line(self.hpath, side, Some(self.htext), Some(line)),
        }
    }

    fn routes(
        &self,
        base: &NestFile,
        head: &NestFile,
        bb: &Bootstrap,
        hb: &Bootstrap,
        out: &mut Vec<Facet>,
    ) {
        fn index<'f>(f: &'f NestFile, b: &Bootstrap) -> BTreeMap<String, Vec<&'f Route>> {
            let mut m: BTreeMap<String, Vec<&Route>> = BTreeMap::new();
            for r in &f.routes {
                for k in b.routes(r) {
                    m.entry(k).or_default().push(r);
                }
            }
            m
        }
        let (bi, hi) = (index(base, bb), index(head, hb));
        for (k, rs) in &hi {
            let have = bi.get(k).map_or(0, Vec::len);
            for r in rs.iter().skip(have) {
                out.push(facet(
                    ID,
                    FacetCode::ApiEndpointAdded,
                    format!("{k} ({})", r.handler),
                    vec![self.at(Side::Head, r.line)],
                ));
            }
        }
        for (k, rs) in &bi {
            let have = hi.get(k).map_or(0, Vec::len);
            for r in rs.iter().skip(have) {
                out.push(facet(
                    ID,
                    FacetCode::ApiEndpointRemoved,
                    format!("{k} ({})", r.handler),
                    vec![self.at(Side::Base, r.line)],
                ));
            }
        }
    }

    fn events(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
        let key = |e: &ts::Event| format!("event {:?} on namespace {}", e.event, e.namespace);
        let count = |f: &NestFile, k: &str| f.events.iter().filter(|e| key(e) == k).count();
        let mut seen = std::collections::BTreeSet::new();
        for e in &head.events {
            let k = key(e);
            if seen.insert(k.clone()) && count(base, &k) < count(head, &k) {
                out.push(facet(
                    ID,
                    FacetCode::ApiEventAdded,
                    format!("Socket.IO {k} ({})", e.handler),
                    vec![self.at(Side::Head, e.line)],
                ));
            }
        }
        seen.clear();
        for e in &base.events {
            let k = key(e);
            if seen.insert(k.clone()) && count(head, &k) < count(base, &k) {
                out.push(facet(
                    ID,
                    FacetCode::ApiEventRemoved,
                    format!("Socket.IO {k} ({})", e.handler),
                    vec![self.at(Side::Base, e.line)],
                ));
            }
        }
    }

    fn settings(
        &self,
        base: &[Setting],
        head: &[Setting],
        kind: FacetCode,
        what: &str,
        out: &mut Vec<Facet>,
    ) {
        let bm: BTreeMap<&str, &Setting> = base.iter().map(|s| (s.key.as_str(), s)).collect();
        let hm: BTreeMap<&str, &Setting> = head.iter().map(|s| (s.key.as_str(), s)).collect();
        for (k, h) in &hm {
            match bm.get(k) {
                Some(b) if b.value == h.value => {}
                Some(b) => out.push(facet(
                    ID,
                    kind,
                    format!("{k}: {what} {} → {}", b.value, h.value),
                    vec![self.at(Side::Head, h.line)],
                )),
                // A new gateway brings its own transports: not a change of an existing protocol.
                None if kind == FacetCode::ProtocolChanged => {}
                None => out.push(facet(
                    ID,
                    kind,
                    format!("{k}: {what} added: {}", h.value),
                    vec![self.at(Side::Head, h.line)],
                )),
            }
        }
        if kind != FacetCode::ProtocolChanged {
            for (k, b) in &bm {
                if !hm.contains_key(k) {
                    out.push(facet(
                        ID,
                        kind,
                        format!("{k}: {what} removed: {}", b.value),
                        vec![self.at(Side::Base, b.line)],
                    ));
                }
            }
        }
    }

    /// `main.ts` itself: a changed global prefix or versioning moves every route of the app.
    fn bootstrap(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
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
    use super::*;
    use crate::detectors::testing::{kinds, run};

    const MAIN: &str = "src/main.ts";
    const MAIN_TS: &str = r#"import { NestFactory } from '@nestjs/core';
import { VersioningType } from '@nestjs/common';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.setGlobalPrefix('api');
  app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
  await app.listen(3000);
}
bootstrap();
"#;
    const CTRL: &str = "src/messages/messages.controller.ts";
    const CTRL_TS: &str = r#"import { Body, Controller, Get, Post } from '@nestjs/common';

@Controller('messages')
export class MessagesController {
  @Get()
  list() {
    return [];
  }

  @Throttle({ default: { limit: 10, ttl: 60000 } })
  @Post()
  create(@Body() dto: CreateMessageDto) {
    return dto;
  }
}
"#;
    const GW: &str = "src/chat/chat.gateway.ts";
    const GW_TS: &str = r#"@WebSocketGateway({ namespace: '/chat', transports: ['websocket', 'polling'] })
export class ChatGateway {
  @SubscribeMessage('message:send')
  send() {}
}
"#;

    fn ctrl(head: &str) -> Finding {
        run(
            &NestJs,
            &[
                (MAIN, Some(MAIN_TS), Some(MAIN_TS)),
                (CTRL, Some(CTRL_TS), Some(head)),
            ],
        )
    }

    #[test]
    fn endpoint_added_with_global_prefix_and_version() {
        let head = CTRL_TS.replace(
            "  @Throttle(",
            "  @Delete(':id')\n  remove() {}\n\n  @Throttle(",
        );
        let f = ctrl(&head);
        assert_eq!(kinds(&f), vec!["api-endpoint-added"]);
        assert_eq!(
            f.facets[0].details,
            "DELETE /api/v1/messages/:id (MessagesController.remove)"
        );
        let e = &f.facets[0].evidence[0];
        assert_eq!(
            (e.path.as_str(), e.line, e.side),
            (CTRL, Some(10), Side::Head)
        );
        assert!(
            f.explained.is_empty(),
            "controllers are code: never explained here"
        );
    }

    #[test]
    fn endpoint_removed_points_at_base() {
        let head = CTRL_TS.replace("  @Get()\n  list() {\n    return [];\n  }\n\n", "");
        let f = ctrl(&head);
        assert_eq!(kinds(&f), vec!["api-endpoint-removed"]);
        assert_eq!(
            f.facets[0].details,
            "GET /api/v1/messages (MessagesController.list)"
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(5));
        assert_eq!(f.facets[0].evidence[0].side, Side::Base);
    }

    #[test]
    fn controller_version_object_and_method_version() {
        let head = CTRL_TS.replace(
            "@Controller('messages')",
            "@Controller({ path: 'messages', version: '2' })",
        );
        let f = ctrl(&head);
        let mut d: Vec<_> = f
            .facets
            .iter()
            .map(|f| format!("{} {}", f.kind, f.details))
            .collect();
        d.sort();
        assert_eq!(
            d,
            vec![
                "api-endpoint-added GET /api/v2/messages (MessagesController.list)",
                "api-endpoint-added POST /api/v2/messages (MessagesController.create)",
                "api-endpoint-removed GET /api/v1/messages (MessagesController.list)",
                "api-endpoint-removed POST /api/v1/messages (MessagesController.create)",
            ]
        );
    }

    #[test]
    fn several_versions_and_version_neutral() {
        let head = CTRL_TS.replace(
            "@Controller('messages')",
            "@Controller({ path: 'messages', version: ['1', '2'] })",
        );
        let f = ctrl(&head);
        let d: Vec<_> = f.facets.iter().map(|f| f.details.as_str()).collect();
        assert_eq!(
            d,
            vec![
                "GET /api/v2/messages (MessagesController.list)",
                "POST /api/v2/messages (MessagesController.create)"
            ]
        );
        let head = CTRL_TS.replace(
            "@Controller('messages')",
            "@Controller({ path: 'messages', version: VERSION_NEUTRAL })",
        );
        let f = ctrl(&head);
        assert_eq!(
            kinds(&f),
            vec![
                "api-endpoint-added",
                "api-endpoint-added",
                "api-endpoint-removed",
                "api-endpoint-removed"
            ]
        );
        assert_eq!(
            f.facets[0].details,
            "GET /api/messages (MessagesController.list)"
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
    fn rate_limit_changed() {
        let f = ctrl(&CTRL_TS.replace("limit: 10", "limit: 100"));
        assert_eq!(kinds(&f), vec!["api-rate-limit-changed"]);
        assert!(
            f.facets[0]
                .details
                .contains("limit: 10, ttl: 60000 } }) → @Throttle({ default: { limit: 100"),
            "{}",
            f.facets[0].details
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(10));
        let module = "@Module({ imports: [ThrottlerModule.forRoot([{ ttl: 60000, limit: 10 }])] })\nexport class AppModule {}\n";
        let f = run(
            &NestJs,
            &[(
                "src/app.module.ts",
                Some(module),
                Some(&module.replace("limit: 10", "limit: 20")),
            )],
        );
        assert_eq!(kinds(&f), vec!["api-rate-limit-changed"]);
        assert!(
            f.facets[0]
                .details
                .starts_with("ThrottlerModule.forRoot: rate limit")
        );
    }

    #[test]
    fn events_added_removed_and_transports() {
        let head = GW_TS.replace(
            "  send() {}\n",
            "  send() {}\n\n  @SubscribeMessage('typing')\n  typing() {}\n",
        );
        let f = run(&NestJs, &[(GW, Some(GW_TS), Some(&head))]);
        assert_eq!(kinds(&f), vec!["api-event-added"]);
        assert_eq!(
            f.facets[0].details,
            "Socket.IO event \"typing\" on namespace /chat (ChatGateway.typing)"
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(6));
        let f = run(&NestJs, &[(GW, Some(&head), Some(GW_TS))]);
        assert_eq!(kinds(&f), vec!["api-event-removed"]);
        let f = run(
            &NestJs,
            &[(GW, Some(GW_TS), Some(&GW_TS.replace(", 'polling'", "")))],
        );
        assert_eq!(kinds(&f), vec!["protocol-changed"]);
        assert!(
            f.facets[0]
                .details
                .contains("['websocket', 'polling'] → ['websocket']")
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

    #[test]
    fn new_controller_file_adds_its_routes() {
        let f = run(
            &NestJs,
            &[
                (MAIN, Some(MAIN_TS), Some(MAIN_TS)),
                (CTRL, None, Some(CTRL_TS)),
            ],
        );
        assert_eq!(
            kinds(&f),
            vec![
                "api-endpoint-added",
                "api-endpoint-added",
                "api-rate-limit-changed"
            ]
        );
    }

    #[test]
    fn unrelated_and_broken_sources() {
        let f = run(
            &NestJs,
            &[(
                "src/util.ts",
                Some("export const a = 1;\n"),
                Some("export const a = 2;\n"),
            )],
        );
        assert!(f.facets.is_empty());
        let f = ctrl(&CTRL_TS.replace("  list() {", "  list( {"));
        assert_eq!(kinds(&f), vec!["unparseable"]);
        assert_eq!(f.facets[0].evidence[0].side, Side::Head);
        assert!(f.facets[0].evidence[0].line.is_some());
    }
}

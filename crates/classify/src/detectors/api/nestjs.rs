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
//! Without an OpenAPI file the shapes are read from TypeScript ([`types`]): a handler's declared
//! return type, and DTO classes and interfaces (fields, `?:`, class-validator `@IsOptional()`).
//! Protocol options in code (`http2: true` in the Nest/Fastify bootstrap, Socket.IO
//! `transports` / `allowEIO3` given to an adapter or server) are `protocol-changed`.
//!
//! This detector never marks files as explained: a controller change is also a code change, left
//! to the code/coverage detectors. A Socket.IO *major* upgrade is the dependency detector's job;
//! here only a gateway's `transports` option counts as `protocol-changed`.

//!
//! One file per rule family, each with its tests: [`routes`], [`events`] (events, rate limits,
//! transports), [`bootstrap`] (the `main.ts` every route depends on).

mod bootstrap;
mod events;
mod routes;
mod types;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Mutex;

use changegate_policy::facets::FacetCode;

use self::bootstrap::{Bootstrap, Bootstraps};
use crate::facet::{evidence_line, unparseable_at};
use crate::parse::nest_ts::{self as ts, NestFile};
use crate::parse::ts_shared;
use crate::util::{as_text, per_file};
use crate::{Change, ChangedFile, Detector, FileStatus, Finding, Side};
use oxc_allocator::Allocator;

/// The NestJS detector.
pub struct NestJs;

const ID: &str = "api-nestjs";

const FACETS: &[FacetCode] = &[
    FacetCode::ApiResponseFieldAdded,
    FacetCode::ApiFieldRequired,
    FacetCode::ApiFieldRelaxed,
    FacetCode::ApiFieldTypeChanged,
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

    fn splits_files(&self) -> bool {
        true
    }

    fn detect(&self, change: &Change<'_>) -> Finding {
        let boots = Bootstraps {
            contents: change.contents,
            cache: Mutex::new(HashMap::default()),
            walks: Mutex::new(HashMap::default()),
        };
        // Files in parallel (merged in file order, as on one thread); the bootstrap cache is
        // shared by the workers.
        // Each job reuses one parser arena.
        per_file(
            change.files,
            <(Allocator, Allocator)>::default,
            |arenas, f, finding| file(change, &boots, arenas, f, finding),
        )
    }
}

/// One changed file: its routes, events, settings, types and protocol options, both sides.
fn file(
    change: &Change<'_>,
    boots: &Bootstraps<'_>,
    arenas: &mut (Allocator, Allocator),
    f: &ChangedFile,
    finding: &mut Finding,
) {
    if f.submodule || !(is_ts_source(&f.path) || is_ts_source(f.base_path())) || change.is_binary(f)
    {
        return;
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
        // Not a NestJS module: nothing here for this detector. In a pass, docs (which starts
        // once this detector returns) asks of each modified source whether its edit is
        // comment-only; answered here, on the pool, while the file is at hand, so docs does not
        // parse the files one after another at the end. The same inputs docs would parse: both
        // sides as UTF-8 text, the test docs applies.
        if let (Some(p), Some(b), Some(h)) = (change.parses, &bbytes, &hbytes)
            && f.status == FileStatus::Modified
            && let (Ok(b), Ok(h)) = (std::str::from_utf8(b), std::str::from_utf8(h))
            && ts_shared::same_answers(&f.path, b, h)
        {
            let _ = p.same(&f.path, b, h, arenas);
        }
        return;
    }
    let text = |b: Option<std::borrow::Cow<'_, [u8]>>| -> Option<Result<String, String>> {
        b.map(|b| as_text(&b).map(str::to_string))
    };
    let (btext, htext) = (text(bbytes), text(hbytes));
    // A file modified in place is parsed once for this detector and docs (both sides read as
    // text above, so this detector's own reads are what its watcher saw).
    let shared = match (&btext, &htext, change.parses) {
        (Some(Ok(b)), Some(Ok(h)), Some(p))
            if f.status == FileStatus::Modified && ts_shared::shared_path(&f.path) =>
        {
            Some(p.nest(&f.path, b, h, arenas))
        }
        _ => None,
    };
    let mut shared = shared.map(|[b, h]| [Some(b), Some(h)]);
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
            Some(Ok(text)) => match shared
                .as_mut()
                .and_then(|s| s[usize::from(side == Side::Head)].take())
                .unwrap_or_else(|| ts::read_in(&mut arenas.0, &text))
            {
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
        return;
    }
    let (base, btext) = (&sides[0].1, sides[0].2.as_str());
    let (head, htext) = (&sides[1].1, sides[1].2.as_str());
    let ctx = FileCtx {
        bpath: f.base_path(),
        hpath: &f.path,
        btext,
        htext,
    };
    // The bootstrap only shapes routes: a file that declares none on either side (a DTO, a
    // gateway, a module) does not depend on any `main.ts`, which is then not looked up
    // (looking it up walked the tree once per parent directory).
    if !(base.routes.is_empty() && head.routes.is_empty()) {
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
        ctx.routes(base, head, &bboot, &hboot, &mut finding.facets);
    }
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
    if f.status != FileStatus::Added && f.status != FileStatus::Deleted {
        ctx.types(base, head, &mut finding.facets);
        ctx.protocol(base, head, &mut finding.facets);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testing::{kinds, run};

    pub(super) const MAIN: &str = "src/main.ts";
    pub(super) const MAIN_TS: &str = r#"import { NestFactory } from '@nestjs/core';
import { VersioningType } from '@nestjs/common';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.setGlobalPrefix('api');
  app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
  await app.listen(3000);
}
bootstrap();
"#;
    pub(super) const CTRL: &str = "src/messages/messages.controller.ts";
    pub(super) const CTRL_TS: &str = r#"import { Body, Controller, Get, Post } from '@nestjs/common';

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
    pub(super) const GW: &str = "src/chat/chat.gateway.ts";
    pub(super) const GW_TS: &str = r#"@WebSocketGateway({ namespace: '/chat', transports: ['websocket', 'polling'] })
export class ChatGateway {
  @SubscribeMessage('message:send')
  send() {}
}
"#;

    pub(super) fn ctrl(head: &str) -> Finding {
        run(
            &NestJs,
            &[
                (MAIN, Some(MAIN_TS), Some(MAIN_TS)),
                (CTRL, Some(CTRL_TS), Some(head)),
            ],
        )
    }

    /// The bootstrap shapes routes only: a changed DTO does not read any `main.ts`, a changed
    /// controller does.
    #[test]
    fn bootstrap_is_read_only_for_files_with_routes() {
        struct Counting {
            inner: crate::MapContents,
            reads: Mutex<Vec<String>>,
        }
        impl crate::Contents for Counting {
            fn base(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
                self.reads.lock().unwrap().push(path.to_string());
                self.inner.base(path)
            }
            fn head(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
                self.reads.lock().unwrap().push(path.to_string());
                self.inner.head(path)
            }
        }
        let dto = "src/messages/dto/create-message.dto.ts";
        let dto_ts = "export class CreateMessageDto {\n  @IsString()\n  text: string;\n}\n";
        let settings = crate::detectors::testing::default_settings();
        for (path, base, head, reads_main) in [
            (
                dto,
                dto_ts,
                dto_ts.replace("text: string", "text: number"),
                false,
            ),
            (
                CTRL,
                CTRL_TS,
                CTRL_TS.replace("@Get()", "@Get('all')"),
                true,
            ),
        ] {
            let inner = crate::MapContents::default()
                .with_base(MAIN, MAIN_TS)
                .with_head(MAIN, MAIN_TS)
                .with_base(path, base)
                .with_head(path, head.as_str());
            let files = inner.changed_files();
            let c = Counting {
                inner,
                reads: Mutex::new(Vec::new()),
            };
            let f = NestJs.detect(&Change {
                files: &files,
                contents: &c,
                settings: &settings,
                parses: None,
            });
            assert!(!f.facets.is_empty(), "{path}: {f:?}");
            let read_main = c
                .reads
                .lock()
                .unwrap()
                .iter()
                .any(|p| p.ends_with("main.ts"));
            assert_eq!(read_main, reads_main, "{path}");
        }
    }

    #[test]
    pub(super) fn unrelated_and_broken_sources() {
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

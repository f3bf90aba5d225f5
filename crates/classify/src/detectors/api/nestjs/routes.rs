//! REST routes: `METHOD /path` assembled from the controller, the method decorator, versions and
//! the bootstrap, compared as multisets (added, removed).

use std::collections::BTreeMap;

use changegate_policy::facets::FacetCode;

use super::bootstrap::Bootstrap;
use super::{FileCtx, ID};
use crate::facet::facet;
use crate::parse::nest_ts::{NestFile, Route};
use crate::{Facet, Side};

impl FileCtx<'_> {
    pub(super) fn routes(
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;
    use crate::detectors::testing::{kinds, run};

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
}

//! Socket.IO events (added, removed) and per-route or per-gateway settings: rate limits and
//! transports.

use std::collections::BTreeMap;

use changegate_policy::facets::FacetCode;

use super::{FileCtx, ID};
use crate::facet::facet;
use crate::parse::nest_ts::{self as ts, NestFile, Setting};
use crate::{Facet, Side};

impl FileCtx<'_> {
    pub(super) fn events(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
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

    pub(super) fn settings(
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;
    use crate::detectors::testing::{kinds, run};

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
}

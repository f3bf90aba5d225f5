//! Operations: matched by method and path template (server base path included), added or
//! removed; the walk of every operation the two versions share.

use std::collections::BTreeSet;

use changegate_policy::facets::FacetCode;
use serde_json::Value;

use super::schemas::Dir;
use super::{ID, METHODS};
use crate::facet::{evidence_line, facet};
use crate::{Facet, Side};

pub(super) struct DocDiff<'a> {
    pub(super) bpath: &'a str,
    pub(super) hpath: &'a str,
    pub(super) btext: &'a str,
    pub(super) htext: &'a str,
    pub(super) bdoc: &'a Value,
    pub(super) hdoc: &'a Value,
    pub(super) facets: Vec<Facet>,
}

impl DocDiff<'_> {
    pub(super) fn push(&mut self, kind: FacetCode, details: String, side: Side, keys: &[String]) {
        let (path, text) = match side {
            Side::Base => (self.bpath, self.btext),
            Side::Head => (self.hpath, self.htext),
        };
        let line = locate(text, keys);
        self.facets.push(facet(
            ID,
            kind,
            details,
            vec![evidence_line(path, side, Some(text), line)],
        ));
    }

    pub(super) fn run(&mut self) {
        let bops = operations(self.bdoc);
        let hops = operations(self.hdoc);
        // Operations are identified by their full path: the first server's base path + the path.
        let (bpre, hpre) = (server_prefix(self.bdoc), server_prefix(self.hdoc));
        let bkey = |p: &str, m: &str| format!("{m} {}", route_key(&format!("{bpre}{p}")));
        let hkey = |p: &str, m: &str| format!("{m} {}", route_key(&format!("{hpre}{p}")));
        let bkeys: BTreeSet<String> = bops.iter().map(|(p, m, _)| bkey(p, m)).collect();
        let hkeys: BTreeSet<String> = hops.iter().map(|(p, m, _)| hkey(p, m)).collect();
        for (p, m, _) in &hops {
            if !bkeys.contains(&hkey(p, m)) {
                let keys = vec!["paths".into(), p.clone(), m.clone()];
                self.push(
                    FacetCode::ApiEndpointAdded,
                    format!("{} {hpre}{p}", m.to_uppercase()),
                    Side::Head,
                    &keys,
                );
            }
        }
        for (p, m, _) in &bops {
            if !hkeys.contains(&bkey(p, m)) {
                let keys = vec!["paths".into(), p.clone(), m.clone()];
                self.push(
                    FacetCode::ApiEndpointRemoved,
                    format!("{} {bpre}{p}", m.to_uppercase()),
                    Side::Base,
                    &keys,
                );
            }
        }
        for (hp, m, hop) in &hops {
            let Some((bp, _, bop)) = bops.iter().find(|(bp, bm, _)| bkey(bp, bm) == hkey(hp, m))
            else {
                continue;
            };
            let op = format!("{} {hpre}{hp}", m.to_uppercase());
            let base_keys = vec!["paths".to_string(), bp.clone(), m.clone()];
            let head_keys = vec!["paths".to_string(), hp.clone(), m.clone()];
            self.parameters(&op, bop, hop, &head_keys);
            // Request body.
            if let (Some(bb), Some(hb)) = (bop.get("requestBody"), hop.get("requestBody")) {
                let mut bk = base_keys.clone();
                bk.push("requestBody".into());
                let mut hk = head_keys.clone();
                hk.push("requestBody".into());
                self.content(&format!("{op} request"), bb, hb, &bk, &hk, Dir::Request);
            }
            // Responses, status by status.
            let (Some(br), Some(hr)) = (
                bop.get("responses").and_then(Value::as_object),
                hop.get("responses").and_then(Value::as_object),
            ) else {
                continue;
            };
            for (code, hresp) in hr {
                let Some(bresp) = br.get(code) else { continue };
                let mut bk = base_keys.clone();
                bk.extend(["responses".to_string(), code.clone()]);
                let mut hk = head_keys.clone();
                hk.extend(["responses".to_string(), code.clone()]);
                self.content(
                    &format!("{op} → {code}"),
                    bresp,
                    hresp,
                    &bk,
                    &hk,
                    Dir::Response,
                );
            }
        }
    }
}

/// Path template with parameter names dropped.
pub(super) fn route_key(p: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth -= 1;
                out.push('}');
            }
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    out
}

pub(super) fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (p, item) in paths {
            for m in METHODS {
                if let Some(op) = item.get(*m) {
                    out.push((p.clone(), (*m).to_string(), op));
                }
            }
        }
    }
    out
}

/// The path part of the first `servers[].url` (`https://x/api/v1` → `/api/v1`), without a
/// trailing `/`; empty when there is none.
pub(super) fn server_prefix(doc: &Value) -> String {
    let Some(url) = doc.pointer("/servers/0/url").and_then(Value::as_str) else {
        return String::new();
    };
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None => url,
    };
    path.trim_end_matches('/').to_string()
}

/// Find the line of the last key of `keys`, searching each key after the previous one.
pub(super) fn locate(text: &str, keys: &[String]) -> Option<u32> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut found = None;
    for k in keys {
        let candidates = if k.contains(": ") {
            vec![k.clone(), k.replacen(": ", "\": \"", 1)]
        } else {
            vec![
                format!("{k}:"),
                format!("\"{k}\":"),
                format!("'{k}':"),
                format!("\"{k}\" :"),
            ]
        };
        let hit = (from..lines.len()).find(|&i| {
            let t = lines[i].trim_start().trim_start_matches("- ");
            candidates.iter().any(|c| t.starts_with(c.as_str()))
        });
        if let Some(i) = hit {
            from = i + 1;
            found = Some(i);
        }
    }
    found.and_then(|i| u32::try_from(i + 1).ok())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, P, one};
    use super::super::*;
    use crate::detectors::testing::{kinds, run};

    #[test]
    fn operation_added_and_removed() {
        let head = BASE.replace(
            "  /api/v1/messages/{id}:\n",
            "  /api/v1/rooms:\n    post:\n      responses:\n        '201':\n          description: ok\n  /api/v1/messages/{id}:\n",
        );
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["api-endpoint-added"]);
        assert_eq!(f.facets[0].details, "POST /api/v1/rooms");
        assert_eq!(f.facets[0].evidence[0].line, Some(43));
        let f = run(&OpenApi, &[(P, Some(&head), Some(BASE))]);
        assert_eq!(kinds(&f), vec!["api-endpoint-removed"]);
        assert_eq!(f.facets[0].evidence[0].side, Side::Base);
        assert!(f.explained.contains(P));
    }

    #[test]
    fn parameter_names_do_not_change_the_route() {
        let f = one(&BASE.replace("/api/v1/messages/{id}:", "/api/v1/messages/{messageId}:"));
        assert_eq!(kinds(&f), Vec::<&str>::new());
        assert!(
            f.explained.is_empty(),
            "a changed document without facets is left unclassified"
        );
    }

    #[test]
    fn server_base_path_is_part_of_the_route() {
        let json = |server: &str| {
            format!(
                r#"{{"openapi": "3.0.0", "servers": [{{"url": "{server}"}}], "paths": {{"/health": {{"get": {{"responses": {{}}}}}}}}}}"#
            )
        };
        let f = run(
            &OpenApi,
            &[(
                "openapi.json",
                None,
                Some(&json("https://api.example.com/api/v1/")),
            )],
        );
        assert_eq!(f.facets[0].details, "GET /api/v1/health");
        let f = run(
            &OpenApi,
            &[(
                "openapi.json",
                Some(&json("https://a.example.com/api/v1")),
                Some(&json("https://b.example.com/api/v1")),
            )],
        );
        assert!(
            f.facets
                .iter()
                .all(|f| !f.kind.as_str().starts_with("api-endpoint")),
            "same base path: {:?}",
            f.facets
        );
        let f = run(
            &OpenApi,
            &[(
                "openapi.json",
                Some(&json("/api/v1")),
                Some(&json("/api/v2")),
            )],
        );
        assert_eq!(
            kinds(&f),
            vec!["api-endpoint-added", "api-endpoint-removed"]
        );
    }
}

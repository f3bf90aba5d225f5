//! OpenAPI 3 document diff: operations added or removed, response fields added, retyped, made
//! required or optional; request fields and parameters made required or optional.
//!
//! Why a structural diff: what breaks a client is a removed operation, a response property whose
//! type changed, or a field that became required — not which lines moved. Both versions are
//! parsed (JSON with serde_json, YAML with serde-saphyr, which enforces input budgets) into
//! values; operations are matched by method and path template (parameter names ignored: `/u/{id}`
//! and `/u/{userId}` are the same route); schemas are walked with local `$ref`s resolved (cycles
//! cut). Line numbers come from locating the keys of the walked path in the text, since neither
//! value type keeps positions.
//!
//! Required-ness follows the policy's wording for every location: optional → required is
//! `api-field-required`, required → optional is `api-field-relaxed`. A property removed from a
//! response, or a response type change, is `api-field-type-changed` (the policy's "response schema
//! change"). A document that changed only in descriptions, summaries, examples, tags or `x-`
//! extensions is `docs-only`; any other change with no facet is left to the `unclassified`
//! fallback.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::schema_util::{as_text, evidence, facet, first_diff_line, unparseable};
use crate::{Change, Detector, Facet, FileStatus, Finding, Side};

/// The OpenAPI detector.
pub struct OpenApi;

const ID: &str = "api-openapi";

const FACETS: &[&str] = &[
    "api-endpoint-added",
    "api-endpoint-removed",
    "api-response-field-added",
    "api-field-type-changed",
    "api-field-required",
    "api-field-relaxed",
    "docs-only",
    "unparseable",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Whether a path looks like an OpenAPI document by name.
pub(crate) fn is_openapi_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_lowercase();
    name.starts_with("openapi")
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
}

fn parse_doc(path: &str, text: &str) -> Result<Value, (Option<u32>, String)> {
    if path.to_lowercase().ends_with(".json") {
        serde_json::from_str(text).map_err(|e| {
            (
                u32::try_from(e.line()).ok().filter(|l| *l > 0),
                e.to_string(),
            )
        })
    } else {
        serde_saphyr::from_str::<Value>(text).map_err(|e| {
            let line = e
                .location()
                .and_then(|l| u32::try_from(l.line()).ok())
                .filter(|l| *l > 0);
            let msg = e.to_string();
            (line, msg.lines().next().unwrap_or(&msg).to_string())
        })
    }
}

fn is_openapi3(v: &Value) -> bool {
    v.get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with('3'))
}

impl Detector for OpenApi {
    fn id(&self) -> &'static str {
        ID
    }

    fn description(&self) -> &'static str {
        "OpenAPI 3 diff: operations added/removed, response fields added/retyped, fields made required/optional"
    }

    fn facets(&self) -> &'static [&'static str] {
        FACETS
    }

    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut finding = Finding::default();
        for f in change.files {
            if f.submodule
                || !(is_openapi_path(&f.path) || is_openapi_path(f.base_path()))
                || change.is_binary(f)
            {
                continue;
            }
            let load = |side: Side| -> Option<Result<(String, Value), Facet>> {
                let (path, bytes) = match side {
                    Side::Base if f.status != FileStatus::Added => {
                        (f.base_path(), change.contents.base(f.base_path())?)
                    }
                    Side::Head if f.status != FileStatus::Deleted => {
                        (f.path.as_str(), change.contents.head(&f.path)?)
                    }
                    _ => return None,
                };
                let text = match as_text(&bytes) {
                    Ok(t) => t.to_string(),
                    Err(e) => {
                        return Some(Err(unparseable(
                            ID,
                            path,
                            side,
                            None,
                            "OpenAPI document",
                            &e,
                        )));
                    }
                };
                Some(match parse_doc(path, &text) {
                    Ok(v) => Ok((text, v)),
                    Err((line, msg)) => {
                        Err(unparseable(ID, path, side, line, "OpenAPI document", &msg))
                    }
                })
            };
            let base = load(Side::Base);
            let head = load(Side::Head);
            let mut failed = false;
            for r in [&base, &head] {
                if let Some(Err(u)) = r {
                    failed = true;
                    finding.facets.push(u.clone());
                }
            }
            if failed {
                continue;
            }
            let empty = (String::new(), Value::Null);
            let (btext, bdoc) = match &base {
                Some(Ok(x)) => (x.0.as_str(), &x.1),
                _ => (empty.0.as_str(), &empty.1),
            };
            let (htext, hdoc) = match &head {
                Some(Ok(x)) => (x.0.as_str(), &x.1),
                _ => (empty.0.as_str(), &empty.1),
            };
            if !is_openapi3(bdoc) && !is_openapi3(hdoc) {
                continue; // not an OpenAPI 3 document (Swagger 2, unrelated JSON): not ours
            }
            let mut d = DocDiff {
                bpath: f.base_path(),
                hpath: &f.path,
                btext,
                htext,
                bdoc,
                hdoc,
                facets: Vec::new(),
            };
            d.run();
            let explained = if d.facets.is_empty() {
                if strip(bdoc) == strip(hdoc) {
                    d.facets.push(facet(
                        ID,
                        "docs-only",
                        "OpenAPI: only descriptions, summaries, examples, tags or extensions changed",
                        evidence(&f.path, Side::Head, Some(htext), Some(first_diff_line(btext, htext))),
                    ));
                    true
                } else {
                    false
                }
            } else {
                true
            };
            if explained {
                finding.explained.insert(f.path.clone());
            }
            finding.facets.extend(d.facets);
        }
        finding
    }
}

/// The document without documentation-only keys.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description"
                            | "summary"
                            | "example"
                            | "examples"
                            | "externalDocs"
                            | "tags"
                            | "info"
                    ) && !k.starts_with("x-")
                })
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Path template with parameter names dropped.
fn route_key(p: &str) -> String {
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

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
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
fn server_prefix(doc: &Value) -> String {
    let Some(url) = doc.pointer("/servers/0/url").and_then(Value::as_str) else {
        return String::new();
    };
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None => url,
    };
    path.trim_end_matches('/').to_string()
}

/// Request or response: decides what an added or removed property means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

struct DocDiff<'a> {
    bpath: &'a str,
    hpath: &'a str,
    btext: &'a str,
    htext: &'a str,
    bdoc: &'a Value,
    hdoc: &'a Value,
    facets: Vec<Facet>,
}

/// A schema with the document keys that lead to it (for locating a line).
#[derive(Clone)]
struct At<'a> {
    v: &'a Value,
    keys: Vec<String>,
}

fn resolve<'a>(doc: &'a Value, at: At<'a>, seen: &mut Vec<String>) -> Option<At<'a>> {
    let mut cur = at;
    for _ in 0..16 {
        let Some(r) = cur.v.get("$ref").and_then(Value::as_str) else {
            return Some(cur);
        };
        let ptr = r.strip_prefix('#')?; // only local references
        if seen.iter().any(|s| s == r) {
            return None; // a cycle: stop here
        }
        seen.push(r.to_string());
        let v = doc.pointer(ptr)?;
        let keys = ptr
            .split('/')
            .skip(1)
            .map(|k| k.replace("~1", "/").replace("~0", "~"))
            .collect();
        cur = At { v, keys };
    }
    None
}

fn type_sig(v: &Value) -> String {
    let mut t = match v.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => {
            let mut parts: Vec<String> = a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            parts.sort();
            parts.join("|")
        }
        _ if v.get("properties").is_some() => "object".to_string(),
        _ => {
            for k in ["oneOf", "anyOf", "allOf"] {
                if v.get(k).is_some() {
                    return k.to_string();
                }
            }
            String::new()
        }
    };
    if let Some(f) = v.get("format").and_then(Value::as_str) {
        t.push_str(&format!(" ({f})"));
    }
    if v.get("nullable").and_then(Value::as_bool) == Some(true) {
        t.push_str(" nullable");
    }
    if let Some(e) = v.get("enum") {
        t.push_str(&format!(" enum {e}"));
    }
    t
}

fn required_set(v: &Value) -> BTreeSet<String> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Find the line of the last key of `keys`, searching each key after the previous one.
fn locate(text: &str, keys: &[String]) -> Option<u32> {
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

impl DocDiff<'_> {
    fn push(&mut self, kind: &str, details: String, side: Side, keys: &[String]) {
        let (path, text) = match side {
            Side::Base => (self.bpath, self.btext),
            Side::Head => (self.hpath, self.htext),
        };
        let line = locate(text, keys);
        self.facets.push(facet(
            ID,
            kind,
            details,
            evidence(path, side, Some(text), line),
        ));
    }

    fn run(&mut self) {
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
                    "api-endpoint-added",
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
                    "api-endpoint-removed",
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

    fn parameters(&mut self, op: &str, bop: &Value, hop: &Value, hk: &[String]) {
        let list = |o: &Value| -> Vec<(String, String, bool, String)> {
            o.get("parameters")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| {
                            let name = p.get("name")?.as_str()?.to_string();
                            let loc = p.get("in")?.as_str()?.to_string();
                            let req = p
                                .get("required")
                                .and_then(Value::as_bool)
                                .unwrap_or(loc == "path");
                            let ty = p.get("schema").map(type_sig).unwrap_or_default();
                            Some((name, loc, req, ty))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (bl, hl) = (list(bop), list(hop));
        for (name, loc, req, ty) in &hl {
            let mut keys_named = hk.to_vec();
            keys_named.extend(["parameters".to_string(), format!("name: {name}")]);
            match bl.iter().find(|(n, l, _, _)| n == name && l == loc) {
                None if *req => self.push(
                    "api-field-required",
                    format!("{op}: new required {loc} parameter {name}"),
                    Side::Head,
                    &keys_named,
                ),
                None => {}
                Some((_, _, breq, bty)) => {
                    if !breq && *req {
                        self.push(
                            "api-field-required",
                            format!("{op}: {loc} parameter {name} optional → required"),
                            Side::Head,
                            &keys_named,
                        );
                    } else if *breq && !req {
                        self.push(
                            "api-field-relaxed",
                            format!("{op}: {loc} parameter {name} required → optional"),
                            Side::Head,
                            &keys_named,
                        );
                    }
                    if bty != ty {
                        self.push(
                            "api-field-type-changed",
                            format!("{op}: {loc} parameter {name}: {bty} → {ty}"),
                            Side::Head,
                            &keys_named,
                        );
                    }
                }
            }
        }
    }

    /// Compare `content.<media>.schema` of a request body or a response.
    fn content(
        &mut self,
        label: &str,
        b: &Value,
        h: &Value,
        bk: &[String],
        hk: &[String],
        dir: Dir,
    ) {
        let mut seen_b = Vec::new();
        let mut seen_h = Vec::new();
        let Some(b) = resolve(
            self.bdoc,
            At {
                v: b,
                keys: bk.to_vec(),
            },
            &mut seen_b,
        ) else {
            return;
        };
        let Some(h) = resolve(
            self.hdoc,
            At {
                v: h,
                keys: hk.to_vec(),
            },
            &mut seen_h,
        ) else {
            return;
        };
        let (Some(bc), Some(hc)) = (
            b.v.get("content").and_then(Value::as_object),
            h.v.get("content").and_then(Value::as_object),
        ) else {
            return;
        };
        for (media, hm) in hc {
            let Some(bm) = bc.get(media) else { continue };
            let (Some(bs), Some(hs)) = (bm.get("schema"), hm.get("schema")) else {
                continue;
            };
            let mut bkeys = b.keys.clone();
            bkeys.extend(["content".to_string(), media.clone(), "schema".to_string()]);
            let mut hkeys = h.keys.clone();
            hkeys.extend(["content".to_string(), media.clone(), "schema".to_string()]);
            self.schema(
                label,
                "",
                At { v: bs, keys: bkeys },
                At { v: hs, keys: hkeys },
                dir,
                &mut Vec::new(),
                0,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn schema(
        &mut self,
        label: &str,
        field: &str,
        b: At<'_>,
        h: At<'_>,
        dir: Dir,
        seen: &mut Vec<(String, String)>,
        depth: usize,
    ) {
        if depth > 24 {
            return;
        }
        let bref =
            b.v.get("$ref")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        let href =
            h.v.get("$ref")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        if !bref.is_empty() || !href.is_empty() {
            let pair = (bref, href);
            if seen.contains(&pair) {
                return;
            }
            seen.push(pair);
        }
        let Some(b) = resolve(self.bdoc, b, &mut Vec::new()) else {
            return;
        };
        let Some(h) = resolve(self.hdoc, h, &mut Vec::new()) else {
            return;
        };
        let name = if field.is_empty() {
            "body".to_string()
        } else {
            field.to_string()
        };
        let (bt, ht) = (type_sig(b.v), type_sig(h.v));
        if bt != ht {
            self.push(
                "api-field-type-changed",
                format!("{label}: {name}: {} → {}", show(&bt), show(&ht)),
                Side::Head,
                &h.keys,
            );
            return;
        }
        if let (Some(bi), Some(hi)) = (b.v.get("items"), h.v.get("items")) {
            let mut bk = b.keys.clone();
            bk.push("items".into());
            let mut hk = h.keys.clone();
            hk.push("items".into());
            self.schema(
                label,
                &format!("{name}[]"),
                At { v: bi, keys: bk },
                At { v: hi, keys: hk },
                dir,
                seen,
                depth + 1,
            );
        }
        let empty = Map::new();
        let bp =
            b.v.get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
        let hp =
            h.v.get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
        let (br, hr) = (required_set(b.v), required_set(h.v));
        let sub = |p: &str| {
            if field.is_empty() {
                p.to_string()
            } else {
                format!("{field}.{p}")
            }
        };
        let key_of = |keys: &[String], p: &str| {
            let mut k = keys.to_vec();
            k.extend(["properties".to_string(), p.to_string()]);
            k
        };
        for (p, hv) in hp {
            let hk = key_of(&h.keys, p);
            match bp.get(p) {
                None => match dir {
                    Dir::Response => {
                        let req = if hr.contains(p) {
                            "required"
                        } else {
                            "optional"
                        };
                        self.push(
                            "api-response-field-added",
                            format!(
                                "{label}: new {req} response field {} ({})",
                                sub(p),
                                show(&type_sig(hv))
                            ),
                            Side::Head,
                            &hk,
                        );
                    }
                    Dir::Request if hr.contains(p) => self.push(
                        "api-field-required",
                        format!("{label}: new required request field {}", sub(p)),
                        Side::Head,
                        &hk,
                    ),
                    Dir::Request => {}
                },
                Some(bv) => {
                    let bk = key_of(&b.keys, p);
                    if !br.contains(p) && hr.contains(p) {
                        self.push(
                            "api-field-required",
                            format!("{label}: {} optional → required", sub(p)),
                            Side::Head,
                            &hk,
                        );
                    } else if br.contains(p) && !hr.contains(p) {
                        self.push(
                            "api-field-relaxed",
                            format!("{label}: {} required → optional", sub(p)),
                            Side::Head,
                            &hk,
                        );
                    }
                    self.schema(
                        label,
                        &sub(p),
                        At { v: bv, keys: bk },
                        At { v: hv, keys: hk },
                        dir,
                        seen,
                        depth + 1,
                    );
                }
            }
        }
        if dir == Dir::Response {
            for p in bp.keys().filter(|p| !hp.contains_key(*p)) {
                let bk = key_of(&b.keys, p);
                self.push(
                    "api-field-type-changed",
                    format!("{label}: response field {} removed", sub(p)),
                    Side::Base,
                    &bk,
                );
            }
        }
    }
}

fn show(t: &str) -> &str {
    if t.is_empty() { "any" } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::schema_util::testing::{kinds, run};

    const P: &str = "api/openapi.yaml";

    const BASE: &str = r#"openapi: 3.0.3
info:
  title: Chat
  version: 1.0.0
paths:
  /api/v1/messages:
    get:
      summary: List messages
      parameters:
        - name: limit
          in: query
          schema:
            type: integer
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                type: array
                items:
                  $ref: '#/components/schemas/Message'
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [body]
              properties:
                body:
                  type: string
                roomId:
                  type: string
      responses:
        '201':
          description: created
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Message'
  /api/v1/messages/{id}:
    delete:
      responses:
        '204':
          description: gone
components:
  schemas:
    Message:
      type: object
      required: [id, body]
      properties:
        id:
          type: string
        body:
          type: string
        author:
          $ref: '#/components/schemas/User'
    User:
      type: object
      required: [id]
      properties:
        id:
          type: string
        friend:
          $ref: '#/components/schemas/User'
"#;

    fn one(head: &str) -> Finding {
        run(&OpenApi, &[(P, Some(BASE), Some(head))])
    }

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
    fn response_field_type_changed_through_refs() {
        let head = BASE.replace(
            "        body:\n          type: string\n        author:",
            "        body:\n          type: integer\n        author:",
        );
        let f = one(&head);
        assert_eq!(
            kinds(&f),
            vec!["api-field-type-changed", "api-field-type-changed"]
        );
        assert_eq!(
            f.facets[0].details,
            "GET /api/v1/messages → 200: body[].body: string → integer"
        );
        assert_eq!(
            f.facets[1].details,
            "POST /api/v1/messages → 201: body: string → integer"
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(55));
    }

    #[test]
    fn new_optional_response_field() {
        let head = BASE.replace("        author:\n          $ref", "        editedAt:\n          type: string\n          format: date-time\n        author:\n          $ref");
        let f = one(&head);
        assert_eq!(
            kinds(&f),
            vec!["api-response-field-added", "api-response-field-added"]
        );
        assert!(
            f.facets[1]
                .details
                .contains("new optional response field editedAt (string (date-time))"),
            "{}",
            f.facets[1].details
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(57));
    }

    #[test]
    fn optional_to_required_and_back() {
        let f = one(&BASE.replace(
            "              required: [body]\n",
            "              required: [body, roomId]\n",
        ));
        assert_eq!(kinds(&f), vec!["api-field-required"]);
        assert_eq!(
            f.facets[0].details,
            "POST /api/v1/messages request: roomId optional → required"
        );
        let f = one(&BASE.replace("              required: [body]\n", ""));
        assert_eq!(kinds(&f), vec!["api-field-relaxed"]);
        let f = one(&BASE.replace("      required: [id, body]\n", "      required: [id]\n"));
        assert_eq!(kinds(&f), vec!["api-field-relaxed", "api-field-relaxed"]);
    }

    #[test]
    fn removed_response_field_is_a_schema_change() {
        let f = one(&BASE.replace(
            "        author:\n          $ref: '#/components/schemas/User'\n",
            "",
        ));
        assert_eq!(
            kinds(&f),
            vec!["api-field-type-changed", "api-field-type-changed"]
        );
        assert!(
            f.facets[0]
                .details
                .contains("response field body[].author removed")
        );
        assert_eq!(f.facets[0].evidence[0].side, Side::Base);
    }

    #[test]
    fn parameter_made_required() {
        let f = one(&BASE.replace(
            "          in: query\n",
            "          in: query\n          required: true\n",
        ));
        assert_eq!(kinds(&f), vec!["api-field-required"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(10));
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
            f.facets.iter().all(|f| !f.kind.starts_with("api-endpoint")),
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

    #[test]
    fn description_only_is_docs_only() {
        let f = one(&BASE.replace("List messages", "List the messages of a room"));
        assert_eq!(kinds(&f), vec!["docs-only"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(8));
        assert!(f.explained.contains(P));
    }

    #[test]
    fn json_documents_and_new_files() {
        let json = r#"{"openapi": "3.1.0", "paths": {"/health": {"get": {"responses": {"200": {"description": "ok"}}}}}}"#;
        let f = run(&OpenApi, &[("openapi.json", None, Some(json))]);
        assert_eq!(kinds(&f), vec!["api-endpoint-added"]);
        assert_eq!(f.facets[0].details, "GET /health");
        let f = run(
            &OpenApi,
            &[("openapi.json", None, Some(r#"{"swagger": "2.0"}"#))],
        );
        assert!(f.facets.is_empty() && f.explained.is_empty());
    }

    #[test]
    fn malformed_documents_are_unparseable() {
        let f = one("openapi: 3.0.0\npaths:\n  /x: [unclosed\n");
        assert_eq!(kinds(&f), vec!["unparseable"]);
        assert!(f.facets[0].evidence[0].line.is_some());
        assert!(f.explained.is_empty());
        let f = run(
            &OpenApi,
            &[("openapi.json", Some("{}"), Some("{\"openapi\": "))],
        );
        assert_eq!(kinds(&f), vec!["unparseable"]);
    }

    #[test]
    fn recursive_refs_terminate() {
        let head = BASE.replace("        friend:\n          $ref: '#/components/schemas/User'\n", "        friend:\n          $ref: '#/components/schemas/User'\n        nick:\n          type: string\n");
        let f = one(&head);
        assert!(
            kinds(&f).iter().all(|k| *k == "api-response-field-added"),
            "{:?}",
            kinds(&f)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let doc = format!("openapi: 3.0.0\n{text}");
            let _ = run(&OpenApi, &[(P, Some(BASE), Some(&doc))]);
            let _ = run(&OpenApi, &[("openapi.json", Some("{}"), Some(&text))]);
        }
    }
}

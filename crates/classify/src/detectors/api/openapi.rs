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

//!
//! One file per rule family, each with its tests: [`operations`] (routes added or removed),
//! [`parameters`], [`schemas`] (request and response bodies).

mod operations;
mod parameters;
mod schemas;

use changegate_policy::facets::FacetCode;
use serde_json::Value;

use self::operations::DocDiff;
use crate::facet::{evidence_line, facet, unparseable_at};
use crate::util::{as_text, first_diff_line};
use crate::{Change, Detector, Facet, FileStatus, Finding, Side};

/// The OpenAPI detector.
pub struct OpenApi;

const ID: &str = "api-openapi";

const FACETS: &[FacetCode] = &[
    FacetCode::ApiEndpointAdded,
    FacetCode::ApiEndpointRemoved,
    FacetCode::ApiResponseFieldAdded,
    FacetCode::ApiFieldTypeChanged,
    FacetCode::ApiFieldRequired,
    FacetCode::ApiFieldRelaxed,
    FacetCode::DocsOnly,
    FacetCode::Unparseable,
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

    fn facets(&self) -> &'static [FacetCode] {
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
                        return Some(Err(unparseable_at(
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
                    Err((line, msg)) => Err(unparseable_at(
                        ID,
                        path,
                        side,
                        line,
                        "OpenAPI document",
                        &msg,
                    )),
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
                        FacetCode::DocsOnly,
                        "OpenAPI: only descriptions, summaries, examples, tags or extensions changed",
                        vec![evidence_line(&f.path, Side::Head, Some(htext), Some(first_diff_line(btext, htext)))],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testing::{kinds, run};

    pub(super) const P: &str = "api/openapi.yaml";

    pub(super) const BASE: &str = r#"openapi: 3.0.3
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

    pub(super) fn one(head: &str) -> Finding {
        run(&OpenApi, &[(P, Some(BASE), Some(head))])
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

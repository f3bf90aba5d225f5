//! Request and response bodies: schemas walked with local `$ref`s resolved (cycles cut); fields
//! added, removed, retyped, made required or optional.

use std::collections::BTreeSet;

use changegate_policy::facets::FacetCode;
use serde_json::{Map, Value};

use super::operations::DocDiff;
use crate::Side;

/// Request or response: decides what an added or removed property means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Request,
    Response,
}

/// A schema with the document keys that lead to it (for locating a line).
#[derive(Clone)]
pub(super) struct At<'a> {
    pub(super) v: &'a Value,
    pub(super) keys: Vec<String>,
}

pub(super) fn resolve<'a>(doc: &'a Value, at: At<'a>, seen: &mut Vec<String>) -> Option<At<'a>> {
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

pub(super) fn type_sig(v: &Value) -> String {
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

pub(super) fn required_set(v: &Value) -> BTreeSet<String> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn show(t: &str) -> &str {
    if t.is_empty() { "any" } else { t }
}

impl DocDiff<'_> {
    /// Compare `content.<media>.schema` of a request body or a response.
    pub(super) fn content(
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
    pub(super) fn schema(
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
                FacetCode::ApiFieldTypeChanged,
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
                            FacetCode::ApiResponseFieldAdded,
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
                        FacetCode::ApiFieldRequired,
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
                            FacetCode::ApiFieldRequired,
                            format!("{label}: {} optional → required", sub(p)),
                            Side::Head,
                            &hk,
                        );
                    } else if br.contains(p) && !hr.contains(p) {
                        self.push(
                            FacetCode::ApiFieldRelaxed,
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
                    FacetCode::ApiFieldTypeChanged,
                    format!("{label}: response field {} removed", sub(p)),
                    Side::Base,
                    &bk,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, one};
    use super::super::*;
    use crate::detectors::testing::kinds;

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
    fn recursive_refs_terminate() {
        let head = BASE.replace("        friend:\n          $ref: '#/components/schemas/User'\n", "        friend:\n          $ref: '#/components/schemas/User'\n        nick:\n          type: string\n");
        let f = one(&head);
        assert!(
            kinds(&f).iter().all(|k| *k == "api-response-field-added"),
            "{:?}",
            kinds(&f)
        );
    }
}

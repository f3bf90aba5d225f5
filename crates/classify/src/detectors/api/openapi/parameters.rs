//! Parameters: made required or optional, added required.

use changegate_policy::facets::FacetCode;
use serde_json::Value;

use super::operations::DocDiff;
use super::schemas::type_sig;
use crate::Side;

impl DocDiff<'_> {
    pub(super) fn parameters(&mut self, op: &str, bop: &Value, hop: &Value, hk: &[String]) {
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
                    FacetCode::ApiFieldRequired,
                    format!("{op}: new required {loc} parameter {name}"),
                    Side::Head,
                    &keys_named,
                ),
                None => {}
                Some((_, _, breq, bty)) => {
                    if !breq && *req {
                        self.push(
                            FacetCode::ApiFieldRequired,
                            format!("{op}: {loc} parameter {name} optional → required"),
                            Side::Head,
                            &keys_named,
                        );
                    } else if *breq && !req {
                        self.push(
                            FacetCode::ApiFieldRelaxed,
                            format!("{op}: {loc} parameter {name} required → optional"),
                            Side::Head,
                            &keys_named,
                        );
                    }
                    if bty != ty {
                        self.push(
                            FacetCode::ApiFieldTypeChanged,
                            format!("{op}: {loc} parameter {name}: {bty} → {ty}"),
                            Side::Head,
                            &keys_named,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, one};
    use crate::detectors::testing::kinds;

    #[test]
    fn parameter_made_required() {
        let f = one(&BASE.replace(
            "          in: query\n",
            "          in: query\n          required: true\n",
        ));
        assert_eq!(kinds(&f), vec!["api-field-required"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(10));
    }
}

//! Request and response shapes read from TypeScript (no OpenAPI file needed): DTO classes and
//! interfaces, compared field by field as the OpenAPI detector compares schemas, and the declared
//! return types of route handlers; plus protocol options written in code.
//!
//! The rows: a response field added → `api-response-field-added`; removed or retyped →
//! `api-field-type-changed` ("changing response schemas"); a request field made required (or a
//! new required one) → `api-field-required`; required → optional → `api-field-relaxed`; a
//! handler's return type changed → `api-field-type-changed`. A DTO is matched by name on both
//! sides of the same file; one renamed or moved reads as removed plus added, which only ever errs
//! towards a higher category.

use std::collections::BTreeMap;

use changegate_policy::facets::FacetCode;

use super::{FileCtx, ID};
use crate::facet::facet;
use crate::parse::nest_ts::{NestFile, Setting, TypeDecl};
use crate::{Facet, Side};

impl FileCtx<'_> {
    pub(super) fn types(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
        let by_name = |f: &'_ NestFile| -> BTreeMap<String, TypeDecl> {
            f.types
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect()
        };
        let (bt, ht) = (by_name(base), by_name(head));
        for (name, b) in &bt {
            let Some(h) = ht.get(name) else {
                if !b.request {
                    out.push(facet(
                        ID,
                        FacetCode::ApiFieldTypeChanged,
                        format!("response type {name} removed"),
                        vec![self.at(Side::Base, b.line)],
                    ));
                }
                continue;
            };
            let request = b.request || h.request;
            let dir = if request { "request" } else { "response" };
            for hf in &h.fields {
                match b.fields.iter().find(|f| f.name == hf.name) {
                    None if request && !hf.optional => out.push(facet(
                        ID,
                        FacetCode::ApiFieldRequired,
                        format!("{name}: new required request field {} ({})", hf.name, hf.ty),
                        vec![self.at(Side::Head, hf.line)],
                    )),
                    None if request => {}
                    None => out.push(facet(
                        ID,
                        FacetCode::ApiResponseFieldAdded,
                        format!(
                            "{name}: new {} response field {} ({})",
                            if hf.optional { "optional" } else { "required" },
                            hf.name,
                            hf.ty
                        ),
                        vec![self.at(Side::Head, hf.line)],
                    )),
                    Some(bf) => {
                        if bf.optional && !hf.optional {
                            out.push(facet(
                                ID,
                                FacetCode::ApiFieldRequired,
                                format!("{name}: {dir} field {} optional → required", hf.name),
                                vec![self.at(Side::Head, hf.line)],
                            ));
                        } else if !bf.optional && hf.optional {
                            out.push(facet(
                                ID,
                                FacetCode::ApiFieldRelaxed,
                                format!("{name}: {dir} field {} required → optional", hf.name),
                                vec![self.at(Side::Head, hf.line)],
                            ));
                        }
                        if bf.ty != hf.ty {
                            out.push(facet(
                                ID,
                                FacetCode::ApiFieldTypeChanged,
                                format!(
                                    "{name}: {dir} field {} type {} → {}",
                                    hf.name, bf.ty, hf.ty
                                ),
                                vec![self.at(Side::Head, hf.line)],
                            ));
                        }
                    }
                }
            }
            if !request {
                for bf in b
                    .fields
                    .iter()
                    .filter(|bf| !h.fields.iter().any(|f| f.name == bf.name))
                {
                    out.push(facet(
                        ID,
                        FacetCode::ApiFieldTypeChanged,
                        format!("{name}: response field {} removed", bf.name),
                        vec![self.at(Side::Base, bf.line)],
                    ));
                }
            }
        }
        let rets = |f: &'_ NestFile| -> BTreeMap<String, Setting> {
            f.returns
                .iter()
                .map(|s| (s.key.clone(), s.clone()))
                .collect()
        };
        let (br, hr) = (rets(base), rets(head));
        for (k, h) in &hr {
            if let Some(b) = br.get(k)
                && b.value != h.value
            {
                out.push(facet(
                    ID,
                    FacetCode::ApiFieldTypeChanged,
                    format!("{k}: response type {} → {}", b.value, h.value),
                    vec![self.at(Side::Head, h.line)],
                ));
            }
        }
    }

    /// Protocol options written in code, compared by key; absent is the library default, so
    /// adding `http2: true` to an existing bootstrap is a change.
    pub(super) fn protocol(&self, base: &NestFile, head: &NestFile, out: &mut Vec<Facet>) {
        fn map(f: &NestFile) -> BTreeMap<String, Vec<&Setting>> {
            let mut m: BTreeMap<String, Vec<&Setting>> = BTreeMap::new();
            for s in &f.protocol {
                m.entry(s.key.clone()).or_default().push(s);
            }
            m
        }
        let (bm, hm) = (map(base), map(head));
        let keys: std::collections::BTreeSet<&String> = bm.keys().chain(hm.keys()).collect();
        for k in keys {
            let vals = |m: &BTreeMap<String, Vec<&Setting>>| -> Vec<String> {
                m.get(k)
                    .map(|v| v.iter().map(|s| s.value.clone()).collect())
                    .unwrap_or_default()
            };
            let (bv, hv) = (vals(&bm), vals(&hm));
            if bv == hv {
                continue;
            }
            let show = |v: &[String]| {
                if v.is_empty() {
                    "(default)".to_string()
                } else {
                    v.join(", ")
                }
            };
            let (side, line) = match hm.get(k).and_then(|v| v.first()) {
                Some(s) => (Side::Head, s.line),
                None => (Side::Base, bm[k][0].line),
            };
            out.push(facet(
                ID,
                FacetCode::ProtocolChanged,
                format!("protocol option {k}: {} → {}", show(&bv), show(&hv)),
                vec![self.at(side, line)],
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::detectors::testing::{kinds, run};

    const DTO: &str = "src/users/dto/create-user.dto.ts";
    const DTO_TS: &str = "import { IsEmail, IsOptional, IsString } from 'class-validator';

export class CreateUserDto {
  @IsEmail()
  email: string;

  @IsOptional()
  @IsString()
  name?: string;
}
";

    #[test]
    fn request_dto_optional_to_required_and_back() {
        let head = DTO_TS
            .replace("  @IsOptional()\n", "")
            .replace("name?:", "name:");
        let f = run(&NestJs, &[(DTO, Some(DTO_TS), Some(&head))]);
        assert_eq!(kinds(&f), vec!["api-field-required"]);
        let f = run(&NestJs, &[(DTO, Some(&head), Some(DTO_TS))]);
        assert_eq!(kinds(&f), vec!["api-field-relaxed"]);
    }

    #[test]
    fn response_interface_field_removed_and_retyped() {
        let base = "export interface UserResponse {\n  id: number;\n  email: string;\n  avatar?: string;\n}\n";
        let head = "export interface UserResponse {\n  id: string;\n  email: string;\n}\n";
        let f = run(
            &NestJs,
            &[("src/users/user.response.ts", Some(base), Some(head))],
        );
        assert_eq!(
            kinds(&f),
            vec!["api-field-type-changed", "api-field-type-changed"]
        );
    }

    #[test]
    fn http2_in_bootstrap_is_a_protocol_change() {
        let base = "const app = await NestFactory.create(AppModule, new FastifyAdapter());\n";
        let head = "const app = await NestFactory.create(AppModule, new FastifyAdapter({ http2: true, https }));\n";
        let f = run(&NestJs, &[("src/main.ts", Some(base), Some(head))]);
        assert_eq!(kinds(&f), vec!["protocol-changed"]);
    }
}

//! `cloud`: Terraform (`*.tf`) provider and region settings.
//!
//! The set of `provider "…"` blocks is compared between base and head: a different set is a
//! `cloud-provider-changed` (AWS → GCP). Changes to `region`-like attributes (`region`,
//! `secondary_region`, `failover_region`, `replica_regions`) are `region-failover-changed`. The
//! file is explained only when nothing else changed; resources are not understood here
//! (`unclassified`).

use std::collections::BTreeSet;

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_at, facet};
use crate::util::{ext, texts};
use crate::{Change, Detector, Finding, Side};

/// The Terraform provider/region detector.
pub struct Cloud;

const REGION_KEYS: &[&str] = &[
    "region",
    "regions",
    "secondary_region",
    "failover_region",
    "replica_regions",
    "backup_region",
];

impl Detector for Cloud {
    fn id(&self) -> &'static str {
        "cloud"
    }
    fn description(&self) -> &'static str {
        "Terraform providers (AWS → GCP) and region/failover settings"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::CloudProviderChanged,
            FacetCode::RegionFailoverChanged,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut out = Finding::default();
        for f in change.files {
            if ext(&f.path) != "tf" || change.is_binary(f) {
                continue;
            }
            let Ok(t) = texts(change.contents, f) else {
                continue;
            };
            let (b, h) = (t.base.unwrap_or_default(), t.head.unwrap_or_default());
            let (bp, hp) = (providers(&b), providers(&h));
            let mut understood = true;
            if bp != hp {
                let fmt = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
                out.facets.push(facet(
                    self.id(),
                    FacetCode::CloudProviderChanged,
                    format!("providers [{}] → [{}] ({})", fmt(&bp), fmt(&hp), f.path),
                    vec![evidence_at(&f.path, Side::Head, Some(&h), &["provider"])],
                ));
            }
            // Compare the remaining lines with provider headers and region attributes removed.
            let (br, hr) = (regions(&b), regions(&h));
            if br != hr {
                let changed: Vec<&(String, String)> =
                    hr.iter().filter(|x| !br.contains(x)).collect();
                let needle = changed.first().map(|(k, _)| k.as_str()).unwrap_or("region");
                out.facets.push(facet(
                    self.id(),
                    FacetCode::RegionFailoverChanged,
                    format!("region settings changed in {}", f.path),
                    vec![evidence_at(&f.path, Side::Head, Some(&h), &[needle])],
                ));
            }
            if rest(&b) != rest(&h) {
                understood = false;
            }
            if understood && (bp != hp || br != hr) {
                out.explained.insert(f.path.clone());
            }
        }
        out
    }
}

fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"))
}

fn providers(text: &str) -> BTreeSet<String> {
    code_lines(text)
        .filter_map(|l| l.strip_prefix("provider"))
        .filter_map(|r| {
            r.trim()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .map(String::from)
        })
        .collect()
}

fn region_attr(l: &str) -> Option<(String, String)> {
    let (k, v) = l.split_once('=')?;
    let k = k.trim();
    REGION_KEYS
        .contains(&k)
        .then(|| (k.to_string(), v.trim().to_string()))
}

fn regions(text: &str) -> BTreeSet<(String, String)> {
    code_lines(text).filter_map(region_attr).collect()
}

fn rest(text: &str) -> Vec<String> {
    code_lines(text)
        .filter(|l| region_attr(l).is_none())
        .map(|l| {
            if l.starts_with("provider") {
                "provider".to_string()
            } else {
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn run(base: &str, head: &str) -> Finding {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base("infra/main.tf", base)
            .with_head("infra/main.tf", head);
        let files = c.changed_files();
        crate::detectors::testing::detect(
            &Cloud,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        )
    }

    #[test]
    fn provider_and_region() {
        let aws = "provider \"aws\" {\n  region = \"eu-west-1\"\n}\n";
        let f = run(
            aws,
            "provider \"google\" {\n  region = \"europe-west1\"\n}\n",
        );
        let kinds: Vec<&str> = f.facets.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["cloud-provider-changed", "region-failover-changed"]
        );
        assert!(f.explained.contains("infra/main.tf"));
        let g = run(
            aws,
            "provider \"aws\" {\n  region = \"eu-west-1\"\n  secondary_region = \"eu-central-1\"\n}\n",
        );
        assert_eq!(g.facets[0].kind, "region-failover-changed");
        let r = run(
            aws,
            &format!("{aws}resource \"aws_s3_bucket\" \"b\" {{}}\n"),
        );
        assert!(r.facets.is_empty() && r.explained.is_empty());
    }
}

//! The detector registry: one file per detector, at the path its id names (`schema-sql` is
//! `schema/sql.rs`, `deps-npm` is `deps/npm.rs`, `docs` is `docs.rs`; a test checks it). Parsers
//! that detectors share live in [`crate::parse`].
//!
//! Each detector declares the [`FacetCode`](changegate_policy::facets::FacetCode)s it may emit;
//! the pipeline turns any other emission into `unparseable` (fail closed), and a test checks that
//! the declarations cover every facet code.

pub mod api;
pub mod deps;
pub mod infra;
pub mod schema;

pub mod ci;
pub mod cloud;
pub mod config;
pub mod cost;
pub mod docs;
pub mod env;
pub mod logging;
pub mod runtime;

#[cfg(test)]
pub(crate) mod testing;

use crate::Detector;

/// Every detector, in the order they run.
pub fn all() -> Vec<&'static dyn Detector> {
    vec![
        &cloud::Cloud,
        &cost::Cost,
        &docs::Docs,
        &deps::npm::DepsNpm,
        &deps::cargo::DepsCargo,
        &env::EnvFiles,
        &config::Config,
        &logging::Logging,
        &ci::Ci,
        &infra::k8s::InfraK8s,
        &runtime::Runtime,
        &schema::prisma::Prisma,
        &schema::sql::Sql,
        &api::openapi::OpenApi,
        &api::nestjs::NestJs,
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use changegate_policy::facets::FacetCode;

    #[test]
    fn detector_ids_match_their_file_paths() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/detectors");
        for d in super::all() {
            let file = root.join(format!("{}.rs", d.id().replace('-', "/")));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("detector `{}`: {}: {e}", d.id(), file.display()));
            assert!(
                text.contains("impl Detector for"),
                "detector `{}`: {} does not implement it",
                d.id(),
                file.display()
            );
        }
    }

    #[test]
    fn every_facet_code_is_declared_by_a_detector_or_the_pipeline() {
        let declared: BTreeSet<FacetCode> = crate::detector_catalogue()
            .iter()
            .flat_map(|d| d.facets.iter().copied())
            .collect();
        let missing: Vec<&str> = FacetCode::ALL
            .iter()
            .filter(|c| !declared.contains(c))
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            missing,
            Vec::<&str>::new(),
            "facet codes no detector declares"
        );
    }

    #[test]
    fn detector_ids_are_unique_and_declarations_are_sets() {
        let mut ids = BTreeSet::new();
        for d in crate::detector_catalogue() {
            assert!(ids.insert(d.id), "detector id `{}` twice", d.id);
            let set: BTreeSet<_> = d.facets.iter().collect();
            assert_eq!(
                set.len(),
                d.facets.len(),
                "`{}` declares a facet twice",
                d.id
            );
            assert!(!d.facets.is_empty(), "`{}` declares no facet", d.id);
        }
    }
}

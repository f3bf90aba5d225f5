//! The detector registry: one module per facet family.
//!
//! Ownership while two developers work in parallel: `prisma`, `sql`, `openapi` and `nestjs` belong
//! to the schema/API work; everything else to the core classifier work.

mod api_nest_ts;
pub mod nestjs;
pub mod openapi;
pub mod prisma;
mod schema_prisma_parse;
mod schema_util;
pub mod sql;

pub mod config;
mod deps;
pub mod deps_cargo;
pub mod deps_npm;
pub mod docs;
pub mod env;
pub mod infra;
pub mod runtime;

pub mod cloud;
pub mod cost;

use crate::Detector;

/// Every detector, in the order they run.
pub fn all() -> Vec<&'static dyn Detector> {
    vec![
        &cloud::Cloud,
        &cost::Cost,
        &docs::Docs,
        &deps_npm::DepsNpm,
        &deps_cargo::DepsCargo,
        &env::EnvFiles,
        &config::Config,
        &infra::InfraK8s,
        &runtime::Runtime,
        &prisma::Prisma,
        &sql::Sql,
        &openapi::OpenApi,
        &nestjs::NestJs,
    ]
}

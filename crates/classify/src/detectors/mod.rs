//! The detector registry: one module per facet family.
//!
//! Ownership while two developers work in parallel: `prisma`, `sql`, `openapi` and `nestjs` belong
//! to the schema/API work; everything else to the core classifier work.

pub mod openapi;
pub mod prisma;
mod schema_prisma_parse;
mod schema_util;
pub mod sql;

use crate::Detector;

/// Every detector, in the order they run.
pub fn all() -> Vec<&'static dyn Detector> {
    vec![&prisma::Prisma, &sql::Sql, &openapi::OpenApi]
}

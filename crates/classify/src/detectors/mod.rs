//! The detector registry: one module per facet family.
//!
//! Ownership while two developers work in parallel: `prisma`, `sql`, `openapi` and `nestjs` belong
//! to the schema/API work; everything else to the core classifier work.

use crate::Detector;

/// Every detector, in the order they run.
pub fn all() -> Vec<&'static dyn Detector> {
    vec![]
}

//! Schema detectors: [`prisma`] (`schema-prisma`) and [`sql`] (`schema-sql`).

pub mod prisma;
pub mod sql;

//! One module per command family.

pub mod detectors;
pub mod policy;
pub mod window;

//! One module per command family.

pub mod audit;
pub mod classify;
pub mod client;
pub mod codes;
pub mod detectors;
pub mod gate;
pub mod gate_ci;
pub mod policy;
pub mod reference;
pub mod report;
pub mod rollout;
pub mod serve;
pub mod simulate;
pub mod window;

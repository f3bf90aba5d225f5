//! One module per command family.

pub mod classify;
pub mod detectors;
pub mod policy;
pub mod window;
pub mod client;
pub mod gate;
pub mod serve;
pub mod rollout;

//! Infrastructure detectors: [`k8s`] (`infra-k8s`).

pub mod k8s;

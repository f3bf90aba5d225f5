//! API detectors: [`openapi`] (`api-openapi`) and [`nestjs`] (`api-nestjs`).

pub mod nestjs;
pub mod openapi;

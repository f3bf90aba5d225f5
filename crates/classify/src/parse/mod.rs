//! Parsers that are not detectors: they read a format into a tree the detectors diff.

pub(crate) mod lockfile;
pub(crate) mod nest_ts;
pub(crate) mod npm_lock;
pub(crate) mod prisma;
pub(crate) mod structured;
pub(crate) mod ts_shared;
pub(crate) mod yaml_fast;

//! Month views (placeholder, filled in below).

//! The catalogue of facet codes the classifier can emit. The policy maps each to roles and a
//! category; validation rejects codes not listed here (with a "did you mean") and warns about
//! codes the policy leaves unmapped. Codes are stable kebab-case identifiers: renaming one is a
//! breaking change of the policy file format.

/// A facet code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacetInfo {
    /// Stable code.
    pub code: &'static str,
    /// Family (the detector module that emits it).
    pub family: &'static str,
    /// One-line description.
    pub description: &'static str,
}

macro_rules! facets {
    ($($code:literal, $family:literal, $desc:literal;)*) => {
        /// Every facet code, grouped by family.
        pub const FACETS: &[FacetInfo] = &[
            $(FacetInfo { code: $code, family: $family, description: $desc },)*
        ];
    };
}

facets! {
    "docs-only", "docs", "Only documentation files or source comments changed";
    "log-level", "config", "Only log-level settings changed";
    "feature-flag-config", "config", "Only feature-flag configuration changed (no code deploy)";
    "bugfix-covered", "coverage", "Code change whose changed lines are covered above the policy threshold";
    "code-changed", "code", "Source code changed without coverage evidence";
    "api-endpoint-added", "api", "New REST endpoint";
    "api-event-added", "api", "New Socket.IO event";
    "api-response-field-added", "api", "New optional field in a response";
    "api-field-relaxed", "api", "Required field became optional";
    "api-field-required", "api", "Optional field became required";
    "api-endpoint-removed", "api", "REST endpoint removed";
    "api-event-removed", "api", "Socket.IO event removed";
    "api-field-type-changed", "api", "Response field type changed";
    "api-rate-limit-changed", "api", "Rate limit adjusted";
    "protocol-changed", "api", "Protocol change (Socket.IO major, HTTP version)";
    "schema-table-added", "schema", "New table or model";
    "schema-column-added-nullable", "schema", "New nullable column";
    "schema-column-added-default", "schema", "New NOT NULL column with a default";
    "schema-column-added-required", "schema", "New NOT NULL column without a default";
    "schema-index-added", "schema", "New index or unique constraint";
    "schema-column-renamed", "schema", "Column renamed";
    "schema-column-dropped", "schema", "Column removed";
    "schema-table-dropped", "schema", "Table removed";
    "schema-column-type-changed", "schema", "Column type changed";
    "schema-downtime", "schema", "Migration requiring downtime or locking a big table";
    "dep-patch", "deps", "Dependency patch update";
    "dep-minor", "deps", "Dependency minor update";
    "dep-major", "deps", "Dependency major (semver-incompatible) update";
    "dep-added-prod", "deps", "New production dependency";
    "dep-added-dev", "deps", "New development dependency";
    "dep-dev-changed", "deps", "Development dependency updated or removed";
    "dep-removed", "deps", "Production dependency removed";
    "dep-license-changed", "deps", "Dependency license changed";
    "env-added", "env", "Environment variable added";
    "env-changed", "env", "Environment variable value changed";
    "env-removed", "env", "Environment variable removed";
    "infra-scaling", "infra", "Replicas, CPU/memory requests or limits, autoscaler bounds changed";
    "secret-rotated", "infra", "Secret reference rotated";
    "cloud-provider-changed", "infra", "Cloud provider changed";
    "region-failover-changed", "infra", "Region failover configuration changed";
    "cost-increase", "infra", "Declared cost increase above the policy threshold";
    "runtime-upgrade", "infra", "Runtime or platform major upgrade (Node.js, base image)";
    "database-engine-upgrade", "infra", "Database engine major upgrade";
    "unclassified", "fallback", "A changed file no detector explains (fail closed)";
    "unparseable", "fallback", "An input a detector could not parse (fail closed)";
}

/// Look a facet up by code.
pub fn find(code: &str) -> Option<&'static FacetInfo> {
    FACETS.iter().find(|f| f.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = HashSet::new();
        for f in FACETS {
            assert!(seen.insert(f.code), "duplicate facet code {}", f.code);
            assert!(
                f.code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                f.code
            );
        }
    }
}

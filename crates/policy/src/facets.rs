//! The catalogue of facet codes the classifier can emit. The policy maps each to roles and a
//! category; validation rejects codes not listed here (with a "did you mean") and warns about
//! codes the policy leaves unmapped. Codes are stable kebab-case identifiers: renaming one is a
//! breaking change of the policy file format.
//!
//! [`FacetCode`] is the one list: detectors emit its variants (a typo does not compile), each
//! detector declares the variants it may emit, and a test in the classifier checks that every
//! variant is declared by at least one detector; the pipeline turns a facet a detector did not
//! declare into `unparseable` (fail closed).

changegate_codes::codes! {
    /// A facet code: one kind of change the classifier recognises.
    pub enum FacetCode in "facet" {
        /// Only documentation files or source comments changed.
        DocsOnly = "docs-only",
        /// Only log-level settings changed.
        LogLevel = "log-level",
        /// Only feature-flag configuration changed (no code deploy).
        FeatureFlagConfig = "feature-flag-config",
        /// Code change whose changed lines are covered above the policy threshold.
        BugfixCovered = "bugfix-covered",
        /// Source code changed without coverage evidence.
        CodeChanged = "code-changed",
        /// New REST endpoint.
        ApiEndpointAdded = "api-endpoint-added",
        /// New Socket.IO event.
        ApiEventAdded = "api-event-added",
        /// New optional field in a response.
        ApiResponseFieldAdded = "api-response-field-added",
        /// Required field became optional.
        ApiFieldRelaxed = "api-field-relaxed",
        /// Optional field became required.
        ApiFieldRequired = "api-field-required",
        /// REST endpoint removed.
        ApiEndpointRemoved = "api-endpoint-removed",
        /// Socket.IO event removed.
        ApiEventRemoved = "api-event-removed",
        /// Response field type changed.
        ApiFieldTypeChanged = "api-field-type-changed",
        /// Rate limit adjusted.
        ApiRateLimitChanged = "api-rate-limit-changed",
        /// Protocol change (Socket.IO major, HTTP version).
        ProtocolChanged = "protocol-changed",
        /// New table or model.
        SchemaTableAdded = "schema-table-added",
        /// New nullable column.
        SchemaColumnAddedNullable = "schema-column-added-nullable",
        /// New NOT NULL column with a default.
        SchemaColumnAddedDefault = "schema-column-added-default",
        /// New NOT NULL column without a default.
        SchemaColumnAddedRequired = "schema-column-added-required",
        /// New index or unique constraint.
        SchemaIndexAdded = "schema-index-added",
        /// Column renamed.
        SchemaColumnRenamed = "schema-column-renamed",
        /// Column removed.
        SchemaColumnDropped = "schema-column-dropped",
        /// Table removed.
        SchemaTableDropped = "schema-table-dropped",
        /// Column type changed.
        SchemaColumnTypeChanged = "schema-column-type-changed",
        /// Migration requiring downtime or locking a big table.
        SchemaDowntime = "schema-downtime",
        /// Dependency patch update.
        DepPatch = "dep-patch",
        /// Dependency minor update.
        DepMinor = "dep-minor",
        /// Dependency major (semver-incompatible) update.
        DepMajor = "dep-major",
        /// New production dependency.
        DepAddedProd = "dep-added-prod",
        /// New development dependency.
        DepAddedDev = "dep-added-dev",
        /// Development dependency updated or removed.
        DepDevChanged = "dep-dev-changed",
        /// Production dependency removed.
        DepRemoved = "dep-removed",
        /// Dependency license changed.
        DepLicenseChanged = "dep-license-changed",
        /// Environment variable added.
        EnvAdded = "env-added",
        /// Environment variable value changed.
        EnvChanged = "env-changed",
        /// Environment variable removed.
        EnvRemoved = "env-removed",
        /// Replicas, CPU/memory requests or limits, autoscaler bounds changed.
        InfraScaling = "infra-scaling",
        /// Secret reference rotated.
        SecretRotated = "secret-rotated",
        /// Cloud provider changed.
        CloudProviderChanged = "cloud-provider-changed",
        /// Region failover configuration changed.
        RegionFailoverChanged = "region-failover-changed",
        /// Declared cost increase above the policy threshold.
        CostIncrease = "cost-increase",
        /// Runtime or platform major upgrade (Node.js, base image).
        RuntimeUpgrade = "runtime-upgrade",
        /// Database engine major upgrade.
        DatabaseEngineUpgrade = "database-engine-upgrade",
        /// CI or bot configuration changed (workflows, Dependabot, Renovate) without deployment.
        CiConfigChanged = "ci-config-changed",
        /// A CI workflow that deploys to production changed.
        DeployConfigChanged = "deploy-config-changed",
        /// A changed file no detector explains (fail closed).
        Unclassified = "unclassified",
        /// An input a detector could not parse (fail closed).
        Unparseable = "unparseable",
    }
}

impl FacetCode {
    /// The family (the detector group that emits it), as listed by `changegate detectors list`.
    pub const fn family(self) -> &'static str {
        match self {
            FacetCode::DocsOnly => "docs",
            FacetCode::LogLevel | FacetCode::FeatureFlagConfig => "config",
            FacetCode::BugfixCovered => "coverage",
            FacetCode::CodeChanged => "code",
            FacetCode::ApiEndpointAdded
            | FacetCode::ApiEventAdded
            | FacetCode::ApiResponseFieldAdded
            | FacetCode::ApiFieldRelaxed
            | FacetCode::ApiFieldRequired
            | FacetCode::ApiEndpointRemoved
            | FacetCode::ApiEventRemoved
            | FacetCode::ApiFieldTypeChanged
            | FacetCode::ApiRateLimitChanged
            | FacetCode::ProtocolChanged => "api",
            FacetCode::SchemaTableAdded
            | FacetCode::SchemaColumnAddedNullable
            | FacetCode::SchemaColumnAddedDefault
            | FacetCode::SchemaColumnAddedRequired
            | FacetCode::SchemaIndexAdded
            | FacetCode::SchemaColumnRenamed
            | FacetCode::SchemaColumnDropped
            | FacetCode::SchemaTableDropped
            | FacetCode::SchemaColumnTypeChanged
            | FacetCode::SchemaDowntime => "schema",
            FacetCode::DepPatch
            | FacetCode::DepMinor
            | FacetCode::DepMajor
            | FacetCode::DepAddedProd
            | FacetCode::DepAddedDev
            | FacetCode::DepDevChanged
            | FacetCode::DepRemoved
            | FacetCode::DepLicenseChanged => "deps",
            FacetCode::EnvAdded | FacetCode::EnvChanged | FacetCode::EnvRemoved => "env",
            FacetCode::InfraScaling
            | FacetCode::SecretRotated
            | FacetCode::CloudProviderChanged
            | FacetCode::RegionFailoverChanged
            | FacetCode::CostIncrease
            | FacetCode::RuntimeUpgrade
            | FacetCode::DatabaseEngineUpgrade => "infra",
            FacetCode::CiConfigChanged | FacetCode::DeployConfigChanged => "ci",
            FacetCode::Unclassified | FacetCode::Unparseable => "fallback",
        }
    }
}

/// A facet code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacetInfo {
    /// The code.
    pub facet: FacetCode,
    /// Stable code string.
    pub code: &'static str,
    /// Family (the detector module that emits it).
    pub family: &'static str,
    /// One-line description.
    pub description: &'static str,
}

impl FacetCode {
    /// The catalogue entry of this code.
    pub const fn info(self) -> FacetInfo {
        FacetInfo {
            facet: self,
            code: self.as_str(),
            family: self.family(),
            description: self.description(),
        }
    }
}

/// Look a facet up by code.
pub fn find(code: &str) -> Option<FacetInfo> {
    code.parse::<FacetCode>().ok().map(FacetCode::info)
}

/// Every facet, in catalogue order.
pub fn all() -> impl Iterator<Item = FacetInfo> {
    FacetCode::ALL.iter().map(|f| f.info())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_well_formed() {
        use changegate_codes::CodeSet;
        assert_eq!(
            changegate_codes::problems(&FacetCode::entries(), &[]),
            Vec::<String>::new()
        );
        for f in FacetCode::ALL {
            assert_eq!(find(f.as_str()).map(|i| i.facet), Some(*f));
        }
    }
}

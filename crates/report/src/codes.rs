//! Stable codes of the report crate: why a period, an export or a report was refused, and each
//! failure `report verify` can find (docs/reports.md explains them).

changegate_codes::codes! {
    /// A code of a report error or a verification failure.
    pub enum Code in "report" {
        /// The period is not `YYYY-MM` (monthly) or `YYYY-Qn` (quarterly).
        PeriodInvalid = "report-period-invalid",
        /// A line of the events export is not a record of the audit log.
        ExportMalformed = "report-export-malformed",
        /// The export has a gap, a duplicate or a record out of order before the checkpoint size.
        ExportIncomplete = "report-export-incomplete",
        /// An exported record and its salt do not hash to the leaf the export names.
        ExportRecordAltered = "report-export-record-altered",
        /// The tree root computed from the exported events is not the checkpoint's root.
        RootMismatch = "report-root-mismatch",
        /// The report's checkpoint is not signed by the trusted key or names another tree.
        CheckpointInvalid = "report-checkpoint-invalid",
        /// The consistency proof from the previous report's checkpoint does not hold.
        ConsistencyInvalid = "report-consistency-invalid",
        /// A metric in the report differs from the one recomputed from the export.
        MetricMismatch = "report-metric-mismatch",
        /// The report file is not a report changegate wrote.
        ReportMalformed = "report-malformed",
        /// Writing a format (CSV, XLSX, HTML) failed.
        RenderFailed = "report-render-failed",
    }
}

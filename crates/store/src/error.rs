//! The store's errors and the stable codes their messages start with.

use changegate_audit::{CheckpointError, RecordError};
use jiff::Timestamp;

changegate_codes::codes! {
    /// Stable codes of the store: the first word of a [`StoreError`] message. (The failures
    /// `audit verify` reports, and [`StoreError::KeyMismatch`]'s `audit-key-mismatch`, are codes of
    /// the audit log, declared by `changegate-audit`.)
    pub enum StoreCode in "store" {
        /// A file of the data directory could not be created, read or written.
        Io = "store-io",
        /// Stored state that cannot be right (a document that does not parse, a missing node).
        Corrupt = "store-corrupt",
        /// No such event, position or log head.
        NotFound = "audit-not-found",
        /// Retention refused a cutoff younger than the policy's retention period.
        RetentionRefused = "audit-retention-refused",
        /// Retention refused to prune at all: the policy's retention is shorter than the compliance minimum and not acknowledged.
        RetentionBelowMinimum = "audit-retention-below-minimum",
        /// A migration that was applied has changed since.
        MigrationChanged = "migration-changed",
        /// An argument the store cannot use (schema name, database URL, proof sizes).
        InvalidArgument = "invalid-argument",
        /// A change with this id already exists: a concurrent create with the same id won.
        ChangeExists = "store-change-exists",
        /// `audit adopt` refused: the log has failures other than rows no event logged (adopting would launder them), or no reason was given.
        AdoptRefused = "audit-adopt-refused",
    }
}

/// Store errors. Each message starts with a stable code where one applies ([`StoreError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The database said no to `audit verify`'s own SQLite reader (see `verify::scan`).
    #[error("database error (verify scan): {0}")]
    Scan(Box<dyn std::error::Error + Send + Sync>),
    /// The event is not acceptable.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Key material problem.
    #[error(transparent)]
    Key(#[from] CheckpointError),
    /// Filesystem problem.
    #[error("{code}: {context}: {source}", code = StoreCode::Io)]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database holds a log signed by another key.
    #[error(
        "audit-key-mismatch: the database's log is signed by {db}, the data directory holds {ours}; use the data directory the log was created with"
    )]
    KeyMismatch {
        /// Key recorded in the database.
        db: String,
        /// Key in the data directory.
        ours: String,
    },
    /// Stored state that cannot be right.
    #[error("{code}: {0}", code = StoreCode::Corrupt)]
    Corrupt(String),
    /// No such event or size.
    #[error("{code}: {0}", code = StoreCode::NotFound)]
    NotFound(String),
    /// Retention refused to prune records younger than the policy's retention period.
    #[error(
        "{code}: records before {before} are younger than the retention period {retention} (oldest prunable cutoff is {horizon})",
        code = StoreCode::RetentionRefused
    )]
    RetentionRefused {
        /// Requested cutoff.
        before: Timestamp,
        /// Policy retention.
        retention: String,
        /// now - retention.
        horizon: Timestamp,
    },
    /// The retention is shorter than the compliance minimum without an acknowledgement.
    #[error(
        "{code}: the retention period {retention} is shorter than the compliance minimum {minimum} and the policy does not acknowledge it (audit.retention_below_minimum_acknowledged); nothing was pruned",
        code = StoreCode::RetentionBelowMinimum
    )]
    RetentionBelowMinimum {
        /// Policy retention.
        retention: String,
        /// The compliance minimum.
        minimum: String,
    },
    /// A migration that was applied has changed since.
    #[error("{code}: {0}", code = StoreCode::MigrationChanged)]
    Migration(String),
    /// A bad argument.
    #[error("{code}: {0}", code = StoreCode::InvalidArgument)]
    Invalid(String),
    /// The change (its id) already exists: the insert lost to a concurrent create (the
    /// database's unique key on the id decided, so exactly one create wins).
    #[error("{code}: change {0} already exists", code = StoreCode::ChangeExists)]
    ChangeExists(String),
    /// `audit adopt` refused (the log must verify but for unlogged rows; a reason is required).
    #[error("{code}: {0}", code = StoreCode::AdoptRefused)]
    AdoptRefused(String),
}

impl StoreError {
    /// The store code the message starts with; `None` for errors of the database driver and for
    /// those whose messages carry a code of the audit log (`Record`, `Key`, `KeyMismatch`).
    pub fn code(&self) -> Option<StoreCode> {
        match self {
            StoreError::Db(_)
            | StoreError::Scan(_)
            | StoreError::Record(_)
            | StoreError::Key(_)
            | StoreError::KeyMismatch { .. } => None,
            StoreError::Io { .. } => Some(StoreCode::Io),
            StoreError::Corrupt(_) => Some(StoreCode::Corrupt),
            StoreError::NotFound(_) => Some(StoreCode::NotFound),
            StoreError::RetentionRefused { .. } => Some(StoreCode::RetentionRefused),
            StoreError::RetentionBelowMinimum { .. } => Some(StoreCode::RetentionBelowMinimum),
            StoreError::Migration(_) => Some(StoreCode::MigrationChanged),
            StoreError::Invalid(_) => Some(StoreCode::InvalidArgument),
            StoreError::ChangeExists(_) => Some(StoreCode::ChangeExists),
            StoreError::AdoptRefused(_) => Some(StoreCode::AdoptRefused),
        }
    }

    /// The database cannot be reached right now (pool exhausted or connection lost): a caller
    /// may answer "unavailable" rather than report a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
        )
    }

    /// The database refused a string because it contains a NUL character (PostgreSQL's
    /// SQLSTATE `22021`, "invalid byte sequence for encoding UTF8: 0x00"): bad input, not a bug.
    pub fn is_nul_refusal(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(d)) if d.code().as_deref() == Some("22021"))
    }
}

/// The database refused a write because it would duplicate a unique key (SQLite's
/// `UNIQUE`/`PRIMARY KEY` constraint, PostgreSQL's `23505`).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code() {
        let cases = [
            StoreError::Io {
                context: "read x".into(),
                source: std::io::Error::other("boom"),
            },
            StoreError::Corrupt("x".into()),
            StoreError::NotFound("x".into()),
            StoreError::RetentionRefused {
                before: Timestamp::UNIX_EPOCH,
                retention: "P1Y".into(),
                horizon: Timestamp::UNIX_EPOCH,
            },
            StoreError::RetentionBelowMinimum {
                retention: "60s".into(),
                minimum: "2y".into(),
            },
            StoreError::Migration("x".into()),
            StoreError::Invalid("x".into()),
            StoreError::ChangeExists("chg-1".into()),
            StoreError::AdoptRefused("x".into()),
        ];
        for e in &cases {
            let code = e.code().expect("coded");
            assert!(
                e.to_string().starts_with(&format!("{code}: ")),
                "{e} does not start with {code}"
            );
        }
        assert_eq!(
            StoreError::Invalid("x".into()).to_string(),
            "invalid-argument: x"
        );
        assert_eq!(StoreError::Db(sqlx::Error::PoolTimedOut).code(), None);
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_unavailable());
    }
}

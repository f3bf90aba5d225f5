//! Every stable code of the audit log: why a key, checkpoint, record or proof was rejected, and
//! each failure a full verification can report (docs/audit.md explains them). Errors carry their
//! code in their message (`proof-invalid: …`) and through a `code()` method; [`crate::Failure`]
//! carries it typed.

changegate_codes::codes! {
    /// A code of the audit log: an error building or reading its data, or a verification failure.
    pub enum Code in "audit" {
        /// The key text is not a well-formed signed-note key of the log.
        KeyMalformed = "audit-key-malformed",
        /// An event field is not an audit field of the policy.
        FieldUnknown = "audit-field-unknown",
        /// An event's kind, actor or id is empty or malformed.
        EventInvalid = "audit-event-invalid",
        /// A leaf has the wrong length or version.
        LeafMalformed = "audit-leaf-malformed",
        /// A leaf was deleted (a gap in positions).
        LeafMissing = "audit-leaf-missing",
        /// A leaf was added behind the log's back (beyond the signed head, or a duplicate).
        LeafUnexpected = "audit-leaf-unexpected",
        /// A leaf sits at another position than it was written for (moved, swapped, inserted).
        LeafReordered = "audit-leaf-reordered",
        /// A record or its salt no longer hashes to the leaf's commitment.
        RecordModified = "audit-record-modified",
        /// A record names another position or time than its leaf.
        RecordMoved = "audit-record-moved",
        /// A stored record is not the canonical JSON of an event.
        RecordMalformed = "audit-record-malformed",
        /// A record is missing and no logged `audit.pruned` run covers its time.
        RecordDeleted = "audit-record-deleted",
        /// A record row has no leaf: it was inserted behind the log's back.
        RecordOrphan = "audit-record-orphan",
        /// The search columns (kind, actor, change, time, id) differ from the record.
        IndexMismatch = "audit-index-mismatch",
        /// A stored subtree hash differs from the recomputed one (proofs would fail).
        NodeMismatch = "audit-node-mismatch",
        /// A checkpoint or the head is signed for more leaves than the log has.
        LogTruncated = "audit-log-truncated",
        /// The database belongs to another log key or origin.
        KeyMismatch = "audit-key-mismatch",
        /// The log head row is gone.
        HeadMissing = "audit-head-missing",
        /// The head's size, root or frontier columns differ from the log its leaves make.
        HeadMismatch = "audit-head-mismatch",
        /// A stored checkpoint the log must keep (one every `checkpoint_every` leaves) is gone.
        CheckpointMissing = "audit-checkpoint-missing",
        /// A stored change or world document is not the one its latest audit event recorded.
        StateModified = "audit-state-modified",
        /// A stored change or world document was written by no logged event.
        StateUnlogged = "audit-state-unlogged",
        /// A document the log records as stored is missing from the state tables.
        StateDeleted = "audit-state-deleted",
        /// The note is not a well-formed checkpoint.
        CheckpointMalformed = "checkpoint-malformed",
        /// The checkpoint carries no valid signature by the trusted key.
        CheckpointSignatureInvalid = "checkpoint-signature-invalid",
        /// The checkpoint is a valid note for another log.
        CheckpointOriginMismatch = "checkpoint-origin-mismatch",
        /// The leaves no longer hash to a signed root (rewritten history).
        CheckpointRootMismatch = "checkpoint-root-mismatch",
        /// The proof does not lead from the leaf (or old root) to the root.
        ProofInvalid = "proof-invalid",
        /// The proof file is not well formed.
        ProofMalformed = "proof-malformed",
        /// The checkpoint in the proof file is not signed by the trusted key, or names another tree.
        ProofCheckpoint = "proof-checkpoint",
        /// The event record in the proof file does not match the leaf.
        ProofRecordMismatch = "proof-record-mismatch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_codes::CodeSet;

    #[test]
    fn every_error_message_starts_with_its_code() {
        use crate::{CheckpointError, ProofError, RecordError};
        let x = || "x".to_string();
        let messages: Vec<(Code, String)> = [
            CheckpointError::Key(x()),
            CheckpointError::Malformed(x()),
            CheckpointError::Signature(x()),
        ]
        .iter()
        .map(|e| (e.code(), e.to_string()))
        .chain(
            [
                ProofError::Invalid(x()),
                ProofError::Malformed(x()),
                ProofError::Checkpoint(x()),
                ProofError::Record(x()),
            ]
            .iter()
            .map(|e| (e.code(), e.to_string())),
        )
        .chain(
            [
                RecordError::UnknownField {
                    group: x(),
                    field: x(),
                    allowed: x(),
                },
                RecordError::Invalid(x()),
                RecordError::Leaf(x()),
                RecordError::Record(x()),
            ]
            .iter()
            .map(|e| (e.code(), e.to_string())),
        )
        .collect();
        let mut codes: Vec<Code> = messages.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), messages.len(), "two errors share a code");
        for (code, message) in messages {
            assert!(
                message.starts_with(&format!("{code}: ")),
                "{code}: {message}"
            );
        }
    }

    #[test]
    fn codes_are_unique_kebab_case_and_documented_in_docs_audit_md() {
        let problems = changegate_codes::problems(&Code::entries(), &[]);
        assert!(problems.is_empty(), "{problems:#?}");
        let doc = include_str!("../../../docs/audit.md");
        for c in Code::ALL {
            assert!(
                doc.contains(&format!("`{c}`")),
                "docs/audit.md does not document `{c}`"
            );
        }
    }
}

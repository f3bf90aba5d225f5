//! What both readers of `verify` share (sqlx in [`super`], rusqlite in [`super::scan`]): the
//! queries, the rows read before the leaves, and the checks around the verifier. Everything but the
//! node scan comes from one snapshot.

use changegate_audit::Code as AuditCode;
use changegate_audit::tree::Hash;
use changegate_audit::{Checkpoint, Failure, Report, Verifier};

pub(crate) const VERIFY_META: &str = "SELECT origin, verifier FROM audit_meta WHERE id = 1";
pub(crate) const VERIFY_HEAD: &str =
    "SELECT size, root, frontier, checkpoint FROM audit_head WHERE id = 1";
pub(crate) const VERIFY_CHECKPOINTS: &str = "SELECT size, note FROM audit_checkpoint ORDER BY size";
pub(crate) const LEAF_SCAN: &str = "SELECT l.seq, l.leaf, r.event_id, r.kind, r.actor, r.change_id, r.recorded_at, r.salt, r.record \
    FROM audit_leaf l LEFT JOIN audit_record r ON r.seq = l.seq ORDER BY l.seq";
pub(crate) const ORPHAN_RECORD: &str = "SELECT MIN(seq) FROM audit_record r WHERE NOT EXISTS (SELECT 1 FROM audit_leaf l WHERE l.seq = r.seq)";
pub(crate) const NODE_SCAN: &str = "SELECT id, hash FROM audit_node ORDER BY id";
/// The state tables, each scanned once in the snapshot of the leaves (documents hashed as read).
pub(crate) const STATE_CHANGES: &str = "SELECT id, version, state FROM server_change";
pub(crate) const STATE_WORLD: &str = "SELECT version, state FROM server_world WHERE id = 1";
/// Token rows, columns in [`TokenDoc`]'s order. Idempotency rows are not state a decision reads
/// (docs/adr/0016-state-proof-of-every-table-and-verified-ci-links.md): not scanned.
pub(crate) const STATE_TOKENS: &str = "SELECT id, version, digest, person, admin, revoked, kind, scopes, created_at, expires_at, revoked_at, revoked_by FROM server_token";

/// A token row's columns (as [`STATE_TOKENS`] and the token writes read them): its document is
/// their fixed JSON form ([`TokenDoc::doc`]), hashed like a change's stored document.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TokenDoc {
    pub(crate) id: String,
    pub(crate) version: i64,
    pub(crate) digest: String,
    pub(crate) person: String,
    pub(crate) admin: bool,
    pub(crate) revoked: bool,
    pub(crate) kind: String,
    pub(crate) scopes: String,
    pub(crate) created_at: String,
    pub(crate) expires_at: Option<String>,
    pub(crate) revoked_at: Option<String>,
    pub(crate) revoked_by: Option<String>,
}

impl TokenDoc {
    /// The row as one JSON document, fields in declaration order (never depends on a map's
    /// order): the bytes a token write's `state` hashes and `audit verify` recomputes.
    pub(crate) fn doc(&self) -> String {
        serde_json::to_string(self).expect("a token row serialises")
    }
}

/// A [`TokenDoc`] from a sqlx row of [`STATE_TOKENS`] (either backend: used inside `on_pool!`).
macro_rules! token_doc_from_sqlx {
    ($r:expr) => {{
        let r = $r;
        $crate::verify::TokenDoc {
            id: r.try_get(0)?,
            version: r.try_get(1)?,
            digest: r.try_get(2)?,
            person: r.try_get(3)?,
            admin: r.try_get(4)?,
            revoked: r.try_get(5)?,
            kind: r.try_get(6)?,
            scopes: r.try_get(7)?,
            created_at: r.try_get(8)?,
            expires_at: r.try_get(9)?,
            revoked_at: r.try_get(10)?,
            revoked_by: r.try_get(11)?,
        }
    }};
}
pub(crate) use token_doc_from_sqlx;

/// Every writer keeps a signed checkpoint at each multiple of this size (besides its own
/// `checkpoint_every` and published ones), so a deleted one is found: a property of the log,
/// not of a process's configuration.
pub(crate) const KEPT_CHECKPOINT_EVERY: u64 = 1024;

/// The rows `verify` reads before the leaves.
pub(crate) struct VerifyMeta {
    /// `audit_meta`: origin, verifier key.
    pub(crate) meta: Option<(String, String)>,
    /// The head: size, root and frontier columns, checkpoint note.
    pub(crate) head: Option<HeadRow>,
    /// Stored checkpoints: size column, note.
    pub(crate) checkpoints: Vec<(i64, String)>,
}

/// The head row's columns.
pub(crate) struct HeadRow {
    pub(crate) size: i64,
    pub(crate) root: Vec<u8>,
    pub(crate) frontier: Vec<u8>,
    pub(crate) checkpoint: String,
}

/// A verifier with every checkpoint registered (before any leaf), and the failures found on
/// the way that the verifier does not know of.
pub(crate) fn start_verify(
    inner: &crate::Inner,
    m: VerifyMeta,
    extra_checkpoint: Option<&str>,
) -> (Verifier, Vec<Failure>) {
    let key = &inner.verifier;
    let mut v = Verifier::new(true);
    let mut extra_failures = Vec::new();
    if let Some((origin, ver)) = m.meta
        && (ver != key.to_string() || origin != inner.origin)
    {
        extra_failures.push(Failure {
            code: AuditCode::KeyMismatch,
            position: None,
            message: format!(
                "the database names log {origin} with key {ver}; the trusted key is {key}"
            ),
            subject: None,
        });
    }
    v.checkpoints_every(KEPT_CHECKPOINT_EVERY);
    match m.head {
        Some(h) => {
            v.head_columns(h.size, &h.root, &h.frontier);
            v.checkpoint(&h.checkpoint, key, &inner.origin, "log head", true);
        }
        None => extra_failures.push(Failure {
            code: AuditCode::HeadMissing,
            position: None,
            message: "the log head row is missing".into(),
            subject: None,
        }),
    }
    for (size, note) in m.checkpoints {
        v.checkpoint(
            &note,
            key,
            &inner.origin,
            &format!("stored checkpoint {size}"),
            false,
        );
        if Checkpoint::parse_unverified(&note)
            .map(|c| c.size as i64)
            .ok()
            != Some(size)
        {
            extra_failures.push(Failure {
                code: AuditCode::CheckpointMalformed,
                position: None,
                message: format!("stored checkpoint row {size} holds a note for another size"),
                subject: None,
            });
        }
    }
    if let Some(extra) = extra_checkpoint {
        v.external_checkpoint(extra, key, &inner.origin, "given checkpoint");
    }
    (v, extra_failures)
}

/// A stored node hash; one of the wrong length can never match: keep it as all ones.
pub(crate) fn node_hash_or_ones(h: &[u8]) -> Hash {
    h.try_into().unwrap_or([0xff; 32])
}

/// After the leaves: the smallest record without a leaf (if any), the stored nodes; the report.
pub(crate) fn finish_verify(
    mut v: Verifier,
    mut extra_failures: Vec<Failure>,
    orphan: Option<i64>,
    stored_nodes: Vec<(i64, Hash)>,
) -> Report {
    if let Some(o) = orphan {
        extra_failures.push(Failure {
            code: AuditCode::RecordOrphan,
            position: Some(o as u64),
            message: format!("record {o} has no leaf: it was inserted behind the log's back"),
            subject: None,
        });
    }
    for (id, h) in stored_nodes {
        v.node(id, &h);
    }
    let mut report = v.finish();
    report.failures.extend(extra_failures);
    report
        .failures
        .sort_by_key(|f| f.position.unwrap_or(u64::MAX));
    report
}

//! Reading the audit log back: head, verification, proofs, checkpoints, search, export rows,
//! and retention.

use std::collections::HashMap;

use changegate_audit::Code as AuditCode;
use changegate_audit::tree::{
    self, Hash, NodeId, consistency_path, empty_root, inclusion_path, range_hash,
};
use changegate_audit::{
    AuditEvent, Checkpoint, ConsistencyProofFile, Failure, InclusionProofFile, LeafRow,
    ProvenRecord, Record, RecordRow, Report, Verifier, kinds,
};
use futures_util::TryStreamExt as _;
use jiff::{Span, Timestamp};
use serde::Serialize;
use sqlx::Row;

use crate::{Result, Store, StoreError, on_pool};

/// The log head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Number of leaves.
    pub size: u64,
    /// Root hash, hex.
    pub root: String,
    /// Signed checkpoint note for (size, root).
    pub checkpoint: String,
}

/// Filters for [`Store::events`]. Every set filter must match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Change id.
    pub change_id: Option<String>,
    /// Actor.
    pub actor: Option<String>,
    /// Kind (exact) or prefix ending in `.` / `*` (e.g. `deployment.*`).
    pub kind: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// At most this many, in log order.
    pub limit: Option<u64>,
    /// Start after this position (paging).
    pub after_seq: Option<u64>,
}

/// A stored event with its record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Log position.
    pub seq: u64,
    /// Leaf hash, hex.
    pub leaf_hash: String,
    /// The record.
    pub record: Record,
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneOutcome {
    /// Cutoff: records recorded before it were deleted.
    pub before: Timestamp,
    /// Records deleted.
    pub deleted: u64,
    /// The `audit.pruned` event that records the run.
    pub event_id: String,
}

// What `verify` reads, shared by both readers (sqlx here, rusqlite in `verify_scan`). Everything
// but the node scan comes from one snapshot.
pub(crate) const VERIFY_META: &str = "SELECT origin, verifier FROM audit_meta WHERE id = 1";
pub(crate) const VERIFY_HEAD: &str = "SELECT checkpoint FROM audit_head WHERE id = 1";
pub(crate) const VERIFY_CHECKPOINTS: &str = "SELECT size, note FROM audit_checkpoint ORDER BY size";
const LEAF_SCAN: &str = "SELECT l.seq, l.leaf, r.event_id, r.kind, r.actor, r.change_id, r.recorded_at, r.salt, r.record \
    FROM audit_leaf l LEFT JOIN audit_record r ON r.seq = l.seq ORDER BY l.seq";
const ORPHAN_RECORD: &str = "SELECT MIN(seq) FROM audit_record r WHERE NOT EXISTS (SELECT 1 FROM audit_leaf l WHERE l.seq = r.seq)";
pub(crate) const NODE_SCAN: &str = "SELECT id, hash FROM audit_node ORDER BY id";

/// The rows `verify` reads before the leaves.
pub(crate) struct VerifyMeta {
    /// `audit_meta`: origin, verifier key.
    pub(crate) meta: Option<(String, String)>,
    /// The head's checkpoint note.
    pub(crate) head: Option<String>,
    /// Stored checkpoints: size column, note.
    pub(crate) checkpoints: Vec<(i64, String)>,
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
    if let Some((origin, ver)) = m.meta {
        if ver != key.to_string() || origin != inner.origin {
            extra_failures.push(Failure {
                code: AuditCode::KeyMismatch,
                position: None,
                message: format!(
                    "the database names log {origin} with key {ver}; the trusted key is {key}"
                ),
            });
        }
    }
    match m.head {
        Some(note) => v.checkpoint(&note, key, &inner.origin, "log head", true),
        None => extra_failures.push(Failure {
            code: AuditCode::HeadMissing,
            position: None,
            message: "the log head row is missing".into(),
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

fn hash_from(v: Vec<u8>, what: &str) -> Result<Hash> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

impl Store {
    pub(crate) async fn init_log(&self) -> Result<()> {
        let inner = &self.inner;
        let verifier = inner.verifier.to_string();
        let now = self.now().as_microsecond();
        let empty = Checkpoint {
            origin: inner.origin.clone(),
            size: 0,
            root: empty_root(),
        };
        let note = match &inner.signer {
            Some(s) => s.sign(&empty),
            None => String::new(),
        };
        let existing: Option<String> = on_pool!(&inner.db, p => {
            if inner.signer.is_some() {
                sqlx::query("INSERT INTO audit_meta (id, origin, verifier, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING")
                    .bind(&inner.origin).bind(&verifier).bind(now).execute(p).await?;
                sqlx::query("INSERT INTO audit_head (id, size, root, frontier, checkpoint) VALUES (1, 0, $1, $2, $3) ON CONFLICT (id) DO NOTHING")
                    .bind(&empty.root[..]).bind(Vec::<u8>::new()).bind(&note).execute(p).await?;
            }
            sqlx::query("SELECT verifier FROM audit_meta WHERE id = 1").fetch_optional(p).await?.map(|r| r.try_get::<String, _>(0)).transpose()?
        });
        match existing {
            Some(db) if db != verifier => Err(StoreError::KeyMismatch { db, ours: verifier }),
            _ => Ok(()),
        }
    }

    /// The current head.
    pub async fn head(&self) -> Result<Head> {
        let r = on_pool!(&self.inner.db, p => match sqlx::query("SELECT size, root, checkpoint FROM audit_head WHERE id = 1").fetch_optional(p).await? {
            Some(r) => Some(Head { size: r.try_get::<i64, _>(0)? as u64, root: hex::encode(r.try_get::<Vec<u8>, _>(1)?), checkpoint: r.try_get(2)? }),
            None => None,
        });
        r.ok_or_else(|| {
            StoreError::NotFound("the log has no head yet (open it once with its key)".into())
        })
    }

    /// Recompute the whole log and check it against every stored checkpoint, the head, and
    /// `extra_checkpoint` (a note the auditor kept). See [`changegate_audit::verify`].
    ///
    /// A SQLite file is read by `verify_scan` (its own connections and threads, see
    /// docs/adr/0011-audit-verify-scan.md); PostgreSQL and in-memory SQLite through sqlx.
    pub async fn verify(&self, extra_checkpoint: Option<&str>) -> Result<Report> {
        if let (crate::Db::Sqlite(_), Some(file)) = (&self.inner.db, &self.inner.sqlite_file) {
            let (inner, file) = (self.inner.clone(), file.clone());
            let extra = extra_checkpoint.map(str::to_owned);
            return tokio::task::spawn_blocking(move || {
                crate::verify_scan::verify(&inner, &file, extra.as_deref())
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("verify task: {e}")))?;
        }
        let inner = &self.inner;
        let (v, extra_failures, orphan, stored_nodes) = on_pool!(&inner.db, p => {
            // One snapshot for everything but the node scan, so concurrent appends do not look
            // like tampering (SQLite: a read transaction in WAL mode; PostgreSQL: repeatable
            // read). The snapshot is taken by the first read below.
            let begin = if matches!(inner.db, crate::Db::Sqlite(_)) { "BEGIN" } else { "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" };
            let mut rtx = p.begin_with(begin).await?;
            let meta = match sqlx::query(VERIFY_META).fetch_optional(&mut *rtx).await? {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                None => None,
            };
            let head = match sqlx::query(VERIFY_HEAD).fetch_optional(&mut *rtx).await? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            };
            let mut checkpoints = Vec::new();
            for r in sqlx::query(VERIFY_CHECKPOINTS).fetch_all(&mut *rtx).await? {
                checkpoints.push((r.try_get(0)?, r.try_get(1)?));
            }
            let (mut v, extra_failures) = start_verify(inner, VerifyMeta { meta, head, checkpoints }, extra_checkpoint);
            // The stored nodes are read on a second connection while the leaves stream in
            // (two cores, two SQLite worker threads), then compared. Its snapshot starts after
            // ours, so it may hold nodes of later appends; the verifier ignores those.
            // Its own task, so its rows are decoded on the other runtime thread.
            let pool = p.clone();
            let node_scan = tokio::spawn(async move {
                let mut out: Vec<(i64, [u8; 32])> = Vec::new();
                let mut nodes = sqlx::query(NODE_SCAN).fetch(&pool);
                while let Some(r) = nodes.try_next().await? {
                    let h: &[u8] = r.try_get(1)?;
                    out.push((r.try_get(0)?, node_hash_or_ones(h)));
                }
                Ok::<_, StoreError>(out)
            });
            let leaf_scan = async {
                let mut rows = sqlx::query(LEAF_SCAN).fetch(&mut *rtx);
                while let Some(r) = rows.try_next().await? {
                    let seq: i64 = r.try_get(0)?;
                    let leaf: &[u8] = r.try_get(1)?;
                    let event_id: Option<&str> = r.try_get(2)?;
                    let record = match event_id {
                        Some(event_id) => Some(RecordRow {
                            event_id,
                            kind: r.try_get(3)?,
                            actor: r.try_get(4)?,
                            change_id: r.try_get(5)?,
                            recorded_at_us: r.try_get(6)?,
                            salt: r.try_get(7)?,
                            record: r.try_get::<&str, _>(8)?.as_bytes(),
                        }),
                        None => None,
                    };
                    v.leaf(LeafRow { seq, leaf, record });
                }
                Ok::<_, StoreError>(())
            };
            let leaves_done = leaf_scan.await;
            let nodes_done = node_scan.await.map_err(|e| StoreError::Corrupt(format!("node scan task: {e}")))?;
            leaves_done?;
            let orphan = sqlx::query(ORPHAN_RECORD).fetch_one(&mut *rtx).await?.try_get::<Option<i64>, _>(0)?;
            rtx.rollback().await?;
            (v, extra_failures, orphan, nodes_done?)
        });
        Ok(finish_verify(v, extra_failures, orphan, stored_nodes))
    }

    async fn fetch_nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(|id| id.key().to_string())
                .collect::<Vec<_>>()
                .join(",");
            // The list holds only integers we formatted ourselves.
            let sql = format!("SELECT id, hash FROM audit_node WHERE id IN ({list})");
            let rows: Vec<(i64, Vec<u8>)> = on_pool!(&self.inner.db, p => {
                let mut v = Vec::new();
                for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await? {
                    v.push((r.try_get(0)?, r.try_get(1)?));
                }
                v
            });
            for (id, h) in rows {
                out.insert(NodeId::from_key(id), hash_from(h, "stored node")?);
            }
        }
        if let Some(missing) = ids.iter().find(|id| !out.contains_key(id)) {
            return Err(StoreError::Corrupt(format!(
                "stored node (level {}, index {}) is missing; run `changegate audit verify`",
                missing.level, missing.index
            )));
        }
        Ok(out)
    }

    /// Root of the first `size` leaves, from stored nodes.
    pub async fn root_at(&self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(empty_root());
        }
        let ids = tree::needed_nodes(|get| {
            range_hash(0, size, &mut |id| get(id));
        });
        let nodes = self.fetch_nodes(&ids).await?;
        Ok(range_hash(0, size, &mut |id| nodes[&id]))
    }

    async fn checkpoint_note(&self, size: u64, head: &Head) -> Result<Option<String>> {
        if head.size == size {
            return Ok(Some(head.checkpoint.clone()));
        }
        let r: Option<String> = on_pool!(&self.inner.db, p => match sqlx::query("SELECT note FROM audit_checkpoint WHERE size = $1").bind(size as i64).fetch_optional(p).await? {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        });
        Ok(r)
    }

    /// Resolve an event reference: an event id (`ev_...`) or a log position.
    pub async fn resolve(&self, event: &str) -> Result<u64> {
        if let Ok(n) = event.trim_start_matches('#').parse::<u64>() {
            return Ok(n);
        }
        let r: Option<i64> = on_pool!(&self.inner.db, p => match sqlx::query("SELECT seq FROM audit_record WHERE event_id = $1").bind(event).fetch_optional(p).await? {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        });
        r.map(|s| s as u64).ok_or_else(|| {
            StoreError::NotFound(format!(
                "no event `{event}` (ids look like ev_...; positions are numbers)"
            ))
        })
    }

    /// Inclusion proof of an event (id or position) in the current tree.
    pub async fn prove(&self, event: &str) -> Result<InclusionProofFile> {
        let seq = self.resolve(event).await?;
        let head = self.head().await?;
        if seq >= head.size {
            return Err(StoreError::NotFound(format!(
                "position {seq} is beyond the log (size {})",
                head.size
            )));
        }
        let size = head.size;
        let ids = tree::needed_nodes(|get| {
            inclusion_path(seq, size, &mut |id| get(id));
        });
        let nodes = self.fetch_nodes(&ids).await?;
        let proof = inclusion_path(seq, size, &mut |id| nodes[&id]);
        let (leaf, record) = on_pool!(&self.inner.db, p => {
            let leaf: Vec<u8> = sqlx::query("SELECT leaf FROM audit_leaf WHERE seq = $1").bind(seq as i64).fetch_one(p).await?.try_get(0)?;
            let rec = sqlx::query("SELECT event_id, salt, record FROM audit_record WHERE seq = $1").bind(seq as i64).fetch_optional(p).await?;
            let rec = match rec {
                Some(r) => Some(ProvenRecord { id: r.try_get(0)?, salt: hex::encode(r.try_get::<Vec<u8>, _>(1)?), record: r.try_get(2)? }),
                None => None,
            };
            (leaf, rec)
        });
        let root = hex::decode(&head.root)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("head root".into()))?;
        Ok(InclusionProofFile {
            kind: "inclusion".into(),
            origin: self.inner.origin.clone(),
            leaf_index: seq,
            tree_size: size,
            leaf_hash: tree::leaf_hash(&leaf),
            leaf_data: hex::encode(&leaf),
            root_hash: root,
            proof,
            checkpoint: Some(head.checkpoint),
            record,
        })
    }

    /// Consistency proof between two tree sizes (`new` at most the current size).
    pub async fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProofFile> {
        let head = self.head().await?;
        if old > new || new > head.size {
            return Err(StoreError::Invalid(format!(
                "need OLD <= NEW <= {} (the log size); got {old} and {new}",
                head.size
            )));
        }
        let ids = tree::needed_nodes(|get| {
            consistency_path(old, new, &mut |id| get(id));
            if old > 0 {
                range_hash(0, old, &mut |id| get(id));
            }
            if new > 0 {
                range_hash(0, new, &mut |id| get(id));
            }
        });
        let nodes = self.fetch_nodes(&ids).await?;
        let mut get = |id: NodeId| nodes[&id];
        let proof = consistency_path(old, new, &mut get);
        let old_root = if old == 0 {
            empty_root()
        } else {
            range_hash(0, old, &mut get)
        };
        let new_root = if new == 0 {
            empty_root()
        } else {
            range_hash(0, new, &mut get)
        };
        Ok(ConsistencyProofFile {
            kind: "consistency".into(),
            origin: self.inner.origin.clone(),
            old_size: old,
            new_size: new,
            old_root,
            new_root,
            proof,
            old_checkpoint: self.checkpoint_note(old, &head).await?,
            new_checkpoint: self.checkpoint_note(new, &head).await?,
        })
    }

    /// The latest signed checkpoint; it is also kept in the checkpoint table, so later
    /// consistency proofs from it carry its signature.
    pub async fn publish_checkpoint(&self) -> Result<String> {
        let head = self.head().await?;
        let now = self.now().as_microsecond();
        on_pool!(&self.inner.db, p => {
            sqlx::query("INSERT INTO audit_checkpoint (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                .bind(head.size as i64).bind(&head.checkpoint).bind(now).execute(p).await?;
        });
        Ok(head.checkpoint)
    }

    /// Events matching `filter`, in log order (pruned records are not returned).
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut sql = String::from(
            "SELECT r.seq, l.leaf, r.record FROM audit_record r JOIN audit_leaf l ON l.seq = r.seq WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = |sql: &mut String, frag: &str| {
            n += 1;
            sql.push_str(&frag.replace('?', &format!("${n}")));
        };
        enum Arg {
            S(String),
            I(i64),
        }
        let mut args = Vec::new();
        if let Some(c) = &filter.change_id {
            next(&mut sql, " AND r.change_id = ?");
            args.push(Arg::S(c.clone()));
        }
        if let Some(a) = &filter.actor {
            next(&mut sql, " AND r.actor = ?");
            args.push(Arg::S(a.clone()));
        }
        if let Some(k) = &filter.kind {
            match k.strip_suffix('*') {
                Some(prefix) => {
                    next(&mut sql, " AND r.kind LIKE ? ESCAPE '!'");
                    let escaped = prefix
                        .replace('!', "!!")
                        .replace('%', "!%")
                        .replace('_', "!_");
                    args.push(Arg::S(format!("{escaped}%")));
                }
                None => {
                    next(&mut sql, " AND r.kind = ?");
                    args.push(Arg::S(k.clone()));
                }
            }
        }
        if let Some(s) = filter.since {
            next(&mut sql, " AND r.recorded_at >= ?");
            args.push(Arg::I(s.as_microsecond()));
        }
        if let Some(u) = filter.until {
            next(&mut sql, " AND r.recorded_at < ?");
            args.push(Arg::I(u.as_microsecond()));
        }
        if let Some(a) = filter.after_seq {
            next(&mut sql, " AND r.seq > ?");
            args.push(Arg::I(a as i64));
        }
        sql.push_str(" ORDER BY r.seq");
        if let Some(l) = filter.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let rows = on_pool!(&self.inner.db, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in &args {
                q = match a {
                    Arg::S(s) => q.bind(s.clone()),
                    Arg::I(i) => q.bind(*i),
                };
            }
            let mut out = Vec::new();
            for r in q.fetch_all(p).await? {
                let seq: i64 = r.try_get(0)?;
                let leaf: Vec<u8> = r.try_get(1)?;
                let text: String = r.try_get(2)?;
                out.push((seq, leaf, text));
            }
            out
        });
        rows.into_iter()
            .map(|(seq, leaf, text)| {
                let record = Record::parse(text.as_bytes())
                    .map_err(|e| StoreError::Corrupt(format!("record {seq}: {e}")))?;
                Ok(StoredEvent {
                    seq: seq as u64,
                    leaf_hash: hex::encode(tree::leaf_hash(&leaf)),
                    record,
                })
            })
            .collect()
    }

    /// Retention: delete the records (not the leaves) recorded before `before`, refusing any
    /// cutoff younger than `now - retention`. Logs an `audit.pruned` event in the same
    /// transaction; verification uses it to tell pruned records from deleted ones.
    pub async fn prune(
        &self,
        before: Timestamp,
        retention: Span,
        actor: &str,
    ) -> Result<PruneOutcome> {
        let now = self.now();
        let horizon = now
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .checked_sub(retention)
            .map_err(|e| StoreError::Invalid(format!("retention {retention}: {e}")))?
            .timestamp();
        if before > horizon {
            return Err(StoreError::RetentionRefused {
                before,
                retention: retention.to_string(),
                horizon,
            });
        }
        let mut tx = self.begin().await?;
        let cutoff = before.as_microsecond();
        let deleted = crate::on_conn!(tx.conn(), c => {
            sqlx::query("DELETE FROM audit_record WHERE recorded_at < $1").bind(cutoff).execute(&mut *c).await?.rows_affected()
        });
        let ev = AuditEvent::new(kinds::AUDIT_PRUNED, actor).details(serde_json::json!({
            "before": before.to_string(),
            "deleted": deleted,
            "retention": retention.to_string(),
        }));
        // Internal event: not subject to the policy's field list.
        let a = tx.append_inner_unchecked(ev).await?;
        tx.commit().await?;
        Ok(PruneOutcome {
            before,
            deleted,
            event_id: a.id,
        })
    }
}

impl crate::Tx {
    pub(crate) async fn append_inner_unchecked(
        &mut self,
        ev: AuditEvent,
    ) -> Result<crate::Appended> {
        ev.validate(None)?;
        self.append_inner(ev, None).await
    }
}

//! Reading the audit log back: head, proofs, checkpoints, search, export rows, and retention
//! (verification is in `verify`).

use std::collections::HashMap;

use changegate_audit::tree::{
    self, Hash, NodeId, consistency_path, empty_root, inclusion_path, range_hash,
};
use changegate_audit::{
    AuditEvent, Checkpoint, ConsistencyProofFile, InclusionProofFile, ProvenRecord, Record, kinds,
};
use jiff::Timestamp;
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
    /// The record's salt, hex: with the record it recomputes the leaf (`report verify` checks an
    /// export with it). Not serialised with the event.
    #[serde(skip)]
    pub salt: String,
    /// The record.
    pub record: Record,
}

/// The records retention never deletes: for each document a record's `state` names (table, id),
/// the latest one. `LIKE` only narrows the rows whose JSON is parsed.
const KEEP_STATE_SQLITE: &str = "SELECT MAX(k.seq) FROM audit_record k WHERE k.record LIKE '%\"state\"%' AND json_extract(k.record, '$.state.table') IS NOT NULL GROUP BY json_extract(k.record, '$.state.table'), json_extract(k.record, '$.state.id')";
/// [`KEEP_STATE_SQLITE`] for PostgreSQL.
const KEEP_STATE_POSTGRES: &str = "SELECT MAX(k.seq) FROM audit_record k WHERE k.record LIKE '%\"state\"%' AND (k.record::jsonb) -> 'state' ->> 'table' IS NOT NULL GROUP BY (k.record::jsonb) -> 'state' ->> 'table', (k.record::jsonb) -> 'state' ->> 'id'";

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneOutcome {
    /// Cutoff: records recorded before it were deleted.
    pub before: Timestamp,
    /// Records deleted.
    pub deleted: u64,
    /// Records older than the cutoff kept because each is the latest proof of a stored
    /// document's state.
    pub kept: u64,
    /// The `audit.pruned` event that records the run.
    pub event_id: String,
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
        let _turn = self.write_turn().await;
        on_pool!(&self.inner.db, p => {
            sqlx::query("INSERT INTO audit_checkpoint (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                .bind(head.size as i64).bind(&head.checkpoint).bind(now).execute(p).await?;
        });
        Ok(head.checkpoint)
    }

    /// Events matching `filter`, in log order (pruned records are not returned).
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut sql = String::from(
            "SELECT r.seq, l.leaf, r.record, r.salt FROM audit_record r JOIN audit_leaf l ON l.seq = r.seq WHERE 1 = 1",
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
                let salt: Vec<u8> = r.try_get(3)?;
                out.push((seq, leaf, text, salt));
            }
            out
        });
        rows.into_iter()
            .map(|(seq, leaf, text, salt)| {
                let record = Record::parse(text.as_bytes())
                    .map_err(|e| StoreError::Corrupt(format!("record {seq}: {e}")))?;
                Ok(StoredEvent {
                    seq: seq as u64,
                    leaf_hash: hex::encode(tree::leaf_hash(&leaf)),
                    salt: hex::encode(salt),
                    record,
                })
            })
            .collect()
    }

    /// Retention: delete the records (not the leaves) recorded before `before`, except the latest
    /// record carrying the state of each stored document (change, world, token), under the
    /// policy's `[audit]` retention. The retention is a floor: under one shorter than the
    /// compliance minimum (2 years) nothing is pruned unless the policy acknowledges exactly that
    /// period (`audit-retention-below-minimum`), and no cutoff younger than `now - retention` is
    /// accepted (`audit-retention-refused`). Logs an `audit.pruned` event (what was pruned, by
    /// whom, under which retention and acknowledgement) in the same transaction; verification uses
    /// it to tell pruned records from deleted ones.
    pub async fn prune(
        &self,
        before: Timestamp,
        audit: &changegate_policy::Audit,
        actor: &str,
    ) -> Result<PruneOutcome> {
        let now = self.now();
        let retention = audit.retention.get();
        let acknowledgement = audit.acknowledgement();
        let below_minimum = audit.below_minimum_at(now);
        if below_minimum && acknowledgement.is_none() {
            return Err(StoreError::RetentionBelowMinimum {
                retention: audit.retention.to_string(),
                minimum: changegate_policy::MINIMUM_RETENTION.into(),
            });
        }
        let horizon = now
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .checked_sub(retention)
            .map_err(|e| StoreError::Invalid(format!("retention {retention}: {e}")))?
            .timestamp();
        if before > horizon {
            return Err(StoreError::RetentionRefused {
                before,
                retention: audit.retention.to_string(),
                horizon,
            });
        }
        let mut tx = self.begin().await?;
        let cutoff = before.as_microsecond();
        // Never the record that proves a stored row's current state: for every document a
        // record's `state` names, the latest such record is kept, however old (its leaf and the
        // checkpoints over it are never deleted, so verify still checks it).
        let keep = match tx.conn() {
            crate::TxConn::Sqlite(_) => KEEP_STATE_SQLITE,
            crate::TxConn::Postgres(_) => KEEP_STATE_POSTGRES,
        };
        let range_sql = format!(
            "SELECT MIN(seq), MAX(seq) FROM audit_record WHERE recorded_at < $1 AND seq NOT IN ({keep})"
        );
        let delete_sql =
            format!("DELETE FROM audit_record WHERE recorded_at < $1 AND seq NOT IN ({keep})");
        let (deleted, first, last, kept) = crate::on_conn!(tx.conn(), c => {
            let range = sqlx::query(sqlx::AssertSqlSafe(range_sql.as_str())).bind(cutoff).fetch_one(&mut *c).await?;
            let first: Option<i64> = range.try_get(0)?;
            let last: Option<i64> = range.try_get(1)?;
            let deleted = sqlx::query(sqlx::AssertSqlSafe(delete_sql.as_str())).bind(cutoff).execute(&mut *c).await?.rows_affected();
            let kept: i64 = sqlx::query("SELECT COUNT(*) FROM audit_record WHERE recorded_at < $1").bind(cutoff).fetch_one(&mut *c).await?.try_get(0)?;
            (deleted, first, last, kept)
        });
        let ev = AuditEvent::new(kinds::AUDIT_PRUNED, actor).details(serde_json::json!({
            "before": before.to_string(),
            "deleted": deleted,
            "first_seq": first,
            "last_seq": last,
            "kept_state_records": kept,
            "retention": retention.to_string(),
            "policy_retention": audit.retention.to_string(),
            "minimum_retention": changegate_policy::MINIMUM_RETENTION,
            "horizon": horizon.to_string(),
            "below_minimum_acknowledged": acknowledgement.filter(|_| below_minimum).map(|a| serde_json::json!({
                "retention": a.retention.to_string(),
                "by": a.by,
                "reason": a.reason,
                "date": a.date.to_string(),
            })),
        }));
        // Internal event: not subject to the policy's field list.
        let a = tx.append_inner_unchecked(ev).await?;
        tx.commit().await?;
        Ok(PruneOutcome {
            before,
            deleted,
            kept: kept as u64,
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

//! `audit verify` on a SQLite file: the log read by rusqlite on its own read-only connections,
//! on three threads, instead of streamed through sqlx (docs/adr/0011-audit-verify-scan.md).
//!
//! - this thread (the caller's blocking thread) opens the snapshot: `BEGIN` and the first read
//!   (meta, head, stored checkpoints), registers the checkpoints with the [`Verifier`], then
//!   runs the verifier over leaf batches as they arrive;
//! - the *leaf reader* steps `audit_leaf` and `audit_record` in position order in that same
//!   read transaction (a merge of two rowid scans: no per-row look-up, and a record without a
//!   leaf is seen on the way), copies each row into a reusable batch and hands full batches over
//!   a bounded channel;
//! - the *node reader* starts after the snapshot was taken (so it sees at least every node of
//!   the leaves read; nodes of later appends are ignored by the verifier) and collects
//!   `audit_node`.
//!
//! Every check is the verifier's, exactly as for PostgreSQL; only the reading differs.

use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use changegate_audit::tree::Hash;
use changegate_audit::{LeafRow, RecordRow, Report, StateRow, StateTable, Verifier, WORLD_ID};
use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator as _;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Statement};

use super::common::{
    HeadRow, NODE_SCAN, STATE_CHANGES, STATE_TOKENS, STATE_WORLD, TokenDoc, VERIFY_CHECKPOINTS,
    VERIFY_HEAD, VERIFY_META, VerifyMeta, finish_verify, node_hash_or_ones, start_verify,
};
use crate::{Inner, Result, StoreError};

/// Rows per batch handed from the leaf reader to the verifier (about 1 MB).
const BATCH_ROWS: usize = 1024;
/// Batches in flight (the reader runs at most this far ahead).
const BATCHES_IN_FLIGHT: usize = 8;

const LEAVES: &str = "SELECT seq, leaf FROM audit_leaf ORDER BY seq";
const RECORDS: &str = "SELECT seq, event_id, kind, actor, change_id, recorded_at, salt, record \
    FROM audit_record ORDER BY seq";

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Scan(Box::new(e))
}

fn open(file: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
    // The whole log is read once: map it rather than copy every page through read(2).
    conn.execute_batch("PRAGMA mmap_size = 4294967296; PRAGMA cache_size = -131072;")
        .map_err(db_err)?;
    Ok(conn)
}

/// Verify the log in the SQLite file `file` (the store's own database).
pub(crate) fn verify(inner: &Inner, file: &Path, extra_checkpoint: Option<&str>) -> Result<Report> {
    let conn = open(file)?;
    // One read transaction for meta, head, checkpoints, leaves and records: in WAL mode its
    // snapshot is taken by the first read, so appends committed meanwhile are not seen.
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let meta = read_meta(&conn)?;
    let (mut v, extra_failures) = start_verify(inner, meta, extra_checkpoint);
    // The state tables, in the same read transaction, before the leaves take the connection.
    read_states(&conn, &mut v)?;
    let (full_tx, full_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (free_tx, free_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
    let (orphan, nodes) = std::thread::scope(|s| {
        // Started only now, after our snapshot: it sees every node of the leaves we read.
        let nodes = spawn(s, "verify-nodes", || read_nodes(file))?;
        let leaves = spawn(s, "verify-leaves", move || {
            let r = read_leaves(&conn, &full_tx, &free_rx);
            drop(full_tx);
            // Read only: ending the transaction cannot lose anything.
            let end = conn.execute_batch("ROLLBACK").map_err(db_err);
            let orphan = r?;
            end?;
            Ok(orphan)
        });
        let leaves = match leaves {
            Ok(l) => l,
            Err(e) => {
                let _ = nodes.join();
                return Err(e);
            }
        };
        // By value: should the verifier panic, the channel closes and the reader stops.
        for batch in full_rx {
            batch.feed(&mut v);
            // The reader may have finished and dropped its end: then the batch is just freed.
            let _ = free_tx.try_send(batch.cleared());
        }
        let orphan = join(leaves, "leaf reader");
        let nodes = join(nodes, "node reader");
        Ok((orphan?, nodes?))
    })?;
    Ok(finish_verify(v, extra_failures, orphan, nodes))
}

fn spawn<'s, T: Send + 's>(
    s: &'s std::thread::Scope<'s, '_>,
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 's,
) -> Result<std::thread::ScopedJoinHandle<'s, Result<T>>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, f)
        .map_err(|e| StoreError::Io {
            context: format!("start thread {name}"),
            source: e,
        })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>, what: &str) -> Result<T> {
    h.join()
        .map_err(|_| StoreError::Corrupt(format!("verify {what} panicked")))?
}

fn read_meta(conn: &Connection) -> Result<VerifyMeta> {
    let mut st = conn.prepare(VERIFY_META).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    let meta = match rows.next().map_err(db_err)? {
        Some(r) => Some((r.get(0).map_err(db_err)?, r.get(1).map_err(db_err)?)),
        None => None,
    };
    let mut st = conn.prepare(VERIFY_HEAD).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    let head = match rows.next().map_err(db_err)? {
        Some(r) => Some(HeadRow {
            size: r.get(0).map_err(db_err)?,
            root: bytes(r.get_ref(1).map_err(db_err)?, "audit_head.root", 1)?.to_vec(),
            frontier: bytes(r.get_ref(2).map_err(db_err)?, "audit_head.frontier", 1)?.to_vec(),
            checkpoint: r.get(3).map_err(db_err)?,
        }),
        None => None,
    };
    let mut st = conn.prepare(VERIFY_CHECKPOINTS).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    let mut checkpoints = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        checkpoints.push((r.get(0).map_err(db_err)?, r.get(1).map_err(db_err)?));
    }
    Ok(VerifyMeta {
        meta,
        head,
        checkpoints,
    })
}

/// Feed every change row, the world row and every token row to the verifier (each document hashed as read).
fn read_states(conn: &Connection, v: &mut Verifier) -> Result<()> {
    let mut st = conn.prepare(STATE_CHANGES).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    while let Some(r) = rows.next().map_err(db_err)? {
        let id = text(r.get_ref(0).map_err(db_err)?, "server_change.id", 0)?;
        v.state_row(StateRow {
            table: StateTable::Change,
            id,
            version: r.get(1).map_err(db_err)?,
            doc: bytes(r.get_ref(2).map_err(db_err)?, "server_change.state", 0)?,
        });
    }
    let mut st = conn.prepare(STATE_WORLD).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    if let Some(r) = rows.next().map_err(db_err)? {
        v.state_row(StateRow {
            table: StateTable::World,
            id: WORLD_ID,
            version: r.get(0).map_err(db_err)?,
            doc: bytes(r.get_ref(1).map_err(db_err)?, "server_world.state", 1)?,
        });
    }
    let mut st = conn.prepare(STATE_TOKENS).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    while let Some(r) = rows.next().map_err(db_err)? {
        let t = TokenDoc {
            id: r.get(0).map_err(db_err)?,
            version: r.get(1).map_err(db_err)?,
            digest: r.get(2).map_err(db_err)?,
            person: r.get(3).map_err(db_err)?,
            admin: r.get(4).map_err(db_err)?,
            revoked: r.get(5).map_err(db_err)?,
            kind: r.get(6).map_err(db_err)?,
            scopes: r.get(7).map_err(db_err)?,
            created_at: r.get(8).map_err(db_err)?,
            expires_at: r.get(9).map_err(db_err)?,
            revoked_at: r.get(10).map_err(db_err)?,
            revoked_by: r.get(11).map_err(db_err)?,
        };
        let doc = t.doc();
        v.state_row(StateRow {
            table: StateTable::Token,
            id: &t.id,
            version: t.version,
            doc: doc.as_bytes(),
        });
    }
    Ok(())
}

fn read_nodes(file: &Path) -> Result<Vec<(i64, Hash)>> {
    let conn = open(file)?;
    let mut st = conn.prepare(NODE_SCAN).map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        let id: i64 = r.get(0).map_err(db_err)?;
        let hash = bytes(r.get_ref(1).map_err(db_err)?, "audit_node.hash", id)?;
        out.push((id, node_hash_or_ones(hash)));
    }
    Ok(out)
}

/// A value read as bytes (BLOB, or TEXT as stored); any other type is a corrupt row.
fn bytes<'a>(v: ValueRef<'a>, col: &str, seq: i64) -> Result<&'a [u8]> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b),
        other => Err(StoreError::Corrupt(format!(
            "{col} of row {seq} is {:?}, not bytes",
            other.data_type()
        ))),
    }
}

/// A value read as UTF-8 text.
fn text<'a>(v: ValueRef<'a>, col: &str, seq: i64) -> Result<&'a str> {
    std::str::from_utf8(bytes(v, col, seq)?)
        .map_err(|e| StoreError::Corrupt(format!("{col} of row {seq} is not UTF-8: {e}")))
}

/// Step the leaves and records in position order and merge them; send the rows in batches.
/// Returns the smallest position of a record without a leaf, if any.
fn read_leaves(
    conn: &Connection,
    full: &SyncSender<Batch>,
    free: &Receiver<Batch>,
) -> Result<Option<i64>> {
    let mut leaves_st = conn.prepare(LEAVES).map_err(db_err)?;
    let mut records_st = conn.prepare(RECORDS).map_err(db_err)?;
    let mut leaves = leaves_st.query([]).map_err(db_err)?;
    let mut records = Records::new(&mut records_st)?;
    let mut orphan = None;
    let mut batch = Batch::default();
    while let Some(l) = leaves.next().map_err(db_err)? {
        let seq: i64 = l.get(0).map_err(db_err)?;
        let leaf = bytes(l.get_ref(1).map_err(db_err)?, "audit_leaf.leaf", seq)?;
        // Records numbered below this leaf have no leaf (leaves come in position order too).
        while let Some(r) = records.seq.filter(|&r| r < seq) {
            orphan = orphan.or(Some(r));
            records.advance()?;
        }
        let record = match records.row() {
            Some(r) if records.seq == Some(seq) => Some(r),
            _ => None,
        };
        batch.push(seq, leaf, record)?;
        if record.is_some() {
            records.advance()?;
        }
        if batch.rows.len() == BATCH_ROWS {
            let next = free.try_recv().unwrap_or_default();
            if full.send(std::mem::replace(&mut batch, next)).is_err() {
                // The verifier is gone (it can only panic): nothing more to do.
                return Ok(orphan);
            }
        }
    }
    if !batch.rows.is_empty() {
        let _ = full.send(batch);
    }
    // Records after the last leaf have no leaf either.
    Ok(orphan.or(records.seq))
}

/// The record cursor of the merge: the current row, if any.
struct Records<'s> {
    rows: rusqlite::Rows<'s>,
    seq: Option<i64>,
}

impl<'s> Records<'s> {
    fn new(st: &'s mut Statement<'_>) -> Result<Self> {
        let mut r = Records {
            rows: st.query([]).map_err(db_err)?,
            seq: None,
        };
        r.advance()?;
        Ok(r)
    }

    fn advance(&mut self) -> Result<()> {
        self.seq = match self.rows.next().map_err(db_err)? {
            Some(r) => Some(r.get(0).map_err(db_err)?),
            None => None,
        };
        Ok(())
    }

    fn row(&self) -> Option<&rusqlite::Row<'s>> {
        self.rows.get()
    }
}

/// Rows copied out of SQLite into two reusable buffers (text and bytes), so a batch of 4096
/// rows costs no allocation once the buffers have grown.
#[derive(Default)]
struct Batch {
    text: String,
    bytes: Vec<u8>,
    rows: Vec<PackedLeaf>,
}

struct PackedLeaf {
    seq: i64,
    leaf: Range<usize>,
    record: Option<PackedRecord>,
}

struct PackedRecord {
    event_id: Range<usize>,
    kind: Range<usize>,
    actor: Range<usize>,
    change_id: Option<Range<usize>>,
    recorded_at_us: i64,
    salt: Range<usize>,
    record: Range<usize>,
}

impl Batch {
    fn put_text(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    fn put_bytes(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    /// Copy one leaf and its record row (columns as in `RECORDS`).
    fn push(&mut self, seq: i64, leaf: &[u8], record: Option<&rusqlite::Row<'_>>) -> Result<()> {
        let leaf = self.put_bytes(leaf);
        let record = match record {
            Some(r) => {
                let col = |i: usize| r.get_ref(i).map_err(db_err);
                let event_id = self.put_text(text(col(1)?, "audit_record.event_id", seq)?);
                let kind = self.put_text(text(col(2)?, "audit_record.kind", seq)?);
                let actor = self.put_text(text(col(3)?, "audit_record.actor", seq)?);
                let change_id = match col(4)? {
                    ValueRef::Null => None,
                    v => Some(self.put_text(text(v, "audit_record.change_id", seq)?)),
                };
                let recorded_at_us = r.get(5).map_err(db_err)?;
                let salt = self.put_bytes(bytes(col(6)?, "audit_record.salt", seq)?);
                let record = self.put_bytes(bytes(col(7)?, "audit_record.record", seq)?);
                Some(PackedRecord {
                    event_id,
                    kind,
                    actor,
                    change_id,
                    recorded_at_us,
                    salt,
                    record,
                })
            }
            None => None,
        };
        self.rows.push(PackedLeaf { seq, leaf, record });
        Ok(())
    }

    /// Feed the rows to the verifier, in order.
    fn feed(&self, v: &mut Verifier) {
        let (t, b) = (&self.text, &self.bytes);
        for row in &self.rows {
            v.leaf(LeafRow {
                seq: row.seq,
                leaf: &b[row.leaf.clone()],
                record: row.record.as_ref().map(|r| RecordRow {
                    event_id: &t[r.event_id.clone()],
                    kind: &t[r.kind.clone()],
                    actor: &t[r.actor.clone()],
                    change_id: r.change_id.clone().map(|c| &t[c]),
                    recorded_at_us: r.recorded_at_us,
                    salt: &b[r.salt.clone()],
                    record: &b[r.record.clone()],
                }),
            });
        }
    }

    /// Empty, keeping the buffers.
    fn cleared(mut self) -> Self {
        self.text.clear();
        self.bytes.clear();
        self.rows.clear();
        self
    }
}

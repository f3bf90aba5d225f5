//! Full verification of a stored log, fed row by row so a million events never sit in memory
//! as records.
//!
//! What is checked, and the code of each failure (stable, documented in docs/audit.md):
//! - leaves are numbered 0, 1, 2, ... with no gap or duplicate (`audit-leaf-missing`,
//!   `audit-leaf-unexpected`), each leaf is well formed (`audit-leaf-malformed`) and names its
//!   own position (`audit-leaf-reordered`);
//! - each stored record hashes, with its salt, to the leaf's commitment
//!   (`audit-record-modified`), is canonical JSON of an event naming the same position and time
//!   (`audit-record-malformed`, `audit-record-moved`), and the columns used to search the log
//!   match it (`audit-index-mismatch`);
//! - a leaf without its record is only allowed when a logged `audit.pruned` event deleted it
//!   (`audit-record-deleted`);
//! - every signed checkpoint the store holds, and the log head, carries a valid signature by
//!   the log key (`checkpoint-signature-invalid`) and the root recomputed from the leaves
//!   (`checkpoint-root-mismatch`); the head also has the size of the log (`audit-log-truncated`,
//!   `audit-leaf-unexpected`); a checkpoint the auditor brings (`--checkpoint`) likewise;
//! - the stored interior nodes proofs are built from equal the recomputed ones
//!   (`audit-node-mismatch`);
//! - the head's size, root and frontier columns (what the next append builds on) equal the log
//!   recomputed at the head's size (`audit-head-mismatch`), and a stored checkpoint exists at
//!   every multiple of the log's checkpoint interval up to the head (`audit-checkpoint-missing`);
//! - every stored change and world document is exactly the one the latest event about it
//!   recorded, by version and SHA-256 of its stored bytes (`audit-state-modified`), no document
//!   is stored that no event recorded (`audit-state-unlogged`), and none the log records is
//!   gone (`audit-state-deleted`). The state tables are scanned once, beside the leaves.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::codes::Code;
use crate::record::{LeafData, Record, StateTable, commitment};
use crate::tree::{Frontier, Hash, NodeId, leaf_hash};

mod stack_str;
mod state;

use stack_str::StackStr;
pub use state::{StateRow, parse_subject};

/// Kind of the event retention appends when it deletes records. Its `details.before` (RFC 3339)
/// is the cutoff: records of leaves older than that may be missing.
pub const PRUNED_KIND: &str = "audit.pruned";

/// One failure, at a log position when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable kebab-case code.
    pub code: Code,
    /// First leaf position concerned (None: not tied to one leaf).
    pub position: Option<u64>,
    /// What is wrong, for people.
    pub message: String,
    /// The stored document concerned, for state failures (`change CR-1`, `world`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The record columns stored beside a leaf.
#[derive(Debug, Clone, Copy)]
pub struct RecordRow<'a> {
    /// Event id column.
    pub event_id: &'a str,
    /// Kind column.
    pub kind: &'a str,
    /// Actor column.
    pub actor: &'a str,
    /// Change id column.
    pub change_id: Option<&'a str>,
    /// Time column, µs.
    pub recorded_at_us: i64,
    /// Salt.
    pub salt: &'a [u8],
    /// Record bytes.
    pub record: &'a [u8],
}

/// One stored leaf and, unless pruned, its record.
#[derive(Debug, Clone, Copy)]
pub struct LeafRow<'a> {
    /// The row's position column.
    pub seq: i64,
    /// Leaf bytes.
    pub leaf: &'a [u8],
    /// Record, if stored.
    pub record: Option<RecordRow<'a>>,
}

/// Outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Leaves read.
    pub size: u64,
    /// Recomputed root, hex.
    pub root: String,
    /// Records present and checked.
    pub records: u64,
    /// Records deleted by retention (leaves kept).
    pub pruned: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Stored nodes compared.
    pub nodes: u64,
    /// Stored documents (changes, world) checked against the events that wrote them.
    pub states: u64,
    /// Every failure found, first position first.
    pub failures: Vec<Failure>,
}

impl Report {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The first bad position (smallest), if any failure has one.
    pub fn first_bad_position(&self) -> Option<u64> {
        self.failures.iter().filter_map(|f| f.position).min()
    }
}

#[derive(Deserialize)]
struct LightRecord<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow, default)]
    change_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    state: Option<LightState<'a>>,
}

use state::{HeadColumns, LightState, Logged};

struct Expected {
    label: String,
    external: bool,
    root: Hash,
    computed: Option<Hash>,
}

const MAX_FAILURES: usize = 1000;

/// Streaming verifier: register checkpoints, feed leaves in position order, then nodes, then
/// [`Verifier::finish`].
pub struct Verifier {
    frontier: Frontier,
    broken: bool,
    records: u64,
    missing: Vec<(u64, i64)>,
    prune_cutoff_us: Option<i64>,
    expected: BTreeMap<u64, Vec<Expected>>,
    exact_size: Option<(u64, String)>,
    levels: Option<Vec<Vec<Hash>>>,
    nodes_seen: Vec<u64>,
    nodes_checked: u64,
    checkpoints: u64,
    stored_checkpoints: BTreeSet<u64>,
    checkpoint_every: Option<u64>,
    head: Option<HeadColumns>,
    logged: HashMap<(StateTable, String), Logged>,
    rows: Vec<(StateTable, String, i64, Hash)>,
    failures: Vec<Failure>,
}

impl Verifier {
    /// A verifier; with `check_nodes`, it keeps every recomputed node to compare the stored ones.
    pub fn new(check_nodes: bool) -> Self {
        Verifier {
            frontier: Frontier::new(),
            broken: false,
            records: 0,
            missing: Vec::new(),
            prune_cutoff_us: None,
            expected: BTreeMap::new(),
            exact_size: None,
            levels: check_nodes.then(Vec::new),
            nodes_seen: Vec::new(),
            nodes_checked: 0,
            checkpoints: 0,
            stored_checkpoints: BTreeSet::new(),
            checkpoint_every: None,
            head: None,
            logged: HashMap::new(),
            rows: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, code: Code, position: Option<u64>, message: String) {
        self.fail_about(code, position, message, None);
    }

    fn fail_about(
        &mut self,
        code: Code,
        position: Option<u64>,
        message: String,
        subject: Option<String>,
    ) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(Failure {
                code,
                position,
                message,
                subject,
            });
        }
    }

    /// Register a signed checkpoint kept by the store: its signature is checked now, its root
    /// once the leaves are read. With `is_head`, the log must also have exactly its size.
    pub fn checkpoint(
        &mut self,
        note: &str,
        key: &VerifierKey,
        origin: &str,
        label: &str,
        is_head: bool,
    ) {
        self.add_checkpoint(note, key, origin, label, is_head, false);
    }

    /// Register a checkpoint the auditor kept outside the database (`--checkpoint FILE`).
    pub fn external_checkpoint(
        &mut self,
        note: &str,
        key: &VerifierKey,
        origin: &str,
        label: &str,
    ) {
        self.add_checkpoint(note, key, origin, label, false, true);
    }

    fn add_checkpoint(
        &mut self,
        note: &str,
        key: &VerifierKey,
        origin: &str,
        label: &str,
        is_head: bool,
        external: bool,
    ) {
        match Checkpoint::open(note, key) {
            Ok(cp) if cp.origin != origin => {
                self.fail(
                    Code::CheckpointOriginMismatch,
                    None,
                    format!(
                        "{label}: checkpoint is for log `{}`, this log is `{origin}`",
                        cp.origin
                    ),
                );
            }
            Ok(cp) => {
                self.checkpoints += 1;
                if is_head {
                    self.exact_size = Some((cp.size, label.to_string()));
                } else if !external {
                    self.stored_checkpoints.insert(cp.size);
                }
                if cp.size > 0 {
                    self.expected.entry(cp.size).or_default().push(Expected {
                        label: label.to_string(),
                        external,
                        root: cp.root,
                        computed: None,
                    });
                }
            }
            Err(e) => {
                use crate::checkpoint::CheckpointError as E;
                let code = match e {
                    E::Malformed(_) => Code::CheckpointMalformed,
                    E::Key(_) | E::Signature(_) => Code::CheckpointSignatureInvalid,
                };
                self.fail(code, None, format!("{label}: {e}"));
            }
        }
    }

    /// Feed the next leaf row (rows must come in ascending `seq` order).
    pub fn leaf(&mut self, row: LeafRow<'_>) {
        if self.broken {
            return;
        }
        let pos = self.frontier.size();
        if row.seq != pos as i64 {
            let (code, msg) = if row.seq > pos as i64 {
                (
                    Code::LeafMissing,
                    format!("leaf {pos} is missing (next stored leaf is {})", row.seq),
                )
            } else {
                (
                    Code::LeafUnexpected,
                    format!(
                        "extra leaf row numbered {} after leaf {}",
                        row.seq,
                        pos.saturating_sub(1)
                    ),
                )
            };
            self.fail(code, Some(pos), msg);
            self.broken = true;
            return;
        }
        let leaf = match LeafData::decode(row.leaf) {
            Ok(l) => l,
            Err(e) => {
                self.fail(Code::LeafMalformed, Some(pos), format!("leaf {pos}: {e}"));
                LeafData {
                    seq: pos,
                    recorded_at_us: 0,
                    commitment: [0; 32],
                }
            }
        };
        if leaf.seq != pos {
            self.fail(
                Code::LeafReordered,
                Some(pos),
                format!(
                    "leaf stored at position {pos} was written for position {}",
                    leaf.seq
                ),
            );
        }
        let h = leaf_hash(row.leaf);
        match &mut self.levels {
            Some(levels) => self.frontier.push_with(h, |id, hash| {
                let l = id.level as usize;
                if levels.len() <= l {
                    levels.resize_with(l + 1, Vec::new);
                }
                levels[l].push(*hash);
            }),
            None => self.frontier.push_with(h, |_, _| {}),
        }
        if self.head.is_some() {
            self.check_head();
        }
        let size = self.frontier.size();
        if let Some(list) = self.expected.get_mut(&size) {
            let root = self.frontier.root();
            for e in list {
                e.computed = Some(root);
            }
        }
        match row.record {
            Some(r) => self.record(pos, &leaf, r),
            None => self.missing.push((pos, leaf.recorded_at_us)),
        }
    }

    fn record(&mut self, pos: u64, leaf: &LeafData, r: RecordRow<'_>) {
        self.records += 1;
        if commitment(r.salt, r.record) != leaf.commitment {
            self.fail(
                Code::RecordModified,
                Some(pos),
                format!(
                    "record {pos} ({}) does not match the commitment in its leaf",
                    r.event_id
                ),
            );
            return;
        }
        let light: LightRecord<'_> = match serde_json::from_slice(r.record) {
            Ok(l) => l,
            Err(e) => {
                self.fail(
                    Code::RecordMalformed,
                    Some(pos),
                    format!("record {pos}: {e}"),
                );
                return;
            }
        };
        // The record must spell the leaf's time exactly as `Timestamp`'s Display does (what
        // `seal` wrote); formatted on the stack, as this runs once per event.
        let mut leaf_time = StackStr::new();
        if let Some(t) = leaf.recorded_at() {
            // A timestamp is at most 36 bytes; should that ever change, compare allocated.
            if write!(leaf_time, "{t}").is_err() {
                leaf_time.overflow = Some(t.to_string());
            }
        }
        if light.seq != pos || light.recorded_at != leaf_time.as_str() {
            self.fail(
                Code::RecordMoved,
                Some(pos),
                format!(
                    "record {pos} names position {} at {}",
                    light.seq, light.recorded_at
                ),
            );
        }
        let cols_ok = light.id == r.event_id
            && light.kind == r.kind
            && light.actor == r.actor
            && light.change_id.as_deref() == r.change_id
            && r.recorded_at_us == leaf.recorded_at_us;
        if !cols_ok {
            self.fail(
                Code::IndexMismatch,
                Some(pos),
                format!("the search columns of record {pos} differ from the record itself"),
            );
        }
        if let Some(st) = light.state {
            self.logged_state(pos, st);
        }
        if light.kind == PRUNED_KIND {
            let cutoff = Record::parse(r.record).ok().and_then(|rec| {
                rec.event
                    .details
                    .get("before")
                    .and_then(|b| b.as_str())
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            });
            match cutoff {
                Some(c) => {
                    let us = c.as_microsecond().min(leaf.recorded_at_us);
                    self.prune_cutoff_us = Some(self.prune_cutoff_us.map_or(us, |p| p.max(us)));
                }
                None => self.fail(
                    Code::RecordMalformed,
                    Some(pos),
                    format!("{PRUNED_KIND} event {pos} has no valid details.before"),
                ),
            }
        }
    }

    /// Feed a stored node (after all leaves). Nodes beyond the leaves read are ignored: they
    /// belong to appends newer than the snapshot verified.
    pub fn node(&mut self, key: i64, hash: &[u8]) {
        let Some(levels) = &self.levels else { return };
        if self.broken {
            return;
        }
        let id = NodeId::from_key(key);
        if (id.index + 1) << id.level > self.frontier.size() {
            // Not part of the tree verified (a later append seen by a newer snapshot).
            return;
        }
        let l = id.level as usize;
        let ok = levels
            .get(l)
            .and_then(|v| v.get(id.index as usize))
            .is_some_and(|h| h.as_slice() == hash);
        if self.nodes_seen.len() <= l {
            self.nodes_seen.resize(l + 1, 0);
        }
        self.nodes_seen[l] += 1;
        self.nodes_checked += 1;
        if !ok {
            // A leaf node names its position; a higher node only a range (a leaf that differs
            // is reported on its own).
            let pos = (id.level == 0).then_some(id.index);
            let last = ((id.index + 1) << id.level) - 1;
            self.fail(
                Code::NodeMismatch,
                pos,
                format!("stored node (level {}, index {}, leaves {}..={last}) is not the hash of its leaves", id.level, id.index, id.first_leaf()),
            );
        }
    }

    /// Finish: compare checkpoints, judge missing records, report.
    pub fn finish(mut self) -> Report {
        let size = self.frontier.size();
        if !self.broken
            && let Some(levels) = self.levels.take()
        {
            for (l, v) in levels.iter().enumerate() {
                let seen = self.nodes_seen.get(l).copied().unwrap_or(0);
                if seen != v.len() as u64 {
                    self.fail(
                        Code::NodeMismatch,
                        None,
                        format!(
                            "{} stored nodes at level {l}, the leaves make {}",
                            seen,
                            v.len()
                        ),
                    );
                }
            }
        }
        // Checkpoint roots, smallest size first. A mismatch is localised after the largest
        // matching checkpoint below it from the same source (the store's own chain of
        // checkpoints, or the auditor's): the leaves before that one are vouched for.
        let mut last_good = [0u64; 2];
        let mut root_mismatches = Vec::new();
        let expected = std::mem::take(&mut self.expected);
        for (cp_size, list) in expected {
            let mut good_here = [false; 2];
            for e in list {
                let src = usize::from(e.external);
                let last_good = last_good[src];
                match e.computed {
                    Some(root) if root == e.root => good_here[src] = true,
                    Some(_) => root_mismatches.push((
                        last_good,
                        cp_size,
                        format!("{}: the first {cp_size} leaves no longer hash to the signed root (first difference at or after leaf {last_good})", e.label),
                    )),
                    None if !self.broken => self.fail(
                        Code::LogTruncated,
                        Some(size),
                        format!("{}: signed for {cp_size} leaves, the log has {size}", e.label),
                    ),
                    None => {}
                }
            }
            for src in 0..2 {
                if good_here[src] {
                    last_good[src] = cp_size;
                }
            }
        }
        // A root mismatch is explained by an exact failure inside its range when there is one;
        // otherwise its lower bound is the best position known.
        for (lo, hi, message) in root_mismatches {
            let explained = self
                .failures
                .iter()
                .any(|f| f.position.is_some_and(|p| p >= lo && p < hi));
            self.fail(
                Code::CheckpointRootMismatch,
                (!explained).then_some(lo),
                message,
            );
        }
        if let Some((head, label)) = self.exact_size.clone()
            && !self.broken
            && size > head
        {
            self.fail(Code::LeafUnexpected, Some(head), format!("{label} is signed for {head} leaves, the log has {size}: leaves from {head} on were added behind the log's back"));
        }
        self.finish_head(size);
        let states = self.finish_states();
        let cutoff = self.prune_cutoff_us;
        let mut pruned = 0;
        for (pos, at) in std::mem::take(&mut self.missing) {
            if cutoff.is_some_and(|c| at < c) {
                pruned += 1;
            } else {
                self.fail(
                    Code::RecordDeleted,
                    Some(pos),
                    format!("record {pos} is missing and no logged retention run covers it"),
                );
            }
        }
        self.failures
            .sort_by_key(|f| f.position.unwrap_or(u64::MAX));
        Report {
            size,
            root: hex::encode(self.frontier.root()),
            records: self.records,
            pruned,
            checkpoints: self.checkpoints,
            nodes: self.nodes_checked,
            states,
            failures: self.failures,
        }
    }
}

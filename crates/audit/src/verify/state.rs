//! The checks of `verify` beyond the tree: the head row's columns, the stored checkpoints the
//! interval promises, and the state tables against the `state` each writing event recorded
//! (docs/audit.md, "State reference").

use std::borrow::Cow;

use serde::Deserialize;

use super::Verifier;
use crate::codes::Code;
use crate::record::{StateTable, state_hash};

/// One stored document of the state tables (a change, or the world), read in the snapshot of
/// the leaves.
#[derive(Debug, Clone, Copy)]
pub struct StateRow<'a> {
    /// Which table.
    pub table: StateTable,
    /// Change id, or [`crate::WORLD_ID`].
    pub id: &'a str,
    /// Its version column.
    pub version: i64,
    /// The document exactly as stored.
    pub doc: &'a [u8],
}

#[derive(Deserialize)]
pub(super) struct LightState<'a> {
    #[serde(borrow)]
    pub(super) table: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
    pub(super) version: i64,
    #[serde(borrow)]
    pub(super) sha256: Cow<'a, str>,
}

/// The latest state an event recorded for a document.
pub(super) struct Logged {
    pub(super) seq: u64,
    pub(super) version: i64,
    pub(super) sha256: String,
}

/// The head row's columns, compared with the recomputed log at the head's size.
pub(super) struct HeadColumns {
    pub(super) size: i64,
    pub(super) root: Vec<u8>,
    pub(super) frontier: Vec<u8>,
    pub(super) checked: bool,
}

impl Verifier {
    /// Register the head row's size, root and frontier columns (before any leaf): they must
    /// equal the log recomputed at that size.
    pub fn head_columns(&mut self, size: i64, root: &[u8], frontier: &[u8]) {
        self.head = Some(HeadColumns {
            size,
            root: root.to_vec(),
            frontier: frontier.to_vec(),
            checked: false,
        });
        self.check_head();
    }

    /// The log keeps a signed checkpoint every `every` leaves: a stored checkpoint must exist at
    /// each multiple up to the head.
    pub fn checkpoints_every(&mut self, every: u64) {
        self.checkpoint_every = (every > 0).then_some(every);
    }

    /// Feed a stored document (a change row or the world row), at any time before
    /// [`Verifier::finish`]: it must be the one the latest event about it recorded.
    pub fn state_row(&mut self, row: StateRow<'_>) {
        self.rows.push((
            row.table,
            row.id.to_string(),
            row.version,
            state_hash(row.doc),
        ));
    }

    pub(super) fn check_head(&mut self) {
        let size = self.frontier.size();
        let Some(h) = &mut self.head else { return };
        if h.checked || h.size != size as i64 {
            return;
        }
        h.checked = true;
        if h.root != self.frontier.root() || h.frontier != self.frontier.to_bytes() {
            let msg = format!(
                "the log head's root or frontier columns are not those of the first {size} leaves: the next append would build on them"
            );
            self.fail(Code::HeadMismatch, None, msg);
        }
    }

    /// A record's `state`: the latest one seen for its document wins (leaves come in order).
    pub(super) fn logged_state(&mut self, pos: u64, st: LightState<'_>) {
        match StateTable::parse(&st.table) {
            Some(table) => {
                let logged = Logged {
                    seq: pos,
                    version: st.version,
                    sha256: st.sha256.into_owned(),
                };
                // Leaves come in position order: the last one seen is the latest.
                self.logged.insert((table, st.id.into_owned()), logged);
            }
            None => self.fail(
                Code::RecordMalformed,
                Some(pos),
                format!("record {pos} records state of unknown table `{}`", st.table),
            ),
        }
    }

    /// The head's columns against its signed note and the leaves; the checkpoints the interval
    /// promises.
    pub(super) fn finish_head(&mut self, size: u64) {
        let signed = self.exact_size.as_ref().map(|(s, _)| *s);
        if let Some(h) = &self.head {
            let (cols, checked) = (h.size, h.checked);
            if signed.is_some_and(|s| s as i64 != cols) {
                self.fail(
                    Code::HeadMismatch,
                    None,
                    format!(
                        "the log head's size column says {cols}, its signed checkpoint {}",
                        signed.unwrap_or_default()
                    ),
                );
            } else if !checked && !self.broken {
                self.fail(
                    Code::HeadMismatch,
                    None,
                    format!("the log head's size column says {cols}, the log has {size} leaves"),
                );
            }
        }
        if let Some(every) = self.checkpoint_every {
            let upto = signed.unwrap_or(size);
            let mut m = every;
            while m <= upto {
                if !self.stored_checkpoints.contains(&m) {
                    self.fail(
                        Code::CheckpointMissing,
                        None,
                        format!(
                            "stored checkpoint {m} is missing (the log keeps one every {every} leaves): it was deleted"
                        ),
                    );
                }
                m += every;
            }
        }
    }

    /// Every stored document against the latest event about it; returns how many were checked.
    pub(super) fn finish_states(&mut self) -> u64 {
        let mut logged = std::mem::take(&mut self.logged);
        let rows = std::mem::take(&mut self.rows);
        let checked = rows.len() as u64;
        let pruned = self.prune_cutoff_us.is_some();
        for (table, id, version, hash) in rows {
            let subject = subject(table, &id);
            match logged.remove(&(table, id)) {
                Some(l) => {
                    let sha = hex::encode(hash);
                    if l.version != version || l.sha256 != sha {
                        self.fail_about(
                            Code::StateModified,
                            None,
                            format!(
                                "{subject}: the stored document (version {version}, sha256 {sha}) is not the one event {} recorded (version {}, sha256 {}): it was edited behind the server's back",
                                l.seq, l.version, l.sha256
                            ),
                            Some(subject),
                        );
                    }
                }
                // The world row the migration seeds, never written since.
                None if table == StateTable::World && version == 0 && hash == state_hash(b"{}") => {
                }
                None => {
                    let hint = if pruned {
                        " (or retention deleted the record that proved it)"
                    } else {
                        ""
                    };
                    self.fail_about(
                        Code::StateUnlogged,
                        None,
                        format!(
                            "{subject}: the stored document (version {version}) was written by no logged event: it was inserted behind the server's back{hint}"
                        ),
                        Some(subject),
                    );
                }
            }
        }
        let mut gone: Vec<_> = logged.into_iter().collect();
        gone.sort_by_key(|(_, l)| l.seq);
        for ((table, id), l) in gone {
            let subject = subject(table, &id);
            self.fail_about(
                Code::StateDeleted,
                None,
                format!(
                    "{subject}: event {} recorded version {} as stored, the state tables no longer hold it",
                    l.seq, l.version
                ),
                Some(subject),
            );
        }
        checked
    }
}

/// How a failure names a stored document: `change CR-1`, `world`, `token tok_…` (a token by its
/// id only: never its digest).
fn subject(table: StateTable, id: &str) -> String {
    match table {
        StateTable::Change => format!("change {id}"),
        StateTable::World => "world".to_string(),
        StateTable::Token => format!("token {id}"),
    }
}

/// The stored document a state failure's `subject` names, as (table, id): the inverse of how
/// failures name them (`change CR-1`, `world`, `token tok_1`). `None` for any other text.
pub fn parse_subject(subject: &str) -> Option<(StateTable, String)> {
    if subject == "world" {
        return Some((StateTable::World, crate::record::WORLD_ID.to_string()));
    }
    let (table, id) = subject.split_once(' ')?;
    match StateTable::parse(table)? {
        StateTable::World => None,
        t => Some((t, id.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AuditEvent, StateRef, WORLD_ID, seal};
    use crate::verify::{LeafRow, RecordRow, Report};

    /// A log of `refs` (one event each), then the rows, verified.
    fn verify(refs: &[StateRef], rows: &[(StateTable, &str, i64, &[u8])]) -> Report {
        let mut v = Verifier::new(false);
        for (i, r) in refs.iter().enumerate() {
            let mut ev = AuditEvent::new("change.state", "alice").change(r.id.clone());
            ev.state = Some(r.clone());
            let at = jiff::Timestamp::from_second(1_700_000_000 + i as i64).unwrap();
            let salt = [i as u8; 32];
            let s = seal(ev, i as u64, format!("ev_{i}"), at, &salt);
            let leaf = s.leaf.encode();
            v.leaf(LeafRow {
                seq: i as i64,
                leaf: &leaf,
                record: Some(RecordRow {
                    event_id: &s.record.id,
                    kind: "change.state",
                    actor: "alice",
                    change_id: Some(&r.id),
                    recorded_at_us: s.leaf.recorded_at_us,
                    salt: &salt,
                    record: &s.record_bytes,
                }),
            });
        }
        for (table, id, version, doc) in rows {
            v.state_row(StateRow {
                table: *table,
                id,
                version: *version,
                doc,
            });
        }
        v.finish()
    }

    fn codes(r: &Report) -> Vec<(Code, Option<&str>)> {
        r.failures
            .iter()
            .map(|f| (f.code, f.subject.as_deref()))
            .collect()
    }

    const C: StateTable = StateTable::Change;

    #[test]
    fn the_latest_state_of_each_document_must_be_the_stored_one() {
        let refs = [
            StateRef::of(C, "c1", 1, b"one"),
            StateRef::of(C, "c2", 1, b"x"),
            StateRef::of(C, "c1", 2, b"two"),
        ];
        let ok = verify(&refs, &[(C, "c1", 2, b"two"), (C, "c2", 1, b"x")]);
        assert!(ok.ok(), "{:#?}", ok.failures);
        assert_eq!(ok.states, 2);
        // An older document the log did record, but not last.
        let r = verify(&refs, &[(C, "c1", 1, b"one"), (C, "c2", 1, b"x")]);
        assert_eq!(codes(&r), [(Code::StateModified, Some("change c1"))]);
        // The latest version, other bytes.
        let r = verify(&refs, &[(C, "c1", 2, b"two "), (C, "c2", 1, b"x")]);
        assert_eq!(codes(&r), [(Code::StateModified, Some("change c1"))]);
        // A row no event wrote; a row the log has that is gone.
        let r = verify(&refs, &[(C, "c1", 2, b"two"), (C, "c3", 1, b"x")]);
        assert_eq!(
            codes(&r),
            [
                (Code::StateUnlogged, Some("change c3")),
                (Code::StateDeleted, Some("change c2"))
            ]
        );
    }

    #[test]
    fn the_seeded_world_needs_no_event_an_edited_one_does() {
        let w = StateTable::World;
        assert!(verify(&[], &[(w, WORLD_ID, 0, b"{}")]).ok());
        let r = verify(&[], &[(w, WORLD_ID, 0, b"{\"teams\":{}}")]);
        assert_eq!(codes(&r), [(Code::StateUnlogged, Some("world"))]);
        let refs = [StateRef::of(w, WORLD_ID, 1, b"{\"a\":1}")];
        assert!(verify(&refs, &[(w, WORLD_ID, 1, b"{\"a\":1}")]).ok());
        // Put back to the seed: the log says version 1 was stored.
        let r = verify(&refs, &[(w, WORLD_ID, 0, b"{}")]);
        assert_eq!(codes(&r), [(Code::StateModified, Some("world"))]);
    }

    #[test]
    fn subjects_parse_back() {
        for (t, id) in [
            (StateTable::Change, "CR-1"),
            (StateTable::World, WORLD_ID),
            (StateTable::Token, "tok_x"),
        ] {
            assert_eq!(parse_subject(&subject(t, id)), Some((t, id.to_string())));
        }
        assert_eq!(parse_subject("world x"), None);
        assert_eq!(parse_subject("index 3"), None);
    }

    #[test]
    fn head_columns_must_be_the_recomputed_log() {
        // An empty log: empty frontier, empty root.
        let mut v = Verifier::new(false);
        v.head_columns(0, &crate::tree::empty_root(), &[]);
        assert!(v.finish().ok());
        let mut v = Verifier::new(false);
        v.head_columns(0, &[0; 32], &[]);
        assert_eq!(codes(&v.finish()), [(Code::HeadMismatch, None)]);
        // Size beyond the leaves.
        let mut v = Verifier::new(false);
        v.head_columns(3, &[0; 32], &[]);
        assert_eq!(codes(&v.finish()), [(Code::HeadMismatch, None)]);
    }
}

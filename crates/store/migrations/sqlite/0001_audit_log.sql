-- 0001 audit log (SQLite). Mirrors postgres/0001_audit_log.sql; keep them in step.
--
-- The audit log is append-only by design: its guarantee is that nobody can change what was
-- logged without the Merkle root (signed in checkpoints) giving it away. So the event tables
-- have NO UPDATE path at all: the application never issues UPDATE on them, and the triggers
-- below refuse it, so a bug or a hurried operator cannot "fix" an event in place. A correction
-- is a new event. The only deletion is retention (`changegate audit prune`), and it deletes
-- record rows only, never leaves, so every proof about what remains still holds. An insider can
-- drop the triggers; `changegate audit verify` then catches whatever they changed.

-- One row: which log this database holds and the public key that signs its checkpoints.
CREATE TABLE audit_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    origin      TEXT    NOT NULL,
    verifier    TEXT    NOT NULL,      -- note verifier key: name+hash+base64
    created_at  INTEGER NOT NULL       -- µs since the Unix epoch, UTC
);

-- One row: the log head. This is the only row that changes; appends lock it (serialising
-- writers) and move it forward. `frontier` holds the roots of the perfect subtrees covering the
-- log, `checkpoint` the signed note for (size, root).
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    size        INTEGER NOT NULL,
    root        BLOB    NOT NULL,
    frontier    BLOB    NOT NULL,
    checkpoint  TEXT    NOT NULL
);

-- The Merkle leaves, one per event, position = seq. Never updated, never deleted.
CREATE TABLE audit_leaf (
    seq   INTEGER PRIMARY KEY,
    leaf  BLOB    NOT NULL             -- v1 layout, see docs/audit.md
);

-- The event records beside their leaves. Never updated; deleted only by retention.
CREATE TABLE audit_record (
    seq          INTEGER PRIMARY KEY,  -- = audit_leaf.seq
    event_id     TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    change_id    TEXT,
    recorded_at  INTEGER NOT NULL,     -- µs since the Unix epoch, UTC (also inside the leaf)
    salt         BLOB    NOT NULL,
    record       TEXT    NOT NULL      -- canonical JSON, hashed exactly as stored
);
CREATE INDEX audit_record_time ON audit_record (recorded_at);
CREATE INDEX audit_record_change ON audit_record (change_id, seq);
CREATE INDEX audit_record_actor ON audit_record (actor, seq);
CREATE INDEX audit_record_kind ON audit_record (kind, seq);

-- Hashes of every perfect subtree (key = level << 56 | index), written as leaves are appended,
-- so proofs need a few look-ups instead of the whole log. Never updated, never deleted.
CREATE TABLE audit_node (
    id    INTEGER PRIMARY KEY,
    hash  BLOB    NOT NULL
);

-- Signed checkpoints kept for later verification and consistency proofs (every N appends and
-- whenever one is published). Append-only.
CREATE TABLE audit_checkpoint (
    size        INTEGER PRIMARY KEY,
    note        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TRIGGER audit_leaf_no_update BEFORE UPDATE ON audit_leaf
BEGIN SELECT RAISE(ABORT, 'audit_leaf is append-only'); END;
CREATE TRIGGER audit_leaf_no_delete BEFORE DELETE ON audit_leaf
BEGIN SELECT RAISE(ABORT, 'audit_leaf is append-only'); END;
CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
BEGIN SELECT RAISE(ABORT, 'audit_record has no UPDATE path: append a new event instead'); END;
CREATE TRIGGER audit_node_no_update BEFORE UPDATE ON audit_node
BEGIN SELECT RAISE(ABORT, 'audit_node is append-only'); END;
CREATE TRIGGER audit_node_no_delete BEFORE DELETE ON audit_node
BEGIN SELECT RAISE(ABORT, 'audit_node is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;

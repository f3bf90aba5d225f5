-- 0001 audit log (PostgreSQL). Mirrors sqlite/0001_audit_log.sql; keep them in step.
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
    verifier    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- One row: the log head, the only row that changes. Appends take its row lock
-- (SELECT ... FOR UPDATE), which serialises writers across processes and replicas.
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    size        BIGINT  NOT NULL,
    root        BYTEA   NOT NULL,
    frontier    BYTEA   NOT NULL,
    checkpoint  TEXT    NOT NULL
);

-- The Merkle leaves, one per event, position = seq. Never updated, never deleted.
CREATE TABLE audit_leaf (
    seq   BIGINT PRIMARY KEY,
    leaf  BYTEA  NOT NULL
);

-- The event records beside their leaves. Never updated; deleted only by retention.
CREATE TABLE audit_record (
    seq          BIGINT PRIMARY KEY,
    event_id     TEXT   NOT NULL UNIQUE,
    kind         TEXT   NOT NULL,
    actor        TEXT   NOT NULL,
    change_id    TEXT,
    recorded_at  BIGINT NOT NULL,
    salt         BYTEA  NOT NULL,
    record       TEXT   NOT NULL
);
CREATE INDEX audit_record_time ON audit_record (recorded_at);
CREATE INDEX audit_record_change ON audit_record (change_id, seq);
CREATE INDEX audit_record_actor ON audit_record (actor, seq);
CREATE INDEX audit_record_kind ON audit_record (kind, seq);

-- Hashes of every perfect subtree (key = level << 56 | index). Never updated, never deleted.
CREATE TABLE audit_node (
    id    BIGINT PRIMARY KEY,
    hash  BYTEA  NOT NULL
);

-- Signed checkpoints kept for verification and consistency proofs. Append-only.
CREATE TABLE audit_checkpoint (
    size        BIGINT PRIMARY KEY,
    note        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: append a new event instead', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_leaf_no_change BEFORE UPDATE OR DELETE ON audit_leaf
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_node_no_change BEFORE UPDATE OR DELETE ON audit_node
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

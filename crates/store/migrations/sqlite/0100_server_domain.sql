-- Domain state of the changegate server (issue 5), SQLite.
--
-- A change request is stored as one JSON document (the gate's ChangeState) with a version:
-- every write is a compare-and-swap on (id, version), done in the same transaction as its audit
-- event, so concurrent approvals on several replicas never lose an update. The summary columns
-- (status, category, title) only serve listings; the document is the truth.
CREATE TABLE server_change (
    id          TEXT    PRIMARY KEY,
    version     BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    category    BIGINT  NOT NULL,
    title       TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- Facts shared by every change (incidents, announcements, teams): one versioned document.
CREATE TABLE server_world (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT  NOT NULL,
    state    TEXT    NOT NULL
);
INSERT INTO server_world (id, version, state) VALUES (1, 0, '{}');

-- API tokens: only the SHA-256 digest of the secret is stored.
CREATE TABLE server_token (
    id          TEXT    PRIMARY KEY,
    digest      TEXT    NOT NULL,
    person      TEXT    NOT NULL,
    admin       BOOLEAN NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TEXT    NOT NULL
);

-- Idempotency keys of change creation: a retried request returns the change created first.
CREATE TABLE server_idempotency (
    person     TEXT NOT NULL,
    key        TEXT NOT NULL,
    change_id  TEXT NOT NULL,
    PRIMARY KEY (person, key)
);

-- Incoming webhook deliveries (issue 16): PagerDuty, Alertmanager, later GitHub.
--
-- A webhook is stored here inside its request, after its signature or token was checked, and
-- answered at once; a background worker processes it later, at least once. (source, delivery_id)
-- is unique: a redelivery of the same event (PagerDuty's event id, Alertmanager's digest of the
-- group's state) finds the row and is not stored or processed again.
--
-- status: 'pending' (to process; also while a worker holds its lease), 'done', 'failed' (gave up
-- after too many attempts; visible in GET /api/v1/deliveries). subject: what the delivery is about
-- (an incident id): a worker never takes a delivery while an older pending one of the same source
-- and subject exists, so one incident's events apply in the order they arrived, across replicas.
-- Times used in comparisons are unix microseconds (BIGINT): RFC 3339 text with variable fraction
-- digits does not sort. lease_owner/lease_until_us: the worker that claimed the row and until when
-- (a crashed worker's lease expires and another takes the row over). A receipt is not an audit
-- event: what a delivery changes (an incident) is audited with the delivery's id.
CREATE TABLE server_delivery (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    source            TEXT    NOT NULL,
    delivery_id       TEXT    NOT NULL,
    subject           TEXT    NOT NULL DEFAULT '',
    received_at       TEXT    NOT NULL,
    received_at_us    BIGINT  NOT NULL,
    received_by       TEXT    NOT NULL,
    body              TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'done', 'failed')),
    attempts          BIGINT  NOT NULL DEFAULT 0,
    last_error        TEXT,
    next_attempt_us   BIGINT  NOT NULL,
    lease_owner       TEXT,
    lease_until_us    BIGINT,
    finished_at       TEXT,
    outcome           TEXT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX server_delivery_pending ON server_delivery (status, next_attempt_us);
CREATE INDEX server_delivery_subject ON server_delivery (source, subject, id);

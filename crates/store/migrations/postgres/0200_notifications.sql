-- The notification outbox (issue 16, "Out"): every notification changegate sends (Slack, email,
-- status page, signed webhooks) and every time-driven duty reminder is a row here, inserted in the
-- same transaction as the audit event of the state change that causes it (the store calls the
-- server's routing function inside `append_audit`), so a notification exists exactly when its
-- state change committed.
--
-- dedupe_key is unique: `subject/event[/occurrence]/channel` (a change or incident id, the
-- notification event, a discriminator for events that repeat, the channel). A second insert of
-- the same key is a no-op, so replaying an event, a retried request or a second replica never
-- queues a second message. The key also goes to the receiver (Idempotency-Key header, e-mail
-- Message-ID) so a receiver that dedupes sees one message even when changegate sends twice.
--
-- status: 'pending' (to send; also while a worker holds its lease), 'sent', 'dead' (gave up after
-- too many attempts: dead letter, visible in GET /api/v1/notifications?status=dead and retried by
-- hand), 'cancelled' (a reminder whose condition no longer held when it came due: the
-- retrospective was written). next_attempt_us: when it is due (a scheduled reminder is a row due
-- in the future: the table is also the scheduler, surviving restarts, run once across replicas by
-- the lease). Times compared are unix microseconds; lease_owner/lease_until_us as in
-- server_delivery.
CREATE TABLE server_notification (
    id                BIGSERIAL PRIMARY KEY,
    dedupe_key        TEXT    NOT NULL UNIQUE,
    channel           TEXT    NOT NULL,
    event             TEXT    NOT NULL,
    subject           TEXT    NOT NULL DEFAULT '',
    event_seq         BIGINT  NOT NULL,
    payload           TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'dead', 'cancelled')),
    attempts          BIGINT  NOT NULL DEFAULT 0,
    last_error        TEXT,
    next_attempt_us   BIGINT  NOT NULL,
    lease_owner       TEXT,
    lease_until_us    BIGINT,
    finished_at       TEXT,
    receipt           TEXT
);
CREATE INDEX server_notification_due ON server_notification (status, next_attempt_us);
CREATE INDEX server_notification_subject ON server_notification (subject, id);

-- Reports the server generated on its schedule (issue 17: "generated on a schedule (first day of
-- the month / quarter) by the server and notified"). One row per report (name: `monthly:2026-11`,
-- `quarterly:2026-Q4`), inserted in the same transaction as its `report.generated` audit event
-- (event_seq) and the notifications that event queues. The primary key makes the generation
-- happen once across replicas and restarts: a second insert of the same name does nothing and its
-- transaction (event and notifications included) rolls back.
--
-- report: the report as generated (JSON: body, digest, proof with the signed checkpoint of size
-- checkpoint_size / root checkpoint_root). GET /api/v1/reports/... and sign-off use it; it is a
-- copy the log proves: its digest is recomputed from its body and compared with the digest the
-- generation event recorded before it is served (ADR 0029).
CREATE TABLE server_report (
    name             TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    period           TEXT    NOT NULL,
    digest           TEXT    NOT NULL,
    checkpoint_size  BIGINT  NOT NULL,
    checkpoint_root  TEXT    NOT NULL,
    event_seq        BIGINT  NOT NULL,
    generated_at     TEXT    NOT NULL,
    report           TEXT    NOT NULL
);

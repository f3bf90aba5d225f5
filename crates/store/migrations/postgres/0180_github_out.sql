-- What changegate sends back to GitHub (issue 15).
--
-- server_github_publication: per change linked to a pull request, the `changegate` check run and
-- the PR comment it keeps up to date (edited in place by these ids, never one per event), the head
-- commit the check run is for (a new head gets a new check run) and the SHA-256 of the content
-- last published (publishing again with the same digest is skipped).
CREATE TABLE server_github_publication (
    change_id      TEXT    PRIMARY KEY,
    repository     TEXT    NOT NULL,
    pr_number      BIGINT  NOT NULL,
    head_sha       TEXT    NOT NULL,
    check_run_id   BIGINT,
    comment_id     BIGINT,
    digest         TEXT    NOT NULL DEFAULT '',
    updated_at     TEXT    NOT NULL
);

-- server_github_gate: deployment protection rule requests (`deployment_protection_rule`,
-- action `requested`), one per delivery GUID, answered through the run's review endpoint. A row
-- stays 'pending' while the gate waits (only time stands in the way: window, freeze, lead time) or
-- while the answer could not be delivered; due_at_us is when the scheduler looks again (the next
-- slot, a re-check, or the callback's backoff). lease_owner/lease_until_us: the replica working on
-- it (an expired lease is taken over). report_digest: the last status report posted (not posted
-- twice). Times compared are unix microseconds.
CREATE TABLE server_github_gate (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      TEXT    NOT NULL UNIQUE,
    repository       TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    sha              TEXT    NOT NULL,
    run_id           BIGINT  NOT NULL,
    installation_id  BIGINT,
    change_id        TEXT,
    status           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'failed')),
    report_digest    TEXT    NOT NULL DEFAULT '',
    attempts         BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    created_at_us    BIGINT  NOT NULL,
    due_at_us        BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_until_us   BIGINT,
    answered_at      TEXT,
    outcome          TEXT
);
CREATE INDEX server_github_gate_due ON server_github_gate (status, due_at_us);
CREATE INDEX server_github_gate_sha ON server_github_gate (sha, status);

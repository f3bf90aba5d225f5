-- Rollouts the server runs for a change (issue 14): one row per rollout, its guard state, when it
-- is next due and which replica holds it.
--
-- state: JSON document of the rollout (the guard's snapshot, baselines, held-by-gate details,
-- verification progress, the rollback's switch timing); phase/step mirror it for listing.
-- phase: 'running', 'held', 'verifying', 'completed', 'rolled-back', 'aborted', 'failed'.
-- active: 1 while the worker still has work (running, held, verifying); at most one active
-- rollout per change (partial unique index).
-- due_at / lease_until: unix microseconds. A replica acts on a rollout only while it holds the
-- lease (`UPDATE ... SET lease_owner = me, lease_until = ... WHERE id = ? AND (lease_until < now
-- OR lease_owner = me)`), and every write of the row is conditioned on its version and on the
-- lease, so one replica acts per step.
-- Every write of a rollout is in the transaction of its audit event on the change.
CREATE TABLE server_rollout (
    id           TEXT   PRIMARY KEY,
    change_id    TEXT   NOT NULL,
    plan         TEXT   NOT NULL,
    category     BIGINT NOT NULL,
    phase        TEXT   NOT NULL,
    step         BIGINT,
    active       BIGINT NOT NULL DEFAULT 1,
    version      BIGINT NOT NULL,
    state        TEXT   NOT NULL,
    due_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    started_by   TEXT   NOT NULL,
    created_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL
);
CREATE UNIQUE INDEX server_rollout_one_active ON server_rollout (change_id) WHERE active = 1;
CREATE INDEX server_rollout_due ON server_rollout (active, due_at);
CREATE INDEX server_rollout_change ON server_rollout (change_id, created_at);

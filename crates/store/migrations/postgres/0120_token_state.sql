-- Token rows proven by the log (issue 13, "the log proves the state").
--
-- version: 1 when issued, +1 on every write (revocation). Each write logs the row's state
-- {table: "token", id, version, sha256} in its audit event, like changes and the world document,
-- so `audit verify` reports a token row inserted or edited behind the server's back by its id.
-- Rows issued before this migration have no logged state: `changegate audit adopt` logs them.
ALTER TABLE server_token ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

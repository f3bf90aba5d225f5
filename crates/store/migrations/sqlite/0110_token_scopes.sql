-- Token kinds, scopes, expiry and revocation (issue 13).
--
-- kind: 'person' (acts only as `person`), 'integration' (`person` holds the integration's name;
-- may do what its `scopes` name), 'admin' (acts on behalf of anyone). Tokens issued before this
-- migration keep what they were: an admin token stays admin, any other stays a person token, and
-- none expires. `admin` stays, kept equal to (kind = 'admin'), so older readers still work.
-- scopes: comma-separated scope names (integration tokens only; empty otherwise).
-- expires_at / revoked_at: RFC 3339, NULL for never / not revoked; revoked_by: who revoked it.
ALTER TABLE server_token ADD COLUMN kind TEXT NOT NULL DEFAULT 'person'
    CHECK (kind IN ('person', 'integration', 'admin'));
UPDATE server_token SET kind = 'admin' WHERE admin;
ALTER TABLE server_token ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE server_token ADD COLUMN expires_at TEXT;
ALTER TABLE server_token ADD COLUMN revoked_at TEXT;
ALTER TABLE server_token ADD COLUMN revoked_by TEXT;

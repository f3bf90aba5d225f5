-- Dashboard sign-in sessions (issue 18). A person signs in to the web dashboard with an API token;
-- the browser then holds a random session secret in an HttpOnly cookie. Only the SHA-256 digest of
-- that secret is stored (id), like API tokens. token_id: the API token the session was opened
-- with; every request re-reads that token, so revoking or expiring it ends its sessions at once.
-- csrf: the per-session token every dashboard form carries (compared in constant time). Times
-- are unix microseconds (BIGINT), so expiry compares numerically. A session is no audit event:
-- what is done through it is audited as its person, with the token id, as through the API.
CREATE TABLE dashboard_session (
    id            TEXT    PRIMARY KEY,
    token_id      TEXT    NOT NULL,
    person        TEXT    NOT NULL,
    csrf          TEXT    NOT NULL,
    created_us    BIGINT  NOT NULL,
    expires_us    BIGINT  NOT NULL
);
CREATE INDEX dashboard_session_expires ON dashboard_session (expires_us);

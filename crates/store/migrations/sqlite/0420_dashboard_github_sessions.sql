-- Dashboard sessions opened with a GitHub identity (issue 18, "Sign in with GitHub"). A person
-- may sign in through GitHub's OAuth web flow instead of with an API token: the server exchanges
-- the code, reads `GET /user`, and maps the login (and id) to a person through the policy's
-- `[people.NAME] github` / `github_id`. Such a session has no API token (token_id is empty) and
-- keeps the GitHub login and user id it was opened with; every request checks the policy still
-- maps them to the same person. The GitHub access token is not stored.
ALTER TABLE dashboard_session ADD COLUMN github_login TEXT;
ALTER TABLE dashboard_session ADD COLUMN github_id BIGINT;

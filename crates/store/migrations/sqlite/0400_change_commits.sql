-- Changes by commit (issue 15): a `deployment_status`, `deployment_protection_rule`,
-- `workflow_run` or `check_suite` names a commit SHA, and the server finds the changes whose head
-- (or, for a deployment, merge commit) it is. The document is the truth, so the lookup indexes
-- expressions over it rather than copying the SHAs into columns every write path would have to
-- keep in step: `ServerStore::changes_at_commit` queries exactly these expressions.
CREATE INDEX server_change_head_commit ON server_change (json_extract(state, '$.change.head_commit'));
CREATE INDEX server_change_merge_commit ON server_change (json_extract(state, '$.pull_request.merge_commit'));

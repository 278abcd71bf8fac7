-- Config refs: a git repository, a ref (branch, tag or commit) and a path
-- inside it whose group_vars/ and host_vars/ (and optional inventory files)
-- a sync applies to a project, or to one group's subtree. The variables a
-- ref owns carry its id in variables.source_id; a sync replaces exactly
-- that set. Credentials are never stored here (environment/config only).
-- last_*: the outcome of the last attempt (last_commit and last_synced_at
-- only move on success, so a restart resumes without redoing work).
-- failures and next_poll_at drive the backoff; sync_requested_at is set by
-- the API and webhooks ("sync now") and cleared by the sync that follows.
-- lease_holder/lease_expires_at: only one cratond process syncs a ref at a
-- time; a dead holder's lease simply expires.
CREATE TABLE config_refs (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- NULL: the whole project; else the group whose subtree the ref may touch.
    group_id BIGINT REFERENCES inventory_groups (id) ON DELETE CASCADE,
    url VARCHAR(2048) NOT NULL,
    git_ref VARCHAR(255) NOT NULL,
    path VARCHAR(1024) NOT NULL DEFAULT '',
    poll_interval_secs INTEGER NOT NULL DEFAULT 60,
    last_commit VARCHAR(64),
    last_synced_at BIGINT,
    last_attempt_at BIGINT,
    -- 'ok', 'error', or NULL before the first attempt.
    last_result VARCHAR(16),
    last_error TEXT,
    error_file VARCHAR(1024),
    error_line INTEGER,
    vars_created INTEGER NOT NULL DEFAULT 0,
    vars_updated INTEGER NOT NULL DEFAULT 0,
    vars_removed INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_poll_at BIGINT NOT NULL DEFAULT 0,
    sync_requested_at BIGINT,
    lease_holder VARCHAR(191),
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX config_refs_project ON config_refs (project_id);
CREATE INDEX config_refs_group ON config_refs (group_id);
-- A sync reads and replaces the rows of one source.
CREATE INDEX variables_source ON variables (source_id);

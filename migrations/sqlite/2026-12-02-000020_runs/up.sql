-- Runs of ansible-playbook on a target of a project (issue 8). A run's
-- request (source, target, options) is kept as JSON exactly as accepted;
-- status moves queued -> running -> successful|failed|canceled|error, or
-- to lost when the daemon holding its lease stopped. The bundle it ran on
-- is kept (run_bundles), so "what inventory did this run see" always has
-- an answer.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status VARCHAR(16) NOT NULL,
    playbook VARCHAR(1024) NOT NULL,
    -- {"repo","ref"} or {"config_ref"}: JSON.
    source TEXT NOT NULL,
    git_commit VARCHAR(64),
    -- {"group","filter","limit"}: JSON; target_group for ?group= filters.
    target TEXT NOT NULL,
    target_group VARCHAR(255),
    -- extra_vars, check, diff, tags, skip_tags, forks, timeout_s: JSON.
    options TEXT NOT NULL,
    created_by VARCHAR(255) NOT NULL,
    rc INTEGER,
    reason TEXT,
    bundle_etag VARCHAR(80),
    hosts_total INTEGER NOT NULL DEFAULT 0,
    hosts_ok INTEGER NOT NULL DEFAULT 0,
    hosts_changed INTEGER NOT NULL DEFAULT 0,
    hosts_failed INTEGER NOT NULL DEFAULT 0,
    hosts_unreachable INTEGER NOT NULL DEFAULT 0,
    hosts_skipped INTEGER NOT NULL DEFAULT 0,
    events_received BIGINT NOT NULL DEFAULT 0,
    events_lost BOOLEAN NOT NULL DEFAULT 0,
    stdout_bytes BIGINT NOT NULL DEFAULT 0,
    stdout_truncated BOOLEAN NOT NULL DEFAULT 0,
    -- NULL, 'graceful' or 'immediate': asked by the API, honoured by the
    -- process holding the lease.
    cancel_requested VARCHAR(16),
    lease_holder VARCHAR(191),
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runs_project ON runs (project_id, id);
CREATE INDEX runs_status ON runs (status);

-- The exact bundle bytes the run's ansible-playbook read.
CREATE TABLE run_bundles (
    run_id BIGINT NOT NULL PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    bytes BLOB NOT NULL
);

-- Per-host results: the recap counters and the last task seen.
CREATE TABLE run_hosts (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host VARCHAR(255) NOT NULL,
    status VARCHAR(16) NOT NULL,
    ok INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    unreachable INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    rescued INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    last_task TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, host)
);

-- The callback's events, in counter order; data is the event's JSON.
CREATE TABLE run_events (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    counter BIGINT NOT NULL,
    event VARCHAR(64) NOT NULL,
    host VARCHAR(255),
    created BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, counter)
);

-- ansible-playbook's stdout and stderr, in arrival order, capped.
CREATE TABLE run_stdout (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    chunk TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Reachability from the last run that targeted a host (not a variable:
-- inventory output never changes because a run happened).
CREATE TABLE host_run_state (
    host_id BIGINT NOT NULL PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    project_id BIGINT NOT NULL,
    last_run_id BIGINT NOT NULL,
    last_run_status VARCHAR(16) NOT NULL,
    last_run_at BIGINT NOT NULL,
    last_reachable_at BIGINT,
    last_unreachable_at BIGINT
);
CREATE INDEX host_run_state_status ON host_run_state (project_id, last_run_status);

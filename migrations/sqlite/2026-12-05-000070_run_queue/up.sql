-- Run queue and host locks (issue 10). max_concurrent_runs: how many runs
-- of the project hold hosts at once. A run's claim (claimed_at set) takes
-- one run_locks row per host of its target; the primary key (project_id,
-- host) is what keeps two runs off one host, across every cratond on the
-- database. waiting_for: JSON of why a queued run waits.
ALTER TABLE projects ADD COLUMN max_concurrent_runs INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN claimed_at BIGINT;
ALTER TABLE runs ADD COLUMN waiting_for TEXT;
CREATE TABLE run_locks (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    host VARCHAR(255) NOT NULL,
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, host)
);
CREATE INDEX run_locks_run ON run_locks (run_id);

-- Schedules (issue 10): a run template (a POST /v1/runs body, as JSON) fired
-- on a recurrence. kind/expression/time_zone as maintenance_windows.
-- next_run_at: the first occurrence not yet handled (ms; NULL when disabled
-- or the rule has ended). creator_*: whose authority a fired run has
-- (creator_kind token|keystone|local; a token's role is read again at fire
-- time; keystone has no token to re-read, so its role and user are kept).
CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    template TEXT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    expression TEXT NOT NULL,
    time_zone VARCHAR(64) NOT NULL,
    enabled BOOLEAN NOT NULL,
    catch_up VARCHAR(16) NOT NULL,
    next_run_at BIGINT,
    created_by TEXT NOT NULL,
    creator_kind VARCHAR(16) NOT NULL,
    creator_token_id BIGINT,
    creator_role VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX schedules_project_name ON schedules (project_id, name);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);
-- One row per handled occurrence: the unique key is the claim, so that of
-- several daemons exactly one handles an occurrence. status: claimed (being
-- submitted) | submitted (run_id set) | error (error set) | skipped (missed
-- while no daemon ran, catch_up skip). missed: earlier due occurrences
-- folded into this one.
CREATE TABLE schedule_firings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    occurrence BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    missed BIGINT NOT NULL,
    run_id BIGINT,
    error TEXT,
    holder VARCHAR(255) NOT NULL,
    fired_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX schedule_firings_occurrence ON schedule_firings (schedule_id, occurrence);

-- Rolling runs (issue 10, "Rolling deployments"). A run with `batch` is
-- cut into batches at submit (craton::rollout::plan over the target's
-- hosts in the run's `order`); each batch is one ansible-playbook
-- --limit over the run's recorded bundle.
-- run_batches: seq counts from 1 across a rollout and its resumes (a
-- resumed run's first batch keeps the number it had); hosts is the JSON
-- list of host names; status pending | running | done | skipped | stopped;
-- failed: hosts of the batch that ended failed or unreachable.
-- approval (approve_each_batch): NULL, waiting, approved or denied, with
-- who answered, when (daemon clock) and the comment.
-- run_rollouts: one row per rolling run; requested_by: the identity of
-- its submitter (or resumer), who may not approve its batches; resumed_from is the run it
-- resumes, resumed_by the run that resumed it (at most one).
CREATE TABLE run_batches (
    run_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    hosts TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    rc INTEGER,
    failed INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    approval VARCHAR(16),
    decided_by VARCHAR(255),
    decided_at BIGINT,
    comment TEXT,
    PRIMARY KEY (run_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE run_rollouts (
    run_id BIGINT NOT NULL PRIMARY KEY,
    requested_by VARCHAR(255) NOT NULL,
    resumed_from BIGINT,
    resumed_by BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- run_bundles.inventory_revision (issue 12): the project revision of the
-- inventory the bundle was built from, so "what changed since this run" is
-- GET /v1/inventory/diff?from=run:ID.
ALTER TABLE run_bundles ADD COLUMN inventory_revision BIGINT;

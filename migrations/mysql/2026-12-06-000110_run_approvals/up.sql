-- Approval gates (issue 10): a run submitted with "approval": "required"
-- gets one row here, in the transaction that stores it. requested_by is
-- the submitter's identity ("token 5", "keystone user <id>", "local"),
-- which may not approve its own run. decision: NULL while it waits, then
-- approved | denied | expired (approval_timeout_s passed; the run is
-- canceled). expires_at: the daemon clock's reading at submit plus the
-- timeout.
CREATE TABLE run_approvals (
    run_id BIGINT NOT NULL PRIMARY KEY,
    requested_by VARCHAR(512) NOT NULL,
    expires_at BIGINT,
    decision VARCHAR(16),
    decided_by VARCHAR(512),
    decided_at BIGINT,
    comment VARCHAR(1024),
    FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- GitHub commit statuses of webhook-rule runs (issue 10, "Choreography").
-- webhook_rules.commit_status: the rule's runs report to GitHub (pending
-- when queued, the result when final); status_context: the status's
-- context (NULL: craton/<rule name>).
-- commit_statuses: the statuses queued for sending, persisted and retried
-- like hook deliveries (claimed by one daemon through claimed_by and
-- claim_expires_at; the deliverer of outbound hooks drains them). event
-- run.queued | run.finished, unique per run, so the final status is queued
-- once whichever of the submitter and the finisher sees it first; the
-- statuses of one run go out in id order. state: GitHub's (pending,
-- success, failure, error); delivery: pending -> delivered | failed.
ALTER TABLE webhook_rules ADD COLUMN commit_status BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE webhook_rules ADD COLUMN status_context VARCHAR(255);
CREATE TABLE commit_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL,
    run_id BIGINT NOT NULL,
    rule_id BIGINT NOT NULL,
    event VARCHAR(32) NOT NULL,
    repository VARCHAR(255) NOT NULL,
    sha VARCHAR(64) NOT NULL,
    context VARCHAR(255) NOT NULL,
    state VARCHAR(16) NOT NULL,
    description VARCHAR(255) NOT NULL,
    target_url TEXT,
    delivery VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by VARCHAR(191),
    claim_expires_at BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX commit_statuses_once ON commit_statuses (run_id, event);
CREATE INDEX commit_statuses_delivery ON commit_statuses (delivery, id);

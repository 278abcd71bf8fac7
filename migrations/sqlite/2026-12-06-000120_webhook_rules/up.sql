-- Webhook rules (issue 10, "Choreography"): GitHub events that submit runs.
-- webhook_rules: a project's rules. event push|pull_request; repository the
-- GitHub full_name (owner/name); branches, tags, matchers JSON arrays (glob
-- lists; [{field, op, value}]); sync_first: sync the project's matching
-- config refs before submitting; template: a POST /v1/runs body (JSON)
-- whose ref the event sets; creator_*: as schedules (a fired run acts as
-- the creator, re-read at fire time).
-- webhook_deliveries: every verified delivery, once: the unique key on
-- delivery (X-GitHub-Delivery) is what makes a replay, or the same delivery
-- at two daemons, do nothing. outcome: JSON of what came of it.
-- webhook_rule_matches: one row per (delivery, rule) that matched: status
-- pending|syncing|submitted|refused|sync_failed, the run or the error;
-- simulation: a pull_request check+diff run.
CREATE TABLE webhook_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    event VARCHAR(32) NOT NULL,
    repository VARCHAR(255) NOT NULL,
    branches TEXT NOT NULL,
    tags TEXT NOT NULL,
    matchers TEXT NOT NULL,
    sync_first BOOLEAN NOT NULL,
    template TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    creator_kind VARCHAR(16) NOT NULL,
    creator_token_id BIGINT,
    creator_role VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_rules_project_name ON webhook_rules (project_id, name);
CREATE INDEX webhook_rules_event ON webhook_rules (event, repository);
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery VARCHAR(191) NOT NULL,
    event VARCHAR(64) NOT NULL,
    repository VARCHAR(255),
    git_ref TEXT,
    sha VARCHAR(64),
    received_at BIGINT NOT NULL,
    holder VARCHAR(255) NOT NULL,
    outcome TEXT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_delivery ON webhook_deliveries (delivery);
CREATE TABLE webhook_rule_matches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    rule_id BIGINT NOT NULL REFERENCES webhook_rules (id) ON DELETE CASCADE,
    project_id BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    simulation BOOLEAN NOT NULL,
    sha VARCHAR(64),
    run_id BIGINT,
    error TEXT,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_rule_matches_once ON webhook_rule_matches (delivery_id, rule_id);
CREATE INDEX webhook_rule_matches_rule ON webhook_rule_matches (rule_id, id);

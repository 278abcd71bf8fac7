-- Outbound webhooks (issue 10): a project's hooks (URL, HMAC secret, the
-- events they want), the deliveries queued for them (persisted, so a restart
-- resumes them; claimed by one daemon at a time through claimed_by and
-- claim_expires_at, as run leases are), and every attempt of each delivery.
-- state: pending -> delivered | failed (attempts exhausted).
CREATE TABLE hooks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    url VARCHAR(2048) NOT NULL,
    secret VARCHAR(512) NOT NULL,
    -- JSON array of event names ("run.finished", or "*").
    events TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_by_root BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX hooks_project ON hooks (project_id);
CREATE TABLE hook_deliveries (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hook_id BIGINT NOT NULL,
    project_id BIGINT NOT NULL,
    event VARCHAR(64) NOT NULL,
    -- What the event is about ("run:42"): deliveries of one hook and subject
    -- go out in order.
    subject VARCHAR(128) NOT NULL,
    -- The event's object as JSON (the run as the REST API shows it).
    payload MEDIUMTEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by VARCHAR(191),
    claim_expires_at BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    FOREIGN KEY (hook_id) REFERENCES hooks (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX hook_deliveries_state ON hook_deliveries (state, next_attempt_at);
CREATE INDEX hook_deliveries_hook ON hook_deliveries (hook_id, id);
CREATE TABLE hook_attempts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    FOREIGN KEY (delivery_id) REFERENCES hook_deliveries (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX hook_attempts_delivery ON hook_attempts (delivery_id, attempt);

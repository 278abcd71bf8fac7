-- Inventory core. Timestamps are BIGINT milliseconds since the Unix epoch
-- (no 2038 problem, identical on all three backends).
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(191) NOT NULL UNIQUE,
    -- Bumped by every write to the project's inventory: readers cache a
    -- project's snapshot and check this one number per request.
    revision BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE inventory_groups (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name VARCHAR(191) NOT NULL,
    kind VARCHAR(64) NOT NULL DEFAULT '',
    description TEXT,
    priority INTEGER,
    -- Position among the `all` group's explicit children (NULL: not listed
    -- there; Ansible still puts a group without parents under `all`).
    all_position INTEGER,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- position keeps the input order of children and members: Ansible runs
-- hosts in inventory order.
CREATE TABLE group_edges (
    parent_id BIGINT NOT NULL REFERENCES inventory_groups (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES inventory_groups (id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX group_edges_child ON group_edges (child_id);

CREATE TABLE hosts (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name VARCHAR(191) NOT NULL,
    ip_address VARCHAR(64),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    parent_id BIGINT REFERENCES hosts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX hosts_parent ON hosts (parent_id);

CREATE TABLE memberships (
    group_id BIGINT NOT NULL REFERENCES inventory_groups (id) ON DELETE CASCADE,
    host_id BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, host_id)
);
CREATE INDEX memberships_host ON memberships (host_id);

CREATE TABLE host_labels (
    host_id BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    label VARCHAR(191) NOT NULL,
    PRIMARY KEY (host_id, label)
);
CREATE INDEX host_labels_label ON host_labels (label);

-- One row per (owner, key). owner_kind: 0 project (the `all` group), 1 group,
-- 2 host. tier: 0 inventory (inline) vars, 1 group_vars/host_vars files,
-- which Ansible ranks above every inline var of the same owner kind.
-- source_id is reserved for the config ref that owns the row (git sync).
-- The primary key clusters a project's rows together (SQLite WITHOUT ROWID,
-- InnoDB), so loading a project is one range scan with no row lookups.
CREATE TABLE variables (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_kind INTEGER NOT NULL,
    owner_id BIGINT NOT NULL,
    var_key VARCHAR(191) NOT NULL,
    var_value TEXT NOT NULL,
    tier INTEGER NOT NULL DEFAULT 0,
    source_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, owner_kind, owner_id, var_key)
);
CREATE INDEX variables_project_key ON variables (project_id, var_key);

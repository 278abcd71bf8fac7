-- The audit trail (issue 12): one change set per write transaction, written
-- in the same transaction as the change. No foreign key to projects: the
-- trail outlives a deleted project (project_name keeps what it was called).
-- Per-object changes are rows of audit_changes, or, for a bulk change set
-- (an import), JSON pieces of 2,000 changes each (attr_kind 'bulk'; then
-- audit_changesets.document is set, {"pieces": N}).
-- old_value/new_value are JSON text (NULL: absent); a secret is only ever its
-- version and ciphertext fingerprint.
CREATE TABLE audit_changesets (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    project_name VARCHAR(255) NOT NULL,
    at BIGINT NOT NULL,
    actor_kind VARCHAR(16) NOT NULL,
    actor VARCHAR(255) NOT NULL,
    actor_note TEXT,
    source VARCHAR(16) NOT NULL,
    via TEXT NOT NULL,
    rev_before BIGINT,
    rev_after BIGINT,
    n_changes BIGINT NOT NULL,
    document LONGTEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX audit_changesets_project ON audit_changesets (project_id, id);
CREATE INDEX audit_changesets_at ON audit_changesets (at);
CREATE TABLE audit_changes (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    changeset_id BIGINT NOT NULL,
    project_id BIGINT NOT NULL,
    object_kind VARCHAR(16) NOT NULL,
    object_name VARCHAR(191) NOT NULL,
    attr_kind VARCHAR(16) NOT NULL,
    attr VARCHAR(191) NOT NULL,
    old_value LONGTEXT,
    new_value LONGTEXT,
    FOREIGN KEY (changeset_id) REFERENCES audit_changesets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX audit_changes_changeset ON audit_changes (changeset_id);
CREATE INDEX audit_changes_object ON audit_changes (project_id, object_kind, object_name);
CREATE INDEX audit_changes_attr ON audit_changes (project_id, attr_kind, attr);

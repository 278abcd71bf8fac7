-- Secrets (issue 9): values owned by a project, a group or a host, stored
-- only as AES-256-GCM envelopes under a per-project data key; the data key is
-- stored only wrapped by a key provider (file master key or Vault/OpenBao
-- transit). secret_versions keeps the last N versions of each value;
-- secret_access records every plaintext read and every write. owner_id has no
-- foreign key (it names a host, a group or the project by owner_kind): the
-- store deletes an owner's secrets with the owner.

-- A project's data keys; one active, older ones kept until no version uses them.
CREATE TABLE secret_data_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider VARCHAR(32) NOT NULL,
    key_version BIGINT NOT NULL,
    wrapped TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX secret_data_keys_project ON secret_data_keys (project_id, active);

-- kind: pem | certificate | password | opaque. fingerprint: sha256:HEX of the
-- plaintext, or of a certificate's DER; not_after: a certificate's expiry.
CREATE TABLE secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_kind VARCHAR(16) NOT NULL,
    owner_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    current_version BIGINT NOT NULL,
    fingerprint VARCHAR(80) NOT NULL,
    not_after BIGINT,
    created_by VARCHAR(255) NOT NULL,
    updated_by VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX secrets_owner_name ON secrets (project_id, owner_kind, owner_id, name);
CREATE INDEX secrets_not_after ON secrets (project_id, not_after);

-- One envelope per kept version; its AEAD binds (project, owner, name, version).
CREATE TABLE secret_versions (
    secret_id BIGINT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    data_key_id BIGINT NOT NULL REFERENCES secret_data_keys (id),
    ciphertext BLOB NOT NULL,
    fingerprint VARCHAR(80) NOT NULL,
    created_by VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (secret_id, version)
);

-- Audit: who read a plaintext or wrote a secret, and when. No foreign key to
-- secrets: the record outlives a deleted secret.
CREATE TABLE secret_access (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret_id BIGINT,
    owner_kind VARCHAR(16) NOT NULL,
    owner_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    action VARCHAR(16) NOT NULL,
    version BIGINT,
    actor VARCHAR(255) NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX secret_access_project ON secret_access (project_id, id);

-- The `secrets` scope: a token below admin that may read plaintexts
-- (GET .../secrets/{name}/value); `cratond token create --secrets-scope`.
ALTER TABLE api_tokens ADD COLUMN secrets_scope BOOLEAN NOT NULL DEFAULT 0;

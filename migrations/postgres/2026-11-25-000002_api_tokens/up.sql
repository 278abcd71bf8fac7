-- API tokens. Only a SHA-256 of the secret is stored; `prefix` (the first
-- characters of the secret) lets operators tell tokens apart in listings.
-- project_id is NULL for root tokens, which manage projects.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT REFERENCES projects (id) ON DELETE CASCADE,
    role VARCHAR(16) NOT NULL,
    description VARCHAR(191) NOT NULL DEFAULT '',
    token_hash CHAR(64) NOT NULL UNIQUE,
    prefix VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_project ON api_tokens (project_id);

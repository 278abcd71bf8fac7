-- Whether a config ref was created by a root token (or the cratond CLI,
-- which is root-equivalent). The repository URL policy is checked again at
-- every sync with the creator's privilege: a root-created ref may use local
-- paths and private addresses, a project editor's only what the project's
-- allow-list names. Refs from before this column are treated as editors'
-- (the safe side); re-create them as root or allow-list their URLs.
ALTER TABLE config_refs ADD COLUMN created_by_root BOOLEAN NOT NULL DEFAULT FALSE;

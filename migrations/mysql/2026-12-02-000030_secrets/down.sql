ALTER TABLE api_tokens DROP COLUMN secrets_scope;
DROP TABLE secret_access;
DROP TABLE secret_versions;
DROP TABLE secrets;
DROP TABLE secret_data_keys;

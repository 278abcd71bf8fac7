DROP INDEX secret_data_keys_one_active ON secret_data_keys;
ALTER TABLE secret_data_keys DROP COLUMN active_project_id;

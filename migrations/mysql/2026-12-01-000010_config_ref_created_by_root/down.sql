ALTER TABLE config_refs DROP COLUMN created_by_root;

DROP TABLE commit_statuses;
ALTER TABLE webhook_rules DROP COLUMN status_context;
ALTER TABLE webhook_rules DROP COLUMN commit_status;

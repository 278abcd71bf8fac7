ALTER TABLE run_bundles DROP COLUMN inventory_revision;
DROP TABLE run_rollouts;
DROP TABLE run_batches;

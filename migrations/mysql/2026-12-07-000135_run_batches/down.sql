DROP TABLE run_rollouts;
DROP TABLE run_batches;

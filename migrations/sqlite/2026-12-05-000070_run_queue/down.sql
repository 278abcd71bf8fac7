DROP TABLE run_locks;
ALTER TABLE runs DROP COLUMN waiting_for;
ALTER TABLE runs DROP COLUMN claimed_at;
ALTER TABLE projects DROP COLUMN max_concurrent_runs;

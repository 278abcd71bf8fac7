-- At most one active data key per project (issue 9). Two first writes of a
-- project at once could each insert one (READ COMMITTED and REPEATABLE READ
-- both let them), and `cratond secrets reencrypt` switches the active key
-- while the daemon writes: the index makes the database refuse a second one,
-- and the loser uses the winner's key. Duplicates made before keep the
-- lowest id active, the one every reader and writer already took.
-- MySQL has no partial index: a unique index over a virtual column that is
-- the project id for the active key and NULL (which may repeat) otherwise.
-- Virtual, not stored: MySQL refuses ON DELETE CASCADE on the base column
-- of a stored generated column. The store never names the column.
UPDATE secret_data_keys k
JOIN (SELECT project_id, MIN(id) AS keep_id FROM secret_data_keys WHERE active GROUP BY project_id) m
  ON k.project_id = m.project_id
SET k.active = FALSE
WHERE k.active AND k.id <> m.keep_id;
ALTER TABLE secret_data_keys
  ADD COLUMN active_project_id BIGINT AS (CASE WHEN active THEN project_id END) VIRTUAL;
CREATE UNIQUE INDEX secret_data_keys_one_active ON secret_data_keys (active_project_id);

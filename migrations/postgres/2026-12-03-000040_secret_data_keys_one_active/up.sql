-- At most one active data key per project (issue 9). Two first writes of a
-- project at once could each insert one (READ COMMITTED and REPEATABLE READ
-- both let them), and `cratond secrets reencrypt` switches the active key
-- while the daemon writes: the index makes the database refuse a second one,
-- and the loser uses the winner's key. Duplicates made before keep the
-- lowest id active, the one every reader and writer already took.
UPDATE secret_data_keys SET active = FALSE
WHERE active AND id > (SELECT MIN(k.id) FROM secret_data_keys k
                       WHERE k.project_id = secret_data_keys.project_id AND k.active);
CREATE UNIQUE INDEX secret_data_keys_one_active ON secret_data_keys (project_id) WHERE active;

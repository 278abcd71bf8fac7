DROP INDEX variables_source;
DROP TABLE config_refs;

DROP INDEX variables_source ON variables;
DROP TABLE config_refs;

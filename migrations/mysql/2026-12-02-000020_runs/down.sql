DROP TABLE host_run_state;
DROP TABLE run_stdout;
DROP TABLE run_events;
DROP TABLE run_hosts;
DROP TABLE run_bundles;
DROP TABLE runs;

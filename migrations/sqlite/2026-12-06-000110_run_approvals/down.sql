DROP TABLE run_approvals;

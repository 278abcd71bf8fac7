DROP TABLE audit_changes;
DROP TABLE audit_changesets;

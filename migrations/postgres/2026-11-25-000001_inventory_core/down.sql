DROP TABLE variables;
DROP TABLE host_labels;
DROP TABLE memberships;
DROP TABLE hosts;
DROP TABLE group_edges;
DROP TABLE inventory_groups;
DROP TABLE projects;

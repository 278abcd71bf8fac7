-- Maintenance windows (issue 10): per group, inherited by its descendants.
-- kind: rrule (expression = DTSTART;TZID=...\nRRULE:..., time_zone = that
-- TZID) | cron (a cron line in time_zone). duration_s: how long each
-- occurrence stays open. Deleted with their group.
CREATE TABLE maintenance_windows (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    group_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    expression TEXT NOT NULL,
    time_zone VARCHAR(64) NOT NULL,
    duration_s BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
    FOREIGN KEY (group_id) REFERENCES inventory_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE UNIQUE INDEX maintenance_windows_group_name ON maintenance_windows (group_id, name);
CREATE INDEX maintenance_windows_project ON maintenance_windows (project_id);

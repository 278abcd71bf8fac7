DROP TABLE maintenance_windows;

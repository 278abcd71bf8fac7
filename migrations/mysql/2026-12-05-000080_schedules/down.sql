DROP TABLE schedule_firings;
DROP TABLE schedules;

DROP TABLE schedule_after;

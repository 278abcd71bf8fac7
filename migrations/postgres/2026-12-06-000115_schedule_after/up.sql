-- Dependencies between schedules (issue 10): a schedule's fired run comes
-- after the latest run of each schedule it names here (that run's id is
-- added to the fired run's "after"). Both ends are schedules of one
-- project; deleting either end deletes the edge. Cycles are refused when
-- written.
CREATE TABLE schedule_after (
    schedule_id BIGINT NOT NULL,
    after_id BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, after_id),
    FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    FOREIGN KEY (after_id) REFERENCES schedules (id) ON DELETE CASCADE
);
CREATE INDEX schedule_after_after ON schedule_after (after_id);

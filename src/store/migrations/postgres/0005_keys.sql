-- gantry store, version 5, PostgreSQL's DDL (see ../0005_keys.sql). A B-tree entry must stay
-- under about 2.7 kB in PostgreSQL, so param and tag values are not in the key indexes here (a
-- long value would refuse its insert); the series summaries are fixed-width, kept as INCLUDE.
CREATE INDEX params_by_key ON params (key, run_id);
CREATE INDEX tags_by_key ON tags (key, run_id);
CREATE INDEX series_by_key ON series (key, kind, run_id)
    INCLUDE (n_points, last_step, last_value, min_value, max_value);
ALTER TABLE series ADD COLUMN min_step BIGINT;
ALTER TABLE series ADD COLUMN max_step BIGINT;

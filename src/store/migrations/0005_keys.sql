-- gantry store, version 5.
-- Lookups by key across every run: a param or metric column of the runs table, and filters and
-- sorts such as `param.lr>=1e-3` or `-metric.val/loss`, read one key of 10,000 runs without
-- scanning every run's params or series.
CREATE INDEX params_by_key ON params (key, run_id, value);
CREATE INDEX tags_by_key ON tags (key, run_id, value);
-- Covering: a metric column of every run reads the index alone. The key comes first, so one
-- run's series (run_id and kind given, any key) are still found through (run_id, kind, key).
CREATE INDEX series_by_key ON series (key, kind, run_id, n_points, last_step, last_value,
                                      min_value, max_value);
-- The first step of each series' minimum and maximum, so comparing runs finds each metric's best
-- value and its step without reading the points. NULL where not known (series written before).
ALTER TABLE series ADD COLUMN min_step BIGINT;
ALTER TABLE series ADD COLUMN max_step BIGINT;

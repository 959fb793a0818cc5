-- gantry store, version 2: what a benchmark result needs for history per GPU. ADD COLUMN with a
-- default is portable to PostgreSQL.

ALTER TABLE bench_results ADD COLUMN device_uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN driver TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN cuda_version TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN pct_of_peak DOUBLE PRECISION;
ALTER TABLE bench_results ADD COLUMN check_ok INTEGER;            -- NULL: nothing to check
ALTER TABLE bench_results ADD COLUMN max_rel_err DOUBLE PRECISION;
CREATE INDEX bench_by_device ON bench_results (device_uuid, benchmark, started_ms);

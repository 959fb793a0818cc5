-- gantry store, version 2, PostgreSQL's DDL (see ../0002_bench_history.sql): check_ok is BIGINT.

ALTER TABLE bench_results ADD COLUMN device_uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN driver TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN cuda_version TEXT NOT NULL DEFAULT '';
ALTER TABLE bench_results ADD COLUMN pct_of_peak DOUBLE PRECISION;
ALTER TABLE bench_results ADD COLUMN check_ok BIGINT;             -- NULL: nothing to check
ALTER TABLE bench_results ADD COLUMN max_rel_err DOUBLE PRECISION;
CREATE INDEX bench_by_device ON bench_results (device_uuid, benchmark, started_ms);

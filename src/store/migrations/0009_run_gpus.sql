-- gantry store, version 9 (the same for SQLite and PostgreSQL).
-- The GPUs each run's processes used, by UUID, as its `gantry run` saw them through NVML: which
-- run holds a GPU on a host whose exporter lists no processes (dcgm-exporter), and on what
-- hardware a run ran.
CREATE TABLE run_gpus (
    run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    uuid     TEXT NOT NULL,
    first_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, uuid)
);
CREATE INDEX run_gpus_by_uuid ON run_gpus(uuid);

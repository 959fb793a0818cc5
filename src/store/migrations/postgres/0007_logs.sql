-- gantry store, version 7, PostgreSQL's DDL (see ../0007_logs.sql): chunks are BYTEA.
CREATE TABLE run_logs (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    byte_offset BIGINT NOT NULL,
    n_bytes     BIGINT NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (run_id, byte_offset)
);

-- gantry store, version 7: a run's console output, in chunks as it is written, so `gantry logs`
-- and the log pane work from any host of a shared store. A chunk is keyed by where it starts in
-- the output: a writer stores the next chunk only at the stored log's end, so two writers never
-- store a byte twice.
CREATE TABLE run_logs (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    byte_offset BIGINT NOT NULL,
    n_bytes     BIGINT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (run_id, byte_offset)
);

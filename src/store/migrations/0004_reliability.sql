-- gantry store, version 4.
-- A metrics file rewritten in place (`>` instead of `>>`, open(path, "w") again) is told apart by
-- its first bytes: `head` keeps them (at most 256), `rewrites` counts the rewrites found and
-- `reread` the lines read again from a rewritten file's start, for `gantry show`.
ALTER TABLE ingest_sources ADD COLUMN head BLOB;
ALTER TABLE ingest_sources ADD COLUMN rewrites BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ingest_sources ADD COLUMN reread BIGINT NOT NULL DEFAULT 0;
-- The `gantry run` process that supervises a run (pid and start time in clock ticks): while it
-- lives, the run is not crashed even when its command has just exited.
ALTER TABLE runs ADD COLUMN supervisor_pid BIGINT;
ALTER TABLE runs ADD COLUMN supervisor_start BIGINT;

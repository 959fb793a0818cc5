-- gantry store, version 6 (the same for SQLite and PostgreSQL).
-- The last time the `gantry run` supervising a running run said it was alive (every 10 s). A run
-- whose heartbeat stopped is shown `lost` from any host; NULL for runs nothing supervises (served
-- through the MLflow API, imported, or written by a gantry before this).
ALTER TABLE runs ADD COLUMN heartbeat_ms BIGINT;

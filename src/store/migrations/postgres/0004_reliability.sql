-- gantry store, version 4, PostgreSQL's DDL (see ../0004_reliability.sql).
ALTER TABLE ingest_sources ADD COLUMN head BYTEA;
ALTER TABLE ingest_sources ADD COLUMN rewrites BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ingest_sources ADD COLUMN reread BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN supervisor_pid BIGINT;
ALTER TABLE runs ADD COLUMN supervisor_start BIGINT;

-- gantry store, version 8. Nothing changes in SQLite: PostgreSQL's version keeps series chunks
-- out of line and uncompressed (they are compressed already; see postgres/0008_chunk_storage.sql).
SELECT 1;

-- gantry store, version 8, PostgreSQL's DDL: series chunks are compressed by gantry already, so
-- TOAST keeps them out of line without compressing them again (pglz found little to gain and cost
-- a decompression on every read).
ALTER TABLE series_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

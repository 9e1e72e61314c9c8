-- Schema v19 sets PostgreSQL's compression of long text columns (see
-- migrations-postgres/0019_toast_lz4.sql); SQLite stores text as it is.
-- The version is kept so both backends number their schemas alike.
SELECT 1;

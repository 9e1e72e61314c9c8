-- Schema v20 stores SQLite's pages and summaries in the order they are
-- written (see migrations/0020_insertion_order.sql); PostgreSQL's tables
-- are heaps, which append already. The version is kept so both backends
-- number their schemas alike.
SELECT 1;

-- Schema v21 changes only PostgreSQL's tables (see
-- migrations-postgres/0021_inline_pages.sql): a page's text stays in its
-- row, and link numbers are cached. The version is kept so both backends
-- number their schemas alike.
SELECT 1;

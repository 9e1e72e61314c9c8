-- The long text columns (a page's text and Markdown, summaries, earlier
-- versions) compressed with LZ4 rather than the default pglz: pglz took
-- half the server's time of each batch of pages (a crawl of 6,000 pages
-- on one process: 2,290 pages/s with pglz, 2,770 with LZ4). Kept bodies
-- are zlib-compressed by trawl already: stored out of line as they are.
-- A server built without LZ4 (or older than PostgreSQL 14) keeps its
-- defaults.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE pages ALTER COLUMN text SET COMPRESSION lz4, '
         || 'ALTER COLUMN markdown SET COMPRESSION lz4, '
         || 'ALTER COLUMN text_kinds SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE summaries ALTER COLUMN summary SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE summary_parts ALTER COLUMN summary SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE page_versions ALTER COLUMN text SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error OR undefined_object THEN
    RAISE NOTICE 'LZ4 compression not available: % (the default is kept)', SQLERRM;
END
$$;
ALTER TABLE page_html ALTER COLUMN body SET STORAGE EXTERNAL;

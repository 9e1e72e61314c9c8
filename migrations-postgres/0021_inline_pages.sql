-- Schema v21 (PostgreSQL): a page's row keeps its text in line, and the
-- links' insertion numbers are handed out a thousand at a time.
--
-- A page's text (~4 KB on a typical article) made its row pass the 2 KB
-- at which PostgreSQL compresses a row's long values and, still over it
-- after LZ4, moved the text to the TOAST table: a second tuple and an
-- index entry per page, and a compression, which were a fifth of the
-- writer's time for the pages (a crawl of 6,000 pages on one process).
-- With the target at its largest, a row is compressed and moved out only
-- past ~8 KB. Values larger than that go on as before.
ALTER TABLE pages SET (toast_tuple_target = 8160);

-- Every link row took a number from the `seq` identity's sequence, one
-- at a time (a buffer lock, and a WAL record every 32): ~6% of the
-- server's time in a crawl. Cached, a connection takes 1,024 at once.
-- The numbers of one connection still rise, so the links of a page (one
-- `COPY`) keep their order; numbers a process did not use are skipped.
ALTER TABLE links ALTER COLUMN seq SET CACHE 1024;

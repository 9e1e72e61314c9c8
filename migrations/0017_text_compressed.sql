-- trawl schema v17: a page's main text is stored compressed.
--
-- `text_z` holds a non-empty text as one zstd frame (level 1), and `text`
-- is then NULL: the text was most of the bytes a crawl writes (90 of
-- 138 MB on the benchmark's 20,000 pages), and writing them was a quarter
-- of the crawl's CPU. An empty text is stored as '' in `text` and a page
-- without a text (not HTML, binary) has NULL in both, so "has a text" and
-- "has a non-empty text" are still answered in SQL. Rows written before
-- v17 keep their text in `text`. A version kept by a recrawl is stored the
-- same way.
ALTER TABLE pages ADD COLUMN text_z BLOB;
ALTER TABLE page_versions ADD COLUMN text_z BLOB;

-- trawl schema v6: the kind of each line of a page's text (one byte a
-- line: h heading, c code, t table, l list item, p prose), so summarizers
-- can leave code and tables out and keep headings apart. NULL for pages
-- stored before.
ALTER TABLE pages ADD COLUMN text_kinds TEXT;

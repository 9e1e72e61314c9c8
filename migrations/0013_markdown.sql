-- trawl schema v13: each HTML page's main content as Markdown (headings,
-- lists, links with absolute URLs, code blocks with their language,
-- tables), written by the same streaming pass as the text when the crawl
-- has --markdown, and capped like the text (1 MiB). NULL without it, for
-- pages stored before and for bodies that are not HTML.
ALTER TABLE pages ADD COLUMN markdown TEXT;

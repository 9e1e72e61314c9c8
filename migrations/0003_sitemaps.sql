-- trawl schema v3: sitemap files live in the frontier beside pages.

-- 1 for a sitemap (or sitemap index) to be read for URLs; 0 for a page.
-- Sitemaps are fetched like pages (politeness, robots, retries, leases)
-- but are not pages: page counts, exports and budgets leave them out.
ALTER TABLE urls ADD COLUMN sitemap INTEGER NOT NULL DEFAULT 0;

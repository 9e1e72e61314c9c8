-- trawl schema v2: per-host politeness state and robots directives.

-- One row per origin (scheme://host:port) whose robots.txt was fetched.
-- A resumed crawl reads it instead of fetching robots.txt again while it is
-- less than 24 hours old.
CREATE TABLE hosts (
    origin            TEXT PRIMARY KEY,
    -- final HTTP status of robots.txt after redirects; NULL when there was
    -- none (timeout, connection error, redirect loop)
    robots_status     INTEGER,
    -- the body of a 2xx robots.txt, at most 512 KiB
    robots_body       BLOB,
    -- why robots.txt is unavailable, when it is
    robots_error      TEXT,
    robots_fetched_at INTEGER NOT NULL,
    -- the Crawl-delay of trawl's group, milliseconds, as the file says
    crawl_delay_ms    INTEGER
) WITHOUT ROWID;

-- Robots directives of a page (meta robots and X-Robots-Tag): a `noindex`
-- page is stored but left out of exports and summaries by default.
ALTER TABLE pages ADD COLUMN noindex INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pages ADD COLUMN x_robots_tag TEXT;

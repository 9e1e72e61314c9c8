-- trawl schema v11: recrawls. Each run of a crawl is recorded; a recrawl
-- revisits stored pages with conditional requests and records what
-- changed.

-- One row per run: the first crawl, each resume, each recrawl.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    crawl_id    INTEGER NOT NULL,
    -- crawl | resume | recrawl
    kind        TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    -- body bytes downloaded in the run (written when it ends)
    bytes       INTEGER NOT NULL DEFAULT 0
);

-- The run whose changes fetches record now: a recrawl, or the recrawl a
-- resume continues (NULL: a first crawl, whose pages are all new).
ALTER TABLE crawls ADD COLUMN changes_run INTEGER;

-- When the page was last asked for (a 304 moves it, the page stays),
-- how long to wait before asking again, and when that is.
ALTER TABLE pages ADD COLUMN checked_at INTEGER;
ALTER TABLE pages ADD COLUMN revisit_ms INTEGER;
ALTER TABLE pages ADD COLUMN due_at INTEGER;
-- The run that found the page gone (404 or 410); the page is kept.
ALTER TABLE pages ADD COLUMN removed_run INTEGER;
UPDATE pages SET checked_at = fetched_at;

-- Earlier versions of pages that changed, one per replaced version.
CREATE TABLE page_versions (
    url_id       INTEGER NOT NULL,
    -- the run that replaced this version
    run_id       INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    fetched_at   INTEGER NOT NULL,
    content_hash TEXT,
    title        TEXT,
    text         TEXT,
    PRIMARY KEY (url_id, run_id)
) WITHOUT ROWID;

-- What each recrawl found per page: new | changed | unchanged | removed.
CREATE TABLE page_changes (
    run_id     INTEGER NOT NULL,
    url_id     INTEGER NOT NULL,
    change     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    -- body bytes downloaded for it (0 for a 304)
    bytes      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, url_id)
) WITHOUT ROWID;

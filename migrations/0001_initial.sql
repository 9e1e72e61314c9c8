-- trawl schema v1. One crawl per database file.
-- Times are Unix epoch milliseconds (UTC).

CREATE TABLE crawls (
    id            INTEGER PRIMARY KEY,
    -- running | stopped | finished
    state         TEXT    NOT NULL,
    -- the validated crawl configuration, as JSON, so `resume` can continue it
    config        TEXT    NOT NULL,
    trawl_version TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
);

-- The frontier. `id` is the 64-bit xxh3 fingerprint of the canonical URL
-- (see src/canon.rs), so the table is keyed without a second index on `url`
-- and link edges refer to URLs without a lookup.
CREATE TABLE urls (
    id              INTEGER PRIMARY KEY,
    url             TEXT    NOT NULL,
    -- scheme://host:port, the politeness key
    origin          TEXT    NOT NULL,
    depth           INTEGER NOT NULL,
    -- queued | leased | done | failed | skipped
    state           TEXT    NOT NULL,
    -- why skipped or failed (out_of_scope, max_depth, http_404, timeout, ...)
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- the URL whose page (or redirect) revealed this one; NULL for seeds
    discovered_from INTEGER,
    -- redirect hops taken to reach this URL from a linked URL
    redirect_hops   INTEGER NOT NULL DEFAULT 0,
    discovered_at   INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Only queued rows are indexed: the refill query reads them in depth order,
-- and rows leave the index as soon as they are leased.
CREATE INDEX urls_queued ON urls (depth, id) WHERE state = 'queued';

-- One row per fetched URL (including redirect responses and HTTP errors).
CREATE TABLE pages (
    url_id        INTEGER PRIMARY KEY REFERENCES urls (id),
    status        INTEGER NOT NULL,
    -- where the redirect chain starting at this URL ended
    final_url     TEXT    NOT NULL,
    -- the Location of a 3xx response, resolved
    redirect_to   TEXT,
    content_type  TEXT,
    -- body bytes after decompression
    size          INTEGER NOT NULL,
    truncated     INTEGER NOT NULL DEFAULT 0,
    fetched_at    INTEGER NOT NULL,
    fetch_ms      INTEGER NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    -- SHA-256 of the body, hex
    content_hash  TEXT,
    title         TEXT,
    description   TEXT,
    language      TEXT,
    canonical     TEXT,
    base_href     TEXT,
    meta_robots   TEXT,
    encoding      TEXT,
    text          TEXT,
    links_count   INTEGER NOT NULL DEFAULT 0
);

-- Link edges, one per (page, canonical target). A page's links are written
-- in the same transaction as the page, so they are contiguous in rowid order;
-- no index is kept, to keep the hottest insert cheap.
CREATE TABLE links (
    from_id  INTEGER NOT NULL,
    to_id    INTEGER NOT NULL,
    anchor   TEXT,
    nofollow INTEGER NOT NULL DEFAULT 0
);

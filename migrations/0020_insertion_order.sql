-- trawl schema v20: pages and summaries are stored in the order they are
-- written, and found by their keys through an index.
--
-- Both tables were keyed by hashes (`pages.url_id` is the URL's xxh3
-- fingerprint, `summaries` the body's SHA-256): every row went to a
-- random leaf of its B-tree, so each commit of ~30 pages rewrote ~100
-- leaves of `pages` and ~70 of `summaries` in the WAL, splitting most
-- of them. A rowid table appends its rows; the unique index that takes
-- the key has rows of a few bytes, so a commit touches fewer, smaller
-- pages. Same columns, same order, same constraints.

CREATE TABLE pages_v20 (
    url_id        INTEGER NOT NULL UNIQUE REFERENCES urls (id),
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
    links_count   INTEGER NOT NULL DEFAULT 0,
    noindex       INTEGER NOT NULL DEFAULT 0,
    x_robots_tag  TEXT,
    -- one byte a line of `text`: h heading, c code, t table, l list, p prose
    text_kinds    TEXT,
    markdown      TEXT,
    -- xxh3-64 of the stored links (see store::records::links_hash)
    links_hash    INTEGER
);
INSERT INTO pages_v20 (url_id, status, final_url, redirect_to, content_type, size, truncated,
    fetched_at, fetch_ms, etag, last_modified, content_hash, title, description, language,
    canonical, base_href, meta_robots, encoding, text, links_count, noindex, x_robots_tag,
    text_kinds, markdown, links_hash)
SELECT url_id, status, final_url, redirect_to, content_type, size, truncated,
    fetched_at, fetch_ms, etag, last_modified, content_hash, title, description, language,
    canonical, base_href, meta_robots, encoding, text, links_count, noindex, x_robots_tag,
    text_kinds, markdown, links_hash
FROM pages ORDER BY url_id;
DROP TABLE pages;
ALTER TABLE pages_v20 RENAME TO pages;

CREATE TABLE summaries_v20 (
    content_hash      TEXT    NOT NULL,
    -- extractive | llm
    backend           TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_version    TEXT    NOT NULL,
    -- done | failed
    state             TEXT    NOT NULL,
    summary           TEXT,
    -- why it failed: the server's message, or the local reason
    error             TEXT,
    -- as the LLM reported them (summed over chunks); 0 for extractive
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    -- input split into this many chunks (map-reduce); 1 when it fit
    chunks            INTEGER NOT NULL DEFAULT 1,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    -- cut at the LLM's max_tokens
    truncated         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (content_hash, backend, model, prompt_version)
);
INSERT INTO summaries_v20 (content_hash, backend, model, prompt_version, state, summary, error,
    prompt_tokens, completion_tokens, chunks, attempts, created_at, updated_at, truncated)
SELECT content_hash, backend, model, prompt_version, state, summary, error,
    prompt_tokens, completion_tokens, chunks, attempts, created_at, updated_at, truncated
FROM summaries ORDER BY created_at;
DROP TABLE summaries;
ALTER TABLE summaries_v20 RENAME TO summaries;

-- trawl schema v14: structured extraction. HTML bodies kept for
-- `trawl extract` (`crawl --keep-html`, implied by `--extract`), and the
-- fields taken from pages by CSS selectors.

-- The body of an HTML page as fetched (after any Content-Encoding is
-- undone, before its charset is decoded), zlib-compressed (RFC 1950).
-- Only crawls that keep HTML write here.
CREATE TABLE page_html (
    url_id INTEGER PRIMARY KEY,
    -- bytes of the body before compression
    size   INTEGER NOT NULL,
    body   BLOB    NOT NULL
);

-- One row per page and field whose selector matched: the values as a
-- JSON array of strings, in document order. A field that matched nothing
-- on a page has no row.
CREATE TABLE extracted (
    url_id INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    vals   TEXT    NOT NULL,
    PRIMARY KEY (url_id, name)
);

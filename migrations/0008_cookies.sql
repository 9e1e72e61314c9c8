-- trawl schema v8: the crawl's cookie jars, one per host, in the
-- cookie_store crate's JSON format (session cookies included), so `trawl
-- resume` keeps sessions. Written in the transaction of the fetch whose
-- response set them.
CREATE TABLE cookies (
    host TEXT PRIMARY KEY,
    jar  TEXT NOT NULL
) WITHOUT ROWID;

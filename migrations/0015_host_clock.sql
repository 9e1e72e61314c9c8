-- trawl schema v15: a host's clock survives the process.
--
-- The earliest time (epoch ms) a request may start to the host: the end
-- of a back-off or of a server's Retry-After, written when it is decided,
-- so that a resumed crawl or a recrawl started at once waits it out too.
-- NULL: no such wait. A row can now exist for a host whose robots.txt was
-- never read (`--ignore-robots`): `robots_fetched_at` is then 0 and
-- `robots_status` NULL.
ALTER TABLE hosts ADD COLUMN next_fetch_at INTEGER;

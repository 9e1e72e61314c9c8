-- trawl schema v5: when the current (or last) run of a crawl started, for
-- `status`'s pages per second over the last run.
ALTER TABLE crawls ADD COLUMN run_started_at INTEGER;
UPDATE crawls SET run_started_at = started_at;

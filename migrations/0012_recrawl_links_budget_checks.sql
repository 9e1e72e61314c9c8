-- trawl schema v12: the links a recrawl saw appear on, or go from, a page
-- that changed (its link set before the change against after).
CREATE TABLE link_changes (
    run_id  INTEGER NOT NULL,
    from_id INTEGER NOT NULL,
    to_id   INTEGER NOT NULL,
    -- added | gone
    change  TEXT    NOT NULL,
    PRIMARY KEY (run_id, from_id, to_id)
) WITHOUT ROWID;

-- The state and reason a URL had when a recrawl queued it for a revisit:
-- a revisit the page budget leaves unmade goes back to them (a stored
-- page stays `done`, and is revisited next time), instead of becoming
-- `skipped` like a new URL the budget had no room for.
ALTER TABLE urls ADD COLUMN revisit_state TEXT;
ALTER TABLE urls ADD COLUMN revisit_reason TEXT;

-- What a revisit changes about a page that is kept (its check time,
-- schedule and removal) moves out of `pages` into a narrow table: a page
-- row holds the text, so rewriting it for every 304 wrote and read the
-- whole of the text again (these columns, added last, sat behind it).
-- A page with no row here was checked when it was fetched and has never
-- been revisited.
CREATE TABLE page_checks (
    url_id      INTEGER PRIMARY KEY,
    checked_at  INTEGER NOT NULL,
    revisit_ms  INTEGER,
    due_at      INTEGER,
    removed_run INTEGER
);
INSERT INTO page_checks (url_id, checked_at, revisit_ms, due_at, removed_run)
    SELECT url_id, COALESCE(checked_at, fetched_at), revisit_ms, due_at, removed_run FROM pages
    WHERE revisit_ms IS NOT NULL OR due_at IS NOT NULL OR removed_run IS NOT NULL
       OR checked_at != fetched_at;
ALTER TABLE pages DROP COLUMN checked_at;
ALTER TABLE pages DROP COLUMN revisit_ms;
ALTER TABLE pages DROP COLUMN due_at;
ALTER TABLE pages DROP COLUMN removed_run;

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

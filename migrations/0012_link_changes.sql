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

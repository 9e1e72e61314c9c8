-- trawl schema v10: a summary cut at max_tokens is marked (`truncated`:
-- finish_reason "length" even after a retry with more room, or made from a
-- cut part); and the summaries of a split page's parts are kept as they
-- finish, so a retry of the page (a failed reduce step, a kill) does not
-- pay for them again. Keyed like `summaries`, plus the SHA-256 of the
-- part's prompt and text; deleted when the page's summary is done.
ALTER TABLE summaries ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
CREATE TABLE summary_parts (
    content_hash      TEXT NOT NULL,
    backend           TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_version    TEXT NOT NULL,
    part_key          TEXT NOT NULL,
    summary           TEXT NOT NULL,
    cut               INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (content_hash, backend, model, prompt_version, part_key)
) WITHOUT ROWID;

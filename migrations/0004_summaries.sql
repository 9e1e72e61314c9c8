-- trawl schema v4: summaries.

-- One summary per content × summarizer: a page whose body did not change is
-- not summarized again, in this crawl or another, and two URLs serving the
-- same body share one summary. `backend` is extractive or llm; `model` the
-- LLM's model (or the extractive method); `prompt_version` a hash of the
-- prompt (or the extractive settings).
CREATE TABLE summaries (
    content_hash      TEXT    NOT NULL,
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
    PRIMARY KEY (content_hash, backend, model, prompt_version)
) WITHOUT ROWID;

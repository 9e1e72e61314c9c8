-- trawl schema v16: the processes that work on a crawl.
--
-- One row per process per run: who it is (host name, pid), its
-- `--concurrency`, when it started, its last heartbeat (written every 5 s
-- while it runs), when it ended (NULL while it runs, and after it was
-- killed), and, as of its last heartbeat, the pages it fetched and the
-- hosts it had work for. Times are epoch ms.
CREATE TABLE processes (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    hostname     TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    finished_at  INTEGER,
    fetched      INTEGER NOT NULL DEFAULT 0,
    hosts        INTEGER NOT NULL DEFAULT 0
);

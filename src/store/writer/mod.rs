//! The store writer: the one task that writes to the database during a crawl.
//!
//! In: [`WriteOp`]s over a bounded channel (a full channel is back-pressure
//! on the crawl). Out: committed transactions; replies on `oneshot`s for
//! operations that need an answer (refill, flush).
//!
//! Batching is group commit: the writer takes whatever is waiting when it is
//! ready (up to [`MAX_BATCH`] operations) and commits it as one transaction,
//! so under load batches grow and per-commit cost is shared. A batch smaller
//! than `MIN_BATCH` waits up to `LINGER` for company, unless someone is
//! waiting on its reply (a refill, a flush) or it holds as many fetches as
//! the crawl lets wait (see below). A page, the state change of its URL,
//! its links and the URLs it revealed are one operation, so they are always
//! committed together.
//!
//! The writer publishes how many fetches (and rows of links and new URLs
//! with them) it has committed. The crawl counts a fetch against its
//! concurrency until then, so however the process dies, at most
//! `concurrency` fetched pages are lost and fetched again on resume; and it
//! holds back new fetches while too many rows wait, which bounds the memory
//! of a backlog of link-heavy pages.

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::records::*;
use super::{Conn, StoreError};

/// The batch SQL for SQLite.
#[path = "."]
mod sqlite {
    type Db = sqlx::Sqlite;
    const PG: bool = false;
    #[path = "batch.rs"]
    pub(super) mod batch;

    /// A batch's hot rows: single-row statements stepped on the writer's
    /// thread through the connection's handle.
    #[path = "sqlite_rows.rs"]
    mod rows;
}

/// The same batch SQL, for PostgreSQL.
#[path = "."]
mod postgres {
    type Db = sqlx::Postgres;
    const PG: bool = true;
    // The same file as `sqlite::batch` on purpose: written once, compiled
    // for each backend's `Db`.
    #[allow(clippy::duplicate_mod)]
    #[path = "batch.rs"]
    pub(super) mod batch;

    /// A batch's hot rows: multi-row statements, a round trip each, and
    /// the links by `COPY`.
    #[path = "pg_rows.rs"]
    mod rows;
}

/// Most operations committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// A batch smaller than this waits up to [`LINGER`] for more.
const MIN_BATCH: usize = 64;
/// ... unless it carries this many rows (the crawl holds back fetches
/// while rows wait).
const MIN_BATCH_ROWS: u64 = 5_000;
const LINGER: std::time::Duration = std::time::Duration::from_millis(25);

/// On PostgreSQL the writer has the tables it fills analyzed after this
/// many fetches, then ten times as many, and so on. A crawl starts on
/// empty tables, and the autovacuum daemon analyzes them a minute later at
/// the soonest; without statistics the planner took a list of 128 URL ids
/// for two thirds of `urls` and scanned the table for every batch (a cost
/// that grows with the crawl). With them, each id is an index look-up.
/// `ANALYZE` reads a sample of at most 30,000 rows, whatever the size.
const FIRST_ANALYZE: u64 = 100;

/// Starts the writer on its own connection, with (for SQLite) a
/// checkpointer on a second one. The task ends when every handle is dropped (after committing
/// what was sent) or on the first database error, which it returns.
///
/// A batch holding `linger_fetches` fetches is committed without lingering:
/// the crawl is waiting on them.
pub fn spawn(
    conn: Conn,
    checkpoint_conn: Option<SqliteConnection>,
    reader: Option<sqlx::SqlitePool>,
    capacity: usize,
    linger_fetches: usize,
    lease: Option<Lease>,
) -> (
    WriterHandle,
    tokio::task::JoinHandle<Result<WriterStats, StoreError>>,
) {
    let (tx, rx) = mpsc::channel(capacity);
    let (committed_tx, committed) = watch::channel(Committed::default());
    // The writer is the crawl's one serial stage: it runs on a thread and
    // runtime of its own, so that each of its statements' replies is
    // picked up at once, not after the page analyses queued on the
    // crawl's runtime threads (that wait was a fifth of its busy time).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let reader = reader.map(|pool| Reader {
        pool,
        runtime: tokio::runtime::Handle::current(),
    });
    let thread = std::thread::Builder::new()
        .name("trawl-writer".into())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(run(
                    conn,
                    rx,
                    committed_tx,
                    linger_fetches.max(1),
                    lease,
                    reader,
                )),
                Err(e) => Err(StoreError::Sql(sqlx::Error::Io(e))),
            };
            let _ = done_tx.send(result);
        });
    let task = tokio::spawn(async move {
        let stop = CancellationToken::new();
        let checkpointer = checkpoint_conn.map(|c| tokio::spawn(checkpoint(c, stop.clone())));
        let result = match thread {
            Ok(_) => done_rx.await.unwrap_or(Err(StoreError::WriterGone)),
            Err(e) => Err(StoreError::Sql(sqlx::Error::Io(e))),
        };
        stop.cancel();
        if let Some(c) = checkpointer {
            let _ = c.await;
        }
        result
    });
    (WriterHandle { tx, committed }, task)
}

async fn run(
    mut conn: Conn,
    mut rx: mpsc::Receiver<WriteOp>,
    committed: watch::Sender<Committed>,
    linger_fetches: usize,
    lease: Option<Lease>,
    reader: Option<Reader>,
) -> Result<WriterStats, StoreError> {
    // Checkpoints copy the WAL back into the database file and fsync it:
    // the most expensive thing SQLite does. Left automatic, every few
    // hundred commits the writer would stop for it; the checkpointer does it
    // on its own connection instead, beside the writer.
    match &mut conn {
        Conn::Sqlite(c) => {
            sqlx::query("PRAGMA wal_autocheckpoint = 0")
                .execute(c)
                .await?;
        }
        // The durability SQLite has with `synchronous = NORMAL` in WAL
        // mode: a commit does not wait for its WAL record to reach the
        // disk. A crash of the server (not of trawl) can then lose the
        // last fraction of a second of commits, whole transactions only:
        // their fetches are made again, as after a kill. Halves the
        // writer's wait on the benchmark.
        Conn::Postgres(c) => {
            sqlx::query("SET synchronous_commit = off")
                .execute(c)
                .await?;
        }
    }
    let mut stats = WriterStats::default();
    let mut fetched = 0u64;
    let mut analyze_at = FIRST_ANALYZE;
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    // Origins known to have their `hosts` row (see `batch::record_urls`).
    let mut known_hosts = std::collections::HashSet::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        linger(&mut rx, &mut batch, linger_fetches).await;
        let n = batch.len() as u64;
        let fetches = count_fetches(&batch) as u64;
        let rows = count_rows(&batch);
        let t = std::time::Instant::now();
        let replies = match &mut conn {
            Conn::Sqlite(c) => {
                sqlite::batch::commit(c, &mut batch, lease.as_ref(), &mut known_hosts).await?
            }
            Conn::Postgres(c) => {
                postgres::batch::commit(c, &mut batch, lease.as_ref(), &mut known_hosts).await?
            }
        };
        if fetches > 0 {
            committed.send_modify(|c| {
                c.fetches += fetches;
                c.rows += rows;
            });
        }
        fetched += fetches;
        if let Conn::Postgres(c) = &mut conn
            && fetched >= analyze_at
        {
            analyze_at = analyze_at.saturating_mul(10);
            // A failed ANALYZE costs only plans: logged, not fatal.
            if let Err(e) = sqlx::query("ANALYZE urls, hosts").execute(c).await {
                tracing::debug!("analyze: {e}");
            }
        }
        stats.busy += t.elapsed();
        stats.transactions += 1;
        stats.ops += n;
        for reply in replies {
            reply.send(reader.as_ref());
        }
    }
    conn.close().await;
    Ok(stats)
}

/// Each commit has a fixed cost (WAL frames for the pages every batch
/// touches), so a small batch is worth holding back a moment for company
/// — but only data nobody waits for: a batch holding a refill or a flush,
/// or `linger_fetches` fetches holding up the crawl's slots, goes at once.
async fn linger(rx: &mut mpsc::Receiver<WriteOp>, batch: &mut Vec<WriteOp>, linger_fetches: usize) {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < MIN_BATCH
        && count_fetches(batch) < linger_fetches
        && count_rows(batch) < MIN_BATCH_ROWS
        && !batch.iter().any(WriteOp::is_awaited)
    {
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, MAX_BATCH - batch.len())).await
        {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// Rows of links and new URLs carried by the fetches in `batch`.
fn count_rows(batch: &[WriteOp]) -> u64 {
    batch
        .iter()
        .map(|op| match op {
            WriteOp::Fetch(rec) => rec.rows(),
            _ => 0,
        })
        .sum()
}

fn count_fetches(batch: &[WriteOp]) -> usize {
    batch
        .iter()
        .filter(|op| matches!(op, WriteOp::Fetch(_)))
        .count()
}

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a restarting checkpoint waits for readers of older snapshots
/// (a `status` or `export` beside the crawl) before it gives up until the
/// next turn. The writer waits for it meanwhile, so this stays short.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Checkpoints while the writer runs, every [`CHECKPOINT_EVERY`], and a
/// truncating one at the end so the WAL file does not stay large.
///
/// Each turn is two steps. A passive checkpoint copies what the WAL holds
/// back into the database without blocking the writer. A restarting one
/// then copies the few frames committed meanwhile, holding the writer off
/// for that long (tens of milliseconds), and makes its next commit write
/// the WAL from its start. Passive checkpoints alone never let that
/// happen while the writer is busy: the WAL of a fast crawl grew by all
/// it wrote (1.2 GB in a 60,000-page crawl, appended page by page to the
/// file), and the end waited for all of it to be copied, synced and
/// freed. Restarted each second it stays at about one second of writes,
/// overwritten in the page cache.
///
/// Since pages and summaries are appended (schema v20), what a checkpoint
/// copies twice is only the leaves of `urls` and of the hash indexes that
/// several turns rewrote: with every page's rows at random places, a
/// checkpoint every 500 ms had cost a fifth more CPU per page than one
/// every 5 s; now one a second costs none more and ends the crawl sooner.
async fn checkpoint(mut conn: SqliteConnection, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Err(e) = set_busy_timeout(&mut conn, RESTART_WAIT).await {
        tracing::debug!("checkpoint: {e}");
    }
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = checkpoint_turn(&mut conn).await {
                    tracing::debug!("checkpoint: {e}");
                }
            }
        }
    }
    // The summary stage may still be writing: wait as other connections do.
    if let Err(e) = set_busy_timeout(&mut conn, crate::store::BUSY_TIMEOUT).await {
        tracing::debug!("checkpoint: {e}");
    }
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
    {
        tracing::debug!("final checkpoint: {e}");
    }
    conn.close().await.ok();
}

/// How long `conn` waits for another connection's lock before it answers
/// `SQLITE_BUSY`.
async fn set_busy_timeout(
    conn: &mut SqliteConnection,
    wait: std::time::Duration,
) -> Result<(), sqlx::Error> {
    // Built from a number: nothing of the input reaches the SQL.
    let sql = format!("PRAGMA busy_timeout = {}", wait.as_millis());
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// One turn of the checkpointer: a passive checkpoint, then a restarting
/// one. `Ok(true)` when the WAL was all copied and its next commit writes
/// it from its start; `Ok(false)` when a reader of an older snapshot held
/// on past [`RESTART_WAIT`] (the next turn tries again).
async fn checkpoint_turn(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *conn)
        .await?;
    // (busy, frames in the WAL, frames copied): busy is 1 when it gave up.
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(busy == 0)
}

/// Where a SQLite recrawl's refills read what is stored of the pages they
/// lease (validators, content hash, revisit interval): a connection of the
/// store's reading pool, on the crawl's runtime. Those reads (a row of
/// `pages` each, a tenth of the writer's time in a recrawl) then run
/// beside the writer's next batches instead of in its transaction; the
/// rows are the committed ones, and only the fetches of the URLs leased
/// (which wait for the reply) change them.
struct Reader {
    pool: sqlx::SqlitePool,
    runtime: tokio::runtime::Handle,
}

/// A reply to send once the batch is committed.
enum Reply {
    /// URLs leased; with `true`, what is stored of their pages is still to
    /// be read for a recrawl (see [`Reader`]).
    Refill(
        oneshot::Sender<Result<Vec<LeasedUrl>, StoreError>>,
        Vec<LeasedUrl>,
        bool,
    ),
    Claim(oneshot::Sender<Claimed>, Claimed),
    Flush(oneshot::Sender<()>),
}

impl Reply {
    fn send(self, reader: Option<&Reader>) {
        // A receiver that went away (a stopping crawl) is not an error.
        match self {
            Reply::Refill(tx, mut rows, true) => match reader {
                Some(r) => {
                    let pool = r.pool.clone();
                    r.runtime.spawn(async move {
                        let read = async {
                            let mut conn = pool.acquire().await?;
                            sqlite::batch::read_revisits(&mut conn, &mut rows).await
                        };
                        drop(tx.send(read.await.map(|()| rows)));
                    });
                }
                None => drop(tx.send(Ok(rows))),
            },
            Reply::Refill(tx, rows, _) => drop(tx.send(Ok(rows))),
            Reply::Claim(tx, claimed) => drop(tx.send(claimed)),
            Reply::Flush(tx) => drop(tx.send(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Conn, Store};

    /// A key met again starts the next run; the rows keep their order.
    #[test]
    fn a_repeated_key_starts_a_run() {
        let key = |r: &i32| *r;
        let rows = [1, 2, 3, 2, 4, 1, 1];
        let runs = postgres::batch::runs_by(&rows, key);
        assert_eq!(runs, vec![&[1, 2, 3][..], &[2, 4, 1][..], &[1][..]]);
        assert!(postgres::batch::runs_by(&[], key).is_empty());
    }

    fn url(id: i64, from: Option<i64>) -> NewUrl {
        NewUrl {
            id,
            url: format!("http://a.test/{id}"),
            origin: "http://a.test:80".into(),
            depth: 1,
            state: UrlState::Queued,
            reason: None,
            discovered_from: from,
            redirect_hops: 0,
            sitemap: false,
        }
    }

    /// A checkpointer's turn leaves the WAL to be written again from its
    /// start, so the file stops growing however much the writer writes;
    /// a reader holding an old snapshot makes the turn give up (not
    /// wait), and the turn after it, with the reader gone, restarts.
    #[tokio::test]
    async fn a_checkpoint_turn_lets_the_wal_be_written_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.unwrap();
        let conn = || async {
            let Conn::Sqlite(c) = store.connection().await.unwrap() else {
                unreachable!("a file")
            };
            c
        };
        let (mut writer, mut checkpointer, mut reader) = (conn().await, conn().await, conn().await);
        set_busy_timeout(&mut checkpointer, RESTART_WAIT)
            .await
            .unwrap();
        let wal = crate::store::open::wal_path(&path);
        // A batch of 1,000 new URLs.
        async fn write(conn: &mut SqliteConnection, n: i64) {
            let sql = format!(
                "INSERT INTO urls (id, url, origin, depth, state, discovered_at, updated_at) \
                 WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 1000) \
                 SELECT {n} * 1000 + v, 'http://a.test/' || v, 'http://a.test:80', 0, 'queued', \
                 0, 0 FROM s"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(conn)
                .await
                .unwrap();
        }
        for n in 1..=5 {
            write(&mut writer, n).await;
        }
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(checkpoint_turn(&mut checkpointer).await.unwrap());
        for n in 6..=10 {
            write(&mut writer, n).await;
        }
        // The same five batches again, over the frames already copied.
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), grown);

        // A reader in the middle of a read holds its snapshot in the WAL.
        sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM urls")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        write(&mut writer, 11).await;
        assert!(!checkpoint_turn(&mut checkpointer).await.unwrap());
        // The writer is not held up by the turn that gave up.
        write(&mut writer, 12).await;
        sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
        assert!(checkpoint_turn(&mut checkpointer).await.unwrap());
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM urls")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(count, 12_000);
    }

    /// SQLite's own rows (`sqlite_rows`) store what the multi-row
    /// statements store: a URL found twice keeps its first record, a URL
    /// fetched twice in one batch with one outcome counts its attempts
    /// once (as `WHERE id IN (…)` does), links keep their order.
    #[tokio::test]
    async fn a_batch_through_the_handle_stores_what_the_statements_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.unwrap();
        let Conn::Sqlite(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a file")
        };
        let mut first = FetchRecord::new(1, "http://a.test:80".into());
        first.new_urls = vec![url(2, Some(1)), url(2, Some(9))];
        first.links = ["x", "y", "x"]
            .iter()
            .map(|a| LinkRecord {
                to_id: 2,
                anchor: a.to_string(),
                nofollow: false,
                kind: None,
            })
            .collect();
        let mut batch = vec![
            WriteOp::Urls(vec![url(1, None)]),
            WriteOp::Fetch(Box::new(first)),
            WriteOp::Fetch(Box::new(FetchRecord::new(1, "http://a.test:80".into()))),
        ];
        sqlite::batch::commit(&mut conn, &mut batch, None, &mut Default::default())
            .await
            .unwrap();
        let (state, attempts): (String, i64) =
            sqlx::query_as("SELECT state, attempts FROM urls WHERE id = 1")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!((state.as_str(), attempts), ("done", 1));
        let from: i64 = sqlx::query_scalar("SELECT discovered_from FROM urls WHERE id = 2")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(from, 1);
        let anchors: Vec<String> =
            sqlx::query_scalar("SELECT anchor FROM links WHERE from_id = 1 ORDER BY rowid")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(anchors, ["x", "y", "x"]);
    }

    /// A new database on the test server (`store::pg::test_server`)
    /// opened as a store, with a connection to the server's `postgres`
    /// database to drop it from ([`drop_pg`]).
    async fn pg_store(tag: &str) -> (sqlx::PgConnection, String, Store) {
        use sqlx::Connection;
        let server = crate::store::pg::test_server();
        let name = format!("trawl_u_{tag}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let store = Store::open(crate::store::DbTarget::Postgres(format!("{server}/{name}")))
            .await
            .unwrap();
        (admin, name, store)
    }

    /// This process's lease in the PostgreSQL tests: owner 1, token 7.
    const LEASE: Lease = Lease {
        owner: 1,
        token: 7,
        ttl_ms: 30_000,
    };

    async fn drop_pg(mut admin: sqlx::PgConnection, name: &str, store: Store) {
        store.close().await;
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    /// On PostgreSQL a batch records only the fetches of origins whose
    /// host lease this process still holds (the origin a fetch carries,
    /// checked against `hosts` in the batch's transaction): a fetch of an
    /// origin another process has taken over leaves its URL as it was and
    /// stores no page; the fetch of a held origin is recorded.
    #[tokio::test]
    async fn a_fetch_of_a_host_whose_lease_was_lost_is_not_recorded() {
        let (admin, name, store) = pg_store("lease").await;
        let Conn::Postgres(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a server URL")
        };
        // Host a.test is this process's (owner 1, token 7); b.test was
        // taken over by owner 2.
        let later = crate::util::now_ms() + 60_000;
        sqlx::query(
            "INSERT INTO hosts (origin, robots_fetched_at, lease_owner, lease_token, lease_expires_at) \
             VALUES ('http://a.test:80', 0, 1, 7, $1), ('http://b.test:80', 0, 2, 9, $1)",
        )
        .bind(later)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO urls (id, url, origin, depth, state, discovered_at, updated_at) VALUES \
             (1, 'http://a.test/', 'http://a.test:80', 0, 'leased', 0, 0), \
             (2, 'http://b.test/', 'http://b.test:80', 0, 'leased', 0, 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let fetch = |id: i64, origin: &str| {
            let mut rec = FetchRecord::new(id, origin.into());
            rec.page = Some(PageRecord {
                status: 200,
                final_url: format!("{origin}/"),
                ..PageRecord::default()
            });
            WriteOp::Fetch(Box::new(rec))
        };
        let mut batch = vec![fetch(1, "http://a.test:80"), fetch(2, "http://b.test:80")];
        postgres::batch::commit(&mut conn, &mut batch, Some(&LEASE), &mut Default::default())
            .await
            .unwrap();
        let states: Vec<(i64, String)> = sqlx::query_as("SELECT id, state FROM urls ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let pages: Vec<i64> = sqlx::query_scalar("SELECT url_id FROM pages ORDER BY url_id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        drop(conn);
        drop_pg(admin, &name, store).await;
        assert_eq!(states, [(1, "done".to_string()), (2, "leased".to_string())]);
        assert_eq!(pages, [1]);
    }

    /// On PostgreSQL, as SQLite's upsert does: a URL a batch records as
    /// skipped for a limit and then, in the same batch, as queued (found
    /// again by a shallower path) ends queued; one found queued first
    /// stays queued.
    #[tokio::test]
    async fn a_url_skipped_then_queued_in_one_batch_ends_queued() {
        let (admin, name, store) = pg_store("again").await;
        let Conn::Postgres(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a server URL")
        };
        let found = |id: i64, state: UrlState| NewUrl {
            state,
            reason: (state == UrlState::Skipped).then_some("max_depth"),
            ..url(id, None)
        };
        let mut batch = vec![WriteOp::Urls(vec![
            found(5, UrlState::Skipped),
            found(6, UrlState::Queued),
            found(5, UrlState::Queued),
            found(6, UrlState::Skipped),
        ])];
        postgres::batch::commit(&mut conn, &mut batch, Some(&LEASE), &mut Default::default())
            .await
            .unwrap();
        let rows: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, state, reason FROM urls ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        drop(conn);
        drop_pg(admin, &name, store).await;
        assert_eq!(
            rows,
            [
                (5, "queued".to_string(), None),
                (6, "queued".to_string(), None)
            ]
        );
    }

    /// A shared crawl's writer remembers the origins whose `hosts` row it
    /// committed, and only those: an origin first met with a skipped URL
    /// gets its row when a later batch queues one of its URLs.
    #[tokio::test]
    async fn a_hosts_row_is_made_once_for_each_origin_with_queued_urls() {
        let (admin, name, store) = pg_store("hosts").await;
        let Conn::Postgres(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a server URL")
        };
        let at = |id: i64, origin: &str, state: UrlState| NewUrl {
            origin: origin.into(),
            state,
            reason: (state == UrlState::Skipped).then_some("max_depth"),
            ..url(id, None)
        };
        let mut known = std::collections::HashSet::new();
        let mut batch = vec![WriteOp::Urls(vec![
            at(1, "http://a.test:80", UrlState::Queued),
            at(2, "http://b.test:80", UrlState::Skipped),
        ])];
        postgres::batch::commit(&mut conn, &mut batch, Some(&LEASE), &mut known)
            .await
            .unwrap();
        let after_first: Vec<String> = known.iter().cloned().collect();
        let mut batch = vec![WriteOp::Urls(vec![
            at(3, "http://a.test:80", UrlState::Queued),
            at(4, "http://b.test:80", UrlState::Queued),
        ])];
        postgres::batch::commit(&mut conn, &mut batch, Some(&LEASE), &mut known)
            .await
            .unwrap();
        let hosts: Vec<String> = sqlx::query_scalar("SELECT origin FROM hosts ORDER BY origin")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        drop(conn);
        drop_pg(admin, &name, store).await;
        assert_eq!(after_first, ["http://a.test:80"]);
        assert_eq!(hosts, ["http://a.test:80", "http://b.test:80"]);
        let mut known: Vec<String> = known.into_iter().collect();
        known.sort();
        assert_eq!(known, hosts);
    }
}

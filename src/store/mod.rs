//! Storage: the SQLite database that is the crawl's source of truth.
//!
//! In: a path. Out: a [`Store`] with a read pool, plus one dedicated
//! connection for the [`writer`] task, the only code that writes during a
//! crawl.
//!
//! Opening is careful (see `open`): a directory, a file that is not
//! SQLite, an SQLite file that trawl did not make, a database from a newer
//! trawl, or one that cannot be written when writing was asked for, is
//! refused before anything is created or changed. Readers need no lock
//! and can read a database this process cannot write.

/// `$body` for the backend `$value` (a [`Pools`] or a [`Conn`], `$enum`)
/// is, written once and compiled for each: inside it, `$x` is the
/// backend's pool or connection, `Db` its `sqlx::Database` and `PG`
/// whether it is PostgreSQL (for the few statements whose SQL differs).
/// SQL in a body must run on both: `$N` placeholders, `TRUE`/`FALSE` for
/// flags, `COUNT(*) FILTER (WHERE …)` rather than `SUM` of a condition,
/// `CAST(SUM(x) AS BIGINT)`.
macro_rules! on_backend {
    ($value:expr, $enum:ident, $x:ident => $body:expr) => {
        match $value {
            $crate::store::$enum::Sqlite($x) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Sqlite;
                #[allow(dead_code)]
                const PG: bool = false;
                $body
            }
            $crate::store::$enum::Postgres($x) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Postgres;
                #[allow(dead_code)]
                const PG: bool = true;
                $body
            }
        }
    };
}

/// [`on_backend!`] on a store's pool: `on_pool!(self, pool => …)`.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        on_backend!($store.pools(), Pools, $pool => $body)
    };
}

/// [`on_backend!`] on a [`Conn`] of the store's (`&mut Conn`).
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        on_backend!($conn, Conn, $c => $body)
    };
}

pub mod export;
pub mod fields;
mod frontier;
mod llms;
pub mod lock;
mod open;
mod pg;
pub mod processes;
pub mod records;
mod recrawl;
pub mod report;
mod runs;
mod status;
pub mod summaries;
mod target;
pub mod writer;

pub use frontier::StoredRobots;
pub use llms::{Home, ListedOrigin, ListedPage};
pub use pg::PgLock;
pub use recrawl::{ChangeRow, RunKind, RunSummary};
pub use runs::RunStats;
pub use status::StoredSummarizer;
pub use summaries::PageText;
pub use target::DbTarget;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, PgConnection, Row, SqliteConnection};

use crate::util::now_ms;
use lock::{DbLock, LockError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Failures of the storage layer. None is retryable within a crawl: when
/// the database cannot be written, the crawl stops (what was committed stays).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create database {path}: directory {dir} does not exist")]
    MissingDir { path: PathBuf, dir: PathBuf },
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("{path} is a directory; --db takes the path of a database file")]
    IsADirectory { path: PathBuf },
    #[error("{path} is empty, not a trawl database")]
    Empty { path: PathBuf },
    #[error("cannot create database {path}: {source}")]
    CannotCreate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to {path}: {why}; `trawl status` and `trawl export` can still read it")]
    ReadOnly { path: PathBuf, why: String },
    #[error(
        "{path} was written by an older trawl and its schema must be brought up to date, which needs writing to it ({why}); run trawl once where it can write the file"
    )]
    OlderSchema { path: PathBuf, why: String },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("{path} is not an SQLite database")]
    NotADatabase { path: PathBuf },
    #[error("{path} is an SQLite database but not a trawl database")]
    NotTrawl { path: PathBuf },
    #[error(
        "{path} was written by a newer trawl (schema version {found}, this trawl knows up to {known}); upgrade trawl"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// From the statements the SQLite writer runs on its connection's
    /// handle (see `writer::sqlite_rows`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot connect to {db}: {why}")]
    Connect { db: String, why: String },
    #[error(
        "{db} holds tables that are not a trawl crawl's; give a database of its own (createdb trawl)"
    )]
    PgNotTrawl { db: String },
    #[error("{db} holds no crawl; start one with `trawl crawl SEED --db {db}`")]
    PgEmpty { db: String },
    #[error(
        "{db} was written by an older trawl; a process joining a crawl does not change its schema: `trawl resume` (once no process is at work) brings it up to date"
    )]
    PgOlderSchema { db: String },
    #[error(
        "{db} is in use by another trawl process{who}; wait for it to finish or stop it (Ctrl-C) and run the command again, or add a process to its crawl with `trawl join --db {db}`"
    )]
    PgHeld { db: String, who: String },
    #[error(
        "{db}: a trawl process has held the crawl for itself for 10 s (it is starting or resuming it); try again"
    )]
    PgStarting { db: String },
    #[error(
        "{db} is an SQLite file: one process crawls it; to crawl with several processes, crawl into a PostgreSQL database (--db postgres://…)"
    )]
    JoinNeedsPostgres { db: String },
    #[error("host leases are for crawls on PostgreSQL")]
    NotShared,
    #[error("the database writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// Whether the database went away under the process (the server shut
    /// down or ended the connection, the network between them failed, no
    /// connection could be had in time), rather than refusing a statement.
    pub fn connection_lost(&self) -> bool {
        let StoreError::Sql(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL's class 08 (connection exception) and 57P0x
            // (operator intervention: the server shutting down, the
            // connection terminated by an administrator).
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
            _ => false,
        }
    }

    /// What kept the database from being written, when the disk rather
    /// than the data is at fault: `SQLITE_FULL` (no space left), or an
    /// I/O error (`SQLITE_IOERR` and its extended codes; a file size limit
    /// gives one).
    pub fn disk_failure(&self) -> Option<&'static str> {
        let code: i32 = match self {
            StoreError::Sql(sqlx::Error::Database(e)) => e.code()?.parse().ok()?,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.extended_code,
            _ => return None,
        };
        match code & 0xff {
            13 => Some("the disk is full"),
            10 => Some("a disk I/O error (a full disk, a file size limit or a failing device)"),
            _ => None,
        }
    }
}

/// Lifecycle state of a crawl, as stored in `crawls.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlState {
    Running,
    /// Every URL is settled; only summaries are still being made.
    Summarizing,
    Stopped,
    Finished,
}

impl CrawlState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Summarizing => "summarizing",
            Self::Stopped => "stopped",
            Self::Finished => "finished",
        }
    }
}

/// A row of `crawls`.
#[derive(Debug, Clone)]
pub struct CrawlRow {
    pub id: i64,
    pub state: String,
    pub config: String,
    /// Epoch milliseconds.
    pub started_at: i64,
    /// Epoch milliseconds; `None` until the crawl finishes.
    pub finished_at: Option<i64>,
}

/// The connection pool of the backend a [`Store`] uses.
#[derive(Clone, Debug)]
pub enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection of its own, outside the pool (the writer's, the summary
/// stage's), on the store's backend.
#[derive(Debug)]
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    pub async fn close(self) {
        match self {
            Conn::Sqlite(c) => drop(c.close().await),
            Conn::Postgres(c) => drop(c.close().await),
        }
    }
}

#[derive(Clone, Debug)]
enum ConnOptions {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// The single-writer lock of a store that writes.
#[derive(Debug)]
enum Lock {
    File(#[allow(dead_code)] DbLock),
    Postgres(#[allow(dead_code)] PgLock),
}

/// An open trawl database: an SQLite file or a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct Store {
    pools: Pools,
    options: ConnOptions,
    target: DbTarget,
    /// Held for as long as any clone of a writing store lives.
    _lock: Option<Arc<Lock>>,
}

/// What the opener means to do with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Crawl into it, creating it if missing (an empty file, or an SQLite
    /// file without tables, or a PostgreSQL database without tables, is
    /// taken as new): takes the single-writer lock for the store's life.
    Write,
    /// Write to a trawl database that must exist already (`resume`,
    /// `summarize`): as `Write`, but a missing, empty or foreign database
    /// is refused untouched.
    WriteExisting,
    /// Work on a crawl beside the processes already on it (`trawl join`,
    /// PostgreSQL only): the crawl's lock is shared.
    Join,
    /// Only read (status, export): the database must exist and be trawl's.
    /// Works beside a running crawl and on files this process cannot
    /// write; takes the lock only if the schema must be brought up to
    /// date, and only for as long as that takes.
    Read,
}

impl Store {
    /// Opens (creating if missing) the database `db` for writing, holding
    /// its lock, and brings its schema up to date.
    pub async fn open(db: impl Into<DbTarget>) -> Result<Store, StoreError> {
        Self::open_with(db, Access::Write).await
    }

    /// Opens the database `db` as `access` says. Every check on the
    /// path, the file or the server comes before anything is created or
    /// changed.
    pub async fn open_with(db: impl Into<DbTarget>, access: Access) -> Result<Store, StoreError> {
        let target = db.into();
        let path = match &target {
            DbTarget::File(_) if access == Access::Join => {
                return Err(StoreError::JoinNeedsPostgres {
                    db: target.to_string(),
                });
            }
            DbTarget::File(p) => p.clone(),
            DbTarget::Postgres(url) => {
                let url = url.clone();
                return Self::open_postgres(target, &url, access).await;
            }
        };
        let path = path.as_path();
        let exists = open::check_path(path)?;
        if !exists {
            if access != Access::Write {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            let dir = open::parent_dir(path);
            if !dir.is_dir() {
                return Err(StoreError::MissingDir {
                    path: path.to_path_buf(),
                    dir,
                });
            }
        }
        match access {
            Access::Read => Self::open_reader(path).await,
            Access::Write | Access::WriteExisting | Access::Join => {
                Self::open_writer(path, access, exists).await
            }
        }
    }

    async fn open_postgres(
        target: DbTarget,
        url: &str,
        access: Access,
    ) -> Result<Store, StoreError> {
        let options = pg::options(&target, url)?;
        // The server answers and takes the login before anything else.
        let mut probe = pg::connect(&target, &options).await?;
        let lock = match access {
            Access::Read => None,
            Access::Write | Access::WriteExisting => {
                match pg::lock(&target, &options, pg::LockMode::Exclusive).await {
                    Ok(l) => Some(l),
                    Err(StoreError::PgHeld { db, .. }) => {
                        let who = pg::holders(&mut probe).await;
                        probe.close().await.ok();
                        return Err(StoreError::PgHeld { db, who });
                    }
                    Err(e) => return Err(e),
                }
            }
            Access::Join => Some(pg::lock(&target, &options, pg::LockMode::Shared).await?),
        };
        let found = pg::inspect(&target, &mut probe).await;
        probe.close().await.ok();
        let found = found?;
        if access != Access::Write && found == pg::Found::Blank {
            return Err(StoreError::PgEmpty {
                db: target.to_string(),
            });
        }
        let pool = pg::pool(&target, &options, 8).await?;
        let current = found == (pg::Found::Trawl { current: true });
        if !current {
            match &lock {
                Some(_) if access == Access::Join => {
                    return Err(StoreError::PgOlderSchema {
                        db: target.to_string(),
                    });
                }
                Some(_) => pg::migrate(&target, &pool).await?,
                // A running crawl holds the lock, and has brought the
                // schema up to date already.
                None => {
                    if let Ok(l) = pg::lock(&target, &options, pg::LockMode::Exclusive).await {
                        pg::migrate(&target, &pool).await?;
                        drop(l);
                    }
                }
            }
        }
        Ok(Store {
            pools: Pools::Postgres(pool),
            options: ConnOptions::Postgres(options),
            target,
            _lock: lock.map(|l| Arc::new(Lock::Postgres(l))),
        })
    }

    async fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let (found, options) = open::inspect(path).await?;
        let current = found.trawl(path)?;
        if !current {
            if let Some(e) = open::write_denied(path) {
                return Err(StoreError::OlderSchema {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                });
            }
            // A running crawl holds the lock, and has brought the schema up
            // to date already.
            match DbLock::acquire(path) {
                Ok(lock) => {
                    let pool = SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(writer_options(path, false))
                        .await
                        .map_err(|e| classify_open_error(path, e))?;
                    migrate(path, &pool).await?;
                    pool.close().await;
                    drop(lock);
                }
                Err(LockError::Held { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|e| classify_open_error(path, e))?;
        Ok(Store {
            pools: Pools::Sqlite(pool),
            options: ConnOptions::Sqlite(options),
            target: DbTarget::File(path.to_path_buf()),
            _lock: None,
        })
    }

    async fn open_writer(path: &Path, access: Access, exists: bool) -> Result<Store, StoreError> {
        let read_only = |why: String| StoreError::ReadOnly {
            path: path.to_path_buf(),
            why,
        };
        if exists && let Some(e) = open::write_denied(path) {
            return Err(read_only(format!(
                "the file cannot be opened for writing ({e})"
            )));
        }
        // The lock comes first: nothing, not even the inspection, should
        // race a process that is migrating the file.
        let lock = match DbLock::acquire(path) {
            Ok(lock) => lock,
            Err(LockError::Io { path: lock, source }) if open::is_denied(&source) => {
                return Err(if exists {
                    read_only(format!(
                        "its lock file {} cannot be created ({source})",
                        lock.display()
                    ))
                } else {
                    StoreError::CannotCreate {
                        path: path.to_path_buf(),
                        source,
                    }
                });
            }
            Err(e) => return Err(e.into()),
        };
        let (found, _) = open::inspect(path).await?;
        if access == Access::WriteExisting {
            found.trawl(path)?;
        }
        let options = writer_options(path, access == Access::Write);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|e| classify_open_error(path, e))?;
        migrate(path, &pool).await?;
        Ok(Store {
            pools: Pools::Sqlite(pool),
            options: ConnOptions::Sqlite(options),
            target: DbTarget::File(path.to_path_buf()),
            _lock: Some(Arc::new(Lock::File(lock))),
        })
    }

    /// Where the database is (a path, or a URL with its password hidden
    /// when displayed).
    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.pools, Pools::Postgres(_))
    }

    /// The pool of the backend in use.
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Whether a process (this one included) holds the database's
    /// single-writer lock right now: a crawl is running on it.
    pub async fn is_held(&self) -> bool {
        if self._lock.is_some() {
            return true;
        }
        match (&self.pools, &self.target) {
            (Pools::Postgres(pool), _) => pg::is_held(pool).await.unwrap_or(false),
            (Pools::Sqlite(_), DbTarget::File(path)) => DbLock::is_held(path),
            (Pools::Sqlite(_), DbTarget::Postgres(_)) => false,
        }
    }

    /// Lets other processes join a crawl on PostgreSQL: the exclusive hold
    /// taken to start, resume or recrawl it becomes a shared one (nothing
    /// on SQLite, which one process crawls).
    pub async fn share(&self) -> Result<(), StoreError> {
        if let Some(lock) = &self._lock
            && let Lock::Postgres(l) = lock.as_ref()
        {
            l.share().await?;
        }
        Ok(())
    }

    /// A connection of its own, outside the read pool (the writer's, the
    /// checkpointer's, the summary stage's).
    pub async fn connection(&self) -> Result<Conn, StoreError> {
        Ok(match &self.options {
            ConnOptions::Sqlite(o) => Conn::Sqlite(o.connect().await?),
            ConnOptions::Postgres(o) => Conn::Postgres(pg::connect(&self.target, o).await?),
        })
    }

    /// Starts the crawl's writer (see [`writer::spawn`]) on a connection of
    /// its own, with SQLite's checkpointer on another.
    /// `lease`: this process's, in a crawl on PostgreSQL that several
    /// processes share.
    pub async fn spawn_writer(
        &self,
        capacity: usize,
        linger_fetches: usize,
        lease: Option<records::Lease>,
    ) -> Result<
        (
            records::WriterHandle,
            tokio::task::JoinHandle<Result<records::WriterStats, StoreError>>,
        ),
        StoreError,
    > {
        let conn = self.connection().await?;
        let checkpoint = match &self.options {
            ConnOptions::Sqlite(o) => Some(o.connect().await?),
            ConnOptions::Postgres(_) => None,
        };
        let reader = match &self.pools {
            Pools::Sqlite(pool) => Some(pool.clone()),
            Pools::Postgres(_) => None,
        };
        Ok(writer::spawn(
            conn,
            checkpoint,
            reader,
            capacity,
            linger_fetches,
            lease,
        ))
    }

    /// The crawl stored in this database, if any.
    pub async fn crawl(&self) -> Result<Option<CrawlRow>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query(
            "SELECT id, state, config, started_at, finished_at FROM crawls ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?
        .map(|r| CrawlRow {
            id: r.get("id"),
            state: r.get("state"),
            config: r.get("config"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
        }));
        Ok(row)
    }

    /// Records a new crawl with its configuration (JSON).
    pub async fn create_crawl(&self, config_json: &str) -> Result<i64, StoreError> {
        let now = now_ms();
        let id = on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO crawls (state, config, trawl_version, started_at, updated_at, run_started_at) \
             VALUES ('running', $1, $2, $3, $3, $3) RETURNING id",
        )
        .bind(config_json)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok(id)
    }

    /// Number of page URLs (sitemaps left out) in each state.
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) AS n FROM urls WHERE sitemap = FALSE GROUP BY state ORDER BY state",
        )
        .fetch_all(pool)
        .await?))
    }

    /// Number of sitemaps per state and reason (`done`, `failed:http_404`).
    pub async fn sitemap_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT state || COALESCE(':' || reason, '') AS k, COUNT(*) AS n FROM urls \
             WHERE sitemap = TRUE GROUP BY k ORDER BY k",
        )
        .fetch_all(pool)
        .await?))
    }

    /// Number of page URLs (sitemaps left out) per skip or failure reason.
    pub async fn reason_counts(&self, state: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT COALESCE(reason, '') AS reason, COUNT(*) AS n FROM urls WHERE state = $1 AND sitemap = FALSE \
             GROUP BY reason ORDER BY n DESC, reason",
        )
        .bind(state)
        .fetch_all(pool)
        .await?))
    }

    /// The stored cookie jars, as `(host, JSON)` rows (see
    /// [`crate::cookies::Jar::load`]).
    pub async fn cookie_jars(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_as("SELECT host, jar FROM cookies")
            .fetch_all(pool)
            .await?),
        )
    }

    /// Starts another run of crawl `id` (resume, recrawl) at `now`, with
    /// its settings as `config` (JSON): `running`, not finished.
    pub async fn run_again(&self, id: i64, config: &str, now: i64) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE crawls SET state = 'running', config = $1, updated_at = $2, run_started_at = $2, \
             finished_at = NULL WHERE id = $3",
        )
        .bind(config)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Marks a crawl that was `summarizing` finished (its summary stage
    /// is done; the writer has stopped), and truncates SQLite's WAL.
    pub async fn finish_summarizing(&self, id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, pool => sqlx::query(
            "UPDATE crawls SET state = 'finished', updated_at = $1, finished_at = $1 \
             WHERE id = $2 AND state = 'summarizing'",
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        // The last write of a crawl: leave no WAL behind.
        if let Pools::Sqlite(pool) = &self.pools
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
        {
            tracing::debug!("final checkpoint: {e}");
        }
        Ok(())
    }

    /// Queues these URLs again, clearing their reason, in one
    /// transaction (before a crawl's writer starts).
    pub async fn requeue(&self, ids: &[i64]) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in ids.chunks(URL_ROWS_PER_STMT) {
                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "UPDATE urls SET state = 'queued', reason = NULL, updated_at = ",
                );
                qb.push_bind(now).push(" WHERE id IN ");
                push_id_list(&mut qb, chunk);
                qb.build().persistent(false).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn close(self) {
        match self.pools {
            Pools::Sqlite(p) => p.close().await,
            Pools::Postgres(p) => p.close().await,
        }
    }
}

/// `sql` as the backend takes it (`pg`: PostgreSQL): SQLite's `CROSS
/// JOIN … ON`, which fixes SQLite's join order (its planner has no
/// statistics and may scan every URL to count a few pages), is a plain
/// `JOIN` in PostgreSQL, which refuses `ON` after `CROSS JOIN` and plans
/// from its own statistics.
pub(crate) fn dialect(
    pg: bool,
    sql: impl Into<std::borrow::Cow<'static, str>>,
) -> sqlx::AssertSqlSafe<std::borrow::Cow<'static, str>> {
    let sql = sql.into();
    if pg && sql.contains("CROSS JOIN") {
        sqlx::AssertSqlSafe(sql.replace("CROSS JOIN", "JOIN").into())
    } else {
        sqlx::AssertSqlSafe(sql)
    }
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … in order, the
/// form both backends take (for SQL assembled from parts). `sql` must
/// hold no `?` other than placeholders (none in its string literals).
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Most ids in one `IN (…)` list (SQLite allows 32,766 bound parameters
/// per statement, PostgreSQL 65,535; stay well below).
pub(crate) const URL_ROWS_PER_STMT: usize = 2000;

/// Appends `(id, id, …)` as bound parameters.
pub(crate) fn push_id_list<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<DB>, ids: &[i64])
where
    i64: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    qb.push(")");
}

/// How long a SQLite connection waits for another's lock before it
/// answers `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a connection that writes (WAL, group commits).
fn writer_options(path: &Path, create: bool) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("cache_size", "-8000")
        .log_statements(tracing::log::LevelFilter::Trace)
}

async fn migrate(path: &Path, pool: &SqlitePool) -> Result<(), StoreError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            path: path.to_path_buf(),
            source,
        })
}

fn classify_open_error(path: &Path, e: sqlx::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("file is not a database") || msg.contains("file is encrypted") {
        StoreError::NotADatabase {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MIGRATOR, Store, StoreError, writer_options};

    /// Schema v20 rebuilds `pages` and `summaries` as rowid tables (rows
    /// in the order written) with unique indexes on their old keys: what
    /// a v19 database held is all there, the keys still refuse a second
    /// row, and a page written after the migration goes after the rest.
    #[tokio::test]
    async fn schema_v20_keeps_every_page_and_summary_and_appends_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v19.db");
        let pool = sqlx::SqlitePool::connect_with(writer_options(&path, true))
            .await
            .unwrap();
        MIGRATOR.run_to(19, &pool).await.unwrap();
        for sql in [
            "INSERT INTO crawls (id, state, config, trawl_version, started_at, updated_at) \
             VALUES (1, 'finished', '{}', '0', 0, 0)",
            "INSERT INTO urls (id, url, origin, depth, state, discovered_at, updated_at) VALUES \
             (900, 'http://a.test/z', 'http://a.test:80', 0, 'done', 0, 0), \
             (-5, 'http://a.test/a', 'http://a.test:80', 1, 'done', 0, 0), \
             (7, 'http://a.test/n', 'http://a.test:80', 1, 'done', 0, 0)",
            "INSERT INTO pages (url_id, status, final_url, size, fetched_at, fetch_ms, \
             content_hash, title, text, text_kinds, links_hash) VALUES \
             (900, 200, 'http://a.test/z', 10, 1, 2, 'h1', 'Z', 'zed', 'p', 42), \
             (-5, 404, 'http://a.test/a', 0, 3, 4, NULL, NULL, NULL, NULL, NULL)",
            "INSERT INTO summaries (content_hash, backend, model, prompt_version, state, \
             summary, created_at, updated_at, truncated) VALUES \
             ('h1', 'extractive', 'm', 'v', 'done', 'zed.', 5, 6, 1)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = Store::open(path.as_path()).await.unwrap();
        let super::Conn::Sqlite(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a file is SQLite")
        };
        type Row = (
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let pages: Vec<Row> = sqlx::query_as(
            "SELECT url_id, status, final_url, title, text_kinds, links_hash FROM pages \
                 ORDER BY rowid",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            pages,
            vec![
                (-5, 404, "http://a.test/a".into(), None, None, None),
                (
                    900,
                    200,
                    "http://a.test/z".into(),
                    Some("Z".into()),
                    Some("p".into()),
                    Some(42)
                ),
            ]
        );
        let summary: (String, String, i64, i64) =
            sqlx::query_as("SELECT content_hash, summary, created_at, truncated FROM summaries")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(summary, ("h1".into(), "zed.".into(), 5, 1));

        // The old keys still refuse a second row...
        let again = sqlx::query(
            "INSERT INTO pages (url_id, status, final_url, size, fetched_at, fetch_ms) \
             VALUES (900, 200, 'x', 0, 0, 0)",
        )
        .execute(&mut conn)
        .await;
        assert!(again.unwrap_err().to_string().contains("UNIQUE"));
        let again = sqlx::query(
            "INSERT INTO summaries (content_hash, backend, model, prompt_version, state, \
             created_at, updated_at) VALUES ('h1', 'extractive', 'm', 'v', 'done', 0, 0)",
        )
        .execute(&mut conn)
        .await;
        assert!(again.unwrap_err().to_string().contains("UNIQUE"));
        // ...and still name a URL that exists.
        let orphan = sqlx::query(
            "INSERT INTO pages (url_id, status, final_url, size, fetched_at, fetch_ms) \
             VALUES (12345, 200, 'x', 0, 0, 0)",
        )
        .execute(&mut conn)
        .await;
        assert!(orphan.unwrap_err().to_string().contains("FOREIGN KEY"));

        // A new page goes after the others, whatever its key.
        sqlx::query(
            "INSERT INTO pages (url_id, status, final_url, size, fetched_at, fetch_ms) \
             VALUES (7, 200, 'http://a.test/n', 0, 0, 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let order: Vec<i64> = sqlx::query_scalar("SELECT url_id FROM pages ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(order, vec![-5, 900, 7]);
    }

    /// The SQLite writer's own statements (`writer::sqlite_rows`) report a
    /// full disk or an I/O error as sqlx's statements do.
    #[test]
    fn disk_failures_are_read_from_either_driver() {
        let raw = |code| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert_eq!(raw(13).disk_failure(), Some("the disk is full"));
        // SQLITE_IOERR_WRITE (10 | 3 << 8): an extended code.
        assert!(
            raw(10 | 3 << 8)
                .disk_failure()
                .unwrap()
                .contains("I/O error")
        );
        // SQLITE_CONSTRAINT: the data, not the disk.
        assert_eq!(raw(19).disk_failure(), None);
        assert!(!raw(13).connection_lost());
    }
}

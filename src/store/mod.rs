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

pub mod export;
pub mod fields;
mod frontier;
mod llms;
pub mod lock;
mod open;
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
pub use recrawl::{ChangeRow, RunKind, RunSummary};
pub use runs::RunStats;
pub use status::StoredSummarizer;
pub use summaries::PageText;
pub use target::DbTarget;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, SqliteConnection};

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
    #[error("{0}: PostgreSQL databases are not supported by this build")]
    Unsupported(String),
    #[error("the database writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// What kept the database from being written, when the disk rather
    /// than the data is at fault: `SQLITE_FULL` (no space left), or an
    /// I/O error (`SQLITE_IOERR` and its extended codes; a file size limit
    /// gives one).
    pub fn disk_failure(&self) -> Option<&'static str> {
        let StoreError::Sql(sqlx::Error::Database(e)) = self else {
            return None;
        };
        let code: i32 = e.code()?.parse().ok()?;
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

/// An open trawl database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    path: PathBuf,
    /// Held for as long as any clone of a writing store lives.
    _lock: Option<Arc<DbLock>>,
}

/// What the opener means to do with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Crawl into it, creating it if missing (an empty file, or an SQLite
    /// file without tables, is taken as new): takes the single-writer lock
    /// for the store's life.
    Write,
    /// Write to a trawl database that must exist already (`resume`,
    /// `summarize`): as `Write`, but a missing, empty or foreign file is
    /// refused untouched.
    WriteExisting,
    /// Only read (status, export): the database must exist and be trawl's.
    /// Works beside a running crawl and on files this process cannot
    /// write; takes the lock only if the schema must be brought up to
    /// date, and only for as long as that takes.
    Read,
}

impl Store {
    /// Opens (creating if missing) the database at `path` for writing,
    /// holding its lock, and brings its schema up to date.
    pub async fn open(db: impl Into<DbTarget>) -> Result<Store, StoreError> {
        Self::open_with(db, Access::Write).await
    }

    /// Opens the database at `path` as `access` says. Every check on the
    /// path and the file comes before anything is created or changed.
    pub async fn open_with(db: impl Into<DbTarget>, access: Access) -> Result<Store, StoreError> {
        let target = db.into();
        let path = match &target {
            DbTarget::File(p) => p.as_path(),
            DbTarget::Postgres(_) => {
                return Err(StoreError::Unsupported(target.to_string()));
            }
        };
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
            Access::Write | Access::WriteExisting => Self::open_writer(path, access, exists).await,
        }
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
            pool,
            options,
            path: path.to_path_buf(),
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
            pool,
            options,
            path: path.to_path_buf(),
            _lock: Some(Arc::new(lock)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A connection of its own, outside the read pool (the writer's, the
    /// checkpointer's).
    pub async fn connection(&self) -> Result<SqliteConnection, StoreError> {
        Ok(self.options.connect().await?)
    }

    /// The crawl stored in this database, if any.
    pub async fn crawl(&self) -> Result<Option<CrawlRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, state, config, started_at, finished_at FROM crawls ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CrawlRow {
            id: r.get("id"),
            state: r.get("state"),
            config: r.get("config"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
        }))
    }

    /// Records a new crawl with its configuration (JSON).
    pub async fn create_crawl(&self, config_json: &str) -> Result<i64, StoreError> {
        let now = now_ms();
        let id = sqlx::query(
            "INSERT INTO crawls (state, config, trawl_version, started_at, updated_at, run_started_at) VALUES ('running', ?, ?, ?, ?, ?)",
        )
        .bind(config_json)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Number of page URLs (sitemaps left out) in each state.
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM urls WHERE sitemap = 0 GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
    }

    /// Number of sitemaps per state and reason (`done`, `failed:http_404`).
    pub async fn sitemap_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state || COALESCE(':' || reason, '') AS k, COUNT(*) AS n FROM urls \
             WHERE sitemap = 1 GROUP BY k ORDER BY k",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("k"), r.get("n"))).collect())
    }

    /// Number of page URLs (sitemaps left out) per skip or failure reason.
    pub async fn reason_counts(&self, state: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(reason, '') AS reason, COUNT(*) AS n FROM urls WHERE state = ? AND sitemap = 0 \
             GROUP BY reason ORDER BY n DESC, reason",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("reason"), r.get("n"))).collect())
    }

    /// The stored cookie jars, as `(host, JSON)` rows (see
    /// [`crate::cookies::Jar::load`]).
    pub async fn cookie_jars(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT host, jar FROM cookies")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Starts another run of crawl `id` (resume, recrawl) at `now`, with
    /// its settings as `config` (JSON): `running`, not finished.
    pub async fn run_again(&self, id: i64, config: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE crawls SET state = 'running', config = ?, updated_at = ?, run_started_at = ?, \
             finished_at = NULL WHERE id = ?",
        )
        .bind(config)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a crawl that was `summarizing` finished (its summary stage
    /// is done; the writer has stopped), and truncates the WAL.
    pub async fn finish_summarizing(&self, id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE crawls SET state = 'finished', updated_at = ?, finished_at = ? \
             WHERE id = ? AND state = 'summarizing'",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        // The last write of a crawl: leave no WAL behind.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        for chunk in ids.chunks(writer::URL_ROWS_PER_STMT) {
            let mut qb = sqlx::QueryBuilder::new(
                "UPDATE urls SET state = 'queued', reason = NULL, updated_at = ",
            );
            qb.push_bind(now).push(" WHERE id IN ");
            writer::push_id_list(&mut qb, chunk);
            writer::execute_once(&mut tx, qb).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Options of a connection that writes (WAL, group commits).
fn writer_options(path: &Path, create: bool) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
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
